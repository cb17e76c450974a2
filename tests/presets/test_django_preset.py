"""shipmate's Django preset program (crates/shipmate-release/src/preset/django.py), run as shipmate
runs it in the release's image: `python -c <program> manage.py plan|expand|contract [options]` in
the project's directory. Throwaway projects under tmp_path cover each classification rule; the
example bookshop's releases v4 -> v5 -> v6 -> v7 (and the variants that must be refused) cover
the expand/contract story on SQLite and on PostgreSQL. Every run's frames are checked against the
protocol: one `SHIPMATE1 <json>` per line, at most 4000 bytes, seq 0.. without a gap, `end` last
with the count of frames before it."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
PROGRAM_PATH = REPO / "crates" / "shipmate-release" / "src" / "preset" / "django.py"
PROGRAM = PROGRAM_PATH.read_text()
EXAMPLE = REPO / "examples" / "django"
PYTHON = str(Path(sys.executable).parent / "python")
PREFIX = "SHIPMATE1 "


# ---------------------------------------------------------------- running the program


class Run:
    def __init__(self, completed):
        self.code = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.frames = check_frames(completed.stdout, ended=completed.returncode in (0, 3))

    def kind(self, kind):
        return [frame for frame in self.frames if frame["kind"] == kind]

    @property
    def verdict(self):
        return self.frames[-1]["verdict"]

    def migrations(self):
        return {frame["id"]: frame for frame in self.kind("migration")}

    def operations(self, migration):
        return [frame for frame in self.kind("operation") if frame["migration"] == migration]

    def applied(self):
        return [frame["migration"] for frame in self.kind("applied")]

    def __repr__(self):
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def check_frames(stdout, ended=True):
    """The protocol: every frame line within 4000 bytes, seq contiguous from 0, one `end` frame,
    last, counting the frames before it (or, after an error, no `end` frame at all)."""
    frames = []
    for line in stdout.splitlines():
        if line.startswith(PREFIX):
            assert len(line.encode()) <= 4000, f"{len(line.encode())}-byte line"
            frames.append(json.loads(line[len(PREFIX):]))
    assert [frame["seq"] for frame in frames] == list(range(len(frames)))
    assert frames and frames[0]["kind"] == "start"
    ends = [frame for frame in frames if frame["kind"] == "end"]
    if ended:
        assert ends == [frames[-1]], stdout
        assert frames[-1]["frames"] == len(frames) - 1
    else:
        assert ends == [], stdout
    return frames


def preset(project, database_url, phase, *options, manage="manage.py", cwd=None):
    completed = subprocess.run(
        [PYTHON, "-c", PROGRAM, manage, phase, *options],
        cwd=cwd or project,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATABASE_URL": database_url,
             "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, timeout=300,
    )
    return Run(completed)


def manage(project, database_url, *args):
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=project, capture_output=True, text=True, timeout=300,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATABASE_URL": database_url,
             "PYTHONDONTWRITEBYTECODE": "1"},
    )


# ---------------------------------------------------------------- reading the database


def query(database_url, sql):
    parts = urlsplit(database_url)
    if parts.scheme == "sqlite":
        with sqlite3.connect(parts.path[1:] if parts.path.startswith("//") else parts.path) as db:
            return db.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as db:
        return db.execute(sql).fetchall()


def applied_migrations(database_url):
    try:
        return [f"{app}.{name}" for app, name in
                query(database_url, "SELECT app, name FROM django_migrations ORDER BY id")]
    except Exception as error:  # no table yet
        if "django_migrations" in str(error):
            return []
        raise


def columns(database_url, table):
    if urlsplit(database_url).scheme == "sqlite":
        return [row[1] for row in query(database_url, f"PRAGMA table_info({table})")]
    return [name for (name,) in query(
        database_url,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
        f" AND table_name = '{table}' ORDER BY ordinal_position")]


def schema(database_url):
    """Everything a refused release must leave alone: applied migrations, and catalog_book's
    columns with their nullability."""
    if urlsplit(database_url).scheme == "sqlite":
        cols = query(database_url, "PRAGMA table_info(catalog_book)")
    else:
        cols = query(database_url,
                     "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
                     " WHERE table_name = 'catalog_book' ORDER BY ordinal_position")
    return applied_migrations(database_url), cols


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/db.sqlite3"
    return request.getfixturevalue("postgres_database")


# ---------------------------------------------------------------- the program itself


def test_program_fits_in_runtask_overrides():
    # RunTask caps its overrides at 8 KiB; the command is most of them, JSON-escaped.
    assert len(PROGRAM.encode()) < 6000
    assert len(json.dumps(PROGRAM, ensure_ascii=False).encode()) < 6400
    assert PROGRAM.isascii()


def test_bad_arguments_are_an_error(tmp_path):
    for args in (["manage.py"], ["manage.py", "migrate"], ["manage.py", "plan", "--fake"]):
        completed = subprocess.run([PYTHON, "-c", PROGRAM, *args], cwd=tmp_path,
                                   capture_output=True, text=True)
        assert completed.returncode == 1, completed
        assert "usage:" in completed.stderr
        assert PREFIX not in completed.stdout


# ---------------------------------------------------------------- throwaway projects

SETTINGS = """\
import os
from shop import database_url
SECRET_KEY = "x"
INSTALLED_APPS = {apps!r}
DATABASES = {{"default": database_url.parse(os.environ["DATABASE_URL"], None)}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
"""

MANAGE = """\
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
"""

ITEM = """migrations.CreateModel(name="Item", fields=[
    ("id", models.BigAutoField(primary_key=True)),
    ("name", models.CharField(max_length=50)),
    ("note", models.CharField(max_length=50, null=True)),
    ("qty", models.IntegerField()),
])"""


def migration(operations, dependencies=(), safe=None):
    marker = {None: "", "before": "safe = Safe.before_deploy()", "after": "safe = Safe.after_deploy()",
              "always": "safe = Safe.always()"}.get(safe, safe)
    ops = ",\n".join(textwrap.indent(op, "        ") for op in operations)
    return (
        "from django.db import migrations, models\n"
        "from django_safemigrate import Safe\n\n\n"
        "def forwards(apps, schema_editor):\n    pass\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    {marker}\n"
        f"    dependencies = {list(dependencies)!r}\n"
        f"    operations = [\n{ops}\n    ]\n"
    )


def project(root, apps, manage_py=MANAGE):
    """A Django project under ROOT: {"app": {"0001_x": migration text}}; returns ROOT."""
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    shutil.copy(EXAMPLE / "app" / "bookshop" / "database_url.py", root / "shop" / "database_url.py")
    (root / "shop" / "settings.py").write_text(SETTINGS.format(apps=list(apps)))
    (root / "manage.py").write_text(manage_py)
    for app, migrations in apps.items():
        (root / app / "migrations").mkdir(parents=True)
        (root / app / "__init__.py").write_text("")
        (root / app / "migrations" / "__init__.py").write_text("")
        for name, text in migrations.items():
            (root / app / "migrations" / f"{name}.py").write_text(text)
    return root


# What each operation is for the code still serving, on a table that already exists.
CLASSIFICATION = [
    ('migrations.RemoveField("item", "name")', "unsafe", "still reads column `name` of table `inv_item`"),
    ('migrations.DeleteModel("Item")', "unsafe", "table `inv_item`"),
    ('migrations.RenameField("item", "name", "title")', "unsafe", "column `name` of table `inv_item`"),
    ('migrations.RenameModel("Item", "Thing")', "unsafe", "table `inv_item`"),
    ('migrations.AlterModelTable("item", "items")', "unsafe", "table `inv_item`"),
    ('migrations.AddField("item", "size", models.IntegerField(default=0), preserve_default=False)',
     "unsafe", "the new NOT NULL column `size`"),
    ('migrations.AddField("item", "size", models.IntegerField(default=0))', "unsafe", "NOT NULL"),
    ('migrations.AddField("item", "size", models.IntegerField(null=True))', "safe", None),
    ('migrations.AddField("item", "size", models.IntegerField(db_default=0))', "safe", None),
    ('migrations.AddField("item", "tags", models.ManyToManyField("inv.Item"))', "safe", None),
    ('migrations.AlterField("item", "note", models.CharField(max_length=50))', "unsafe",
     "column `note` of table `inv_item`, now NOT NULL"),
    ('migrations.AlterField("item", "note", models.CharField(max_length=50, db_default="-"))', "safe", None),
    ('migrations.AlterField("item", "note", models.CharField(max_length=90, null=True))', "safe", None),
    ('migrations.AlterField("item", "qty", models.BigIntegerField())', "safe", None),
    ('migrations.RunSQL("UPDATE inv_item SET qty = 0")', "unknown", "UPDATE inv_item SET qty = 0"),
    ('migrations.RunPython(forwards)', "unknown", "RunPython is not inspected: forwards"),
    ('migrations.CreateModel("Other", [("id", models.BigAutoField(primary_key=True))])', "safe", None),
    ('migrations.AddIndex("item", models.Index(fields=["qty"], name="inv_qty"))', "safe", None),
    ('migrations.AddConstraint("item", models.CheckConstraint(condition=models.Q(qty__gte=0), name="inv_qty_pos"))',
     "safe", None),
    ('migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField("item", "name")])', "safe", None),
    ('migrations.SeparateDatabaseAndState(database_operations=[migrations.RemoveField("item", "name")])',
     "unsafe", "column `name`"),
]


@pytest.mark.parametrize("operation,expected,why", CLASSIFICATION,
                         ids=[row[0].split("(")[0].split(".")[-1] + f"-{i}" for i, row in enumerate(CLASSIFICATION)])
def test_classification_for_the_serving_code(tmp_path, operation, expected, why):
    db = f"sqlite:///{tmp_path}/db.sqlite3"
    root = project(tmp_path / "p", {"inv": {"0001_initial": migration([ITEM])}})
    assert preset(root, db, "expand").verdict == "applied"
    (root / "inv" / "migrations" / "0002_change.py").write_text(
        migration([operation], [("inv", "0001_initial")]))

    run = preset(root, db, "plan")
    assert run.code == 0 and run.verdict == "planned", run
    (op,) = run.operations("inv.0002_change")
    assert op["class"] == expected, op
    if why is None:
        assert "why" not in op
    else:
        assert why in op["why"], op
    # Refused in expand exactly when it is unsafe (unknown is allowed by default).
    before = applied_migrations(db)
    run = preset(root, db, "expand")
    if expected == "unsafe":
        assert (run.code, run.verdict) == (3, "refused"), run
        (refusal,) = run.kind("refusal")
        assert (refusal["migration"], refusal["index"]) == ("inv.0002_change", 0)
        assert "Safe.after_deploy()" in refusal["hint"]
        assert applied_migrations(db) == before
    else:
        assert (run.code, run.verdict) == (0, "applied"), run
        assert run.applied() == ["inv.0002_change"]


def test_operations_on_a_table_of_the_same_plan_are_safe(tmp_path):
    # A fresh database: no serving code can use a table the plan creates.
    db = f"sqlite:///{tmp_path}/db.sqlite3"
    root = project(tmp_path / "p", {"inv": {
        "0001_initial": migration([ITEM]),
        "0002_drop": migration(['migrations.RemoveField("item", "name")',
                                'migrations.AlterField("item", "note", models.CharField(max_length=50))'],
                               [("inv", "0001_initial")]),
    }})
    run = preset(root, db, "expand")
    assert (run.code, run.verdict) == (0, "applied"), run
    assert {op["class"] for op in run.kind("operation")} == {"safe"}
    assert run.applied() == ["inv.0001_initial", "inv.0002_drop"]


def test_unknown_operations_refused_on_request(tmp_path):
    db = f"sqlite:///{tmp_path}/db.sqlite3"
    root = project(tmp_path / "p", {"inv": {
        "0001_initial": migration([ITEM]),
        "0002_data": migration(['migrations.RunSQL("UPDATE inv_item SET qty = 0")'], [("inv", "0001_initial")]),
        "0003_late": migration(['migrations.RunPython(forwards)'], [("inv", "0002_data")], safe="after"),
    }})
    run = preset(root, db, "expand", "--unknown=refuse")
    assert (run.code, run.verdict) == (3, "refused"), run
    # Only the one that would run before the deployment; the after-deploy one is not judged.
    assert [(r["migration"], r["index"]) for r in run.kind("refusal")] == [("inv.0002_data", 0)]
    assert "UPDATE inv_item" in run.kind("refusal")[0]["why"]
    assert applied_migrations(db) == []
    run = preset(root, db, "expand", "--unknown=allow")
    assert run.verdict == "applied" and run.applied() == ["inv.0001_initial", "inv.0002_data"]


def test_long_texts_are_cut_to_fit_a_line(tmp_path):
    db = f"sqlite:///{tmp_path}/db.sqlite3"
    sql = "SELECT 1 /* " + "é≈x" * 6000 + " */"
    root = project(tmp_path / "p", {"inv": {"0001_initial": migration([ITEM, f"migrations.RunSQL({sql!r})"])}})
    run = preset(root, db, "expand", "--unknown=refuse")  # the why lands in two frames
    assert run.code == 3
    (op,) = [op for op in run.operations("inv.0001_initial") if op["type"] == "RunSQL"]
    assert op["why"].endswith("\u2026") and op["why"].startswith("RunSQL is not inspected: SELECT 1 /*")
    assert run.kind("refusal")[0]["why"].endswith("\u2026")


MARKERS = [
    ("before", "before_deploy"), ("after", "after_deploy"), ("always", "always"), (None, "always"),
    ("safe = Safe.after_deploy", "after_deploy"),  # the classmethod, uncalled
    ("safe = Safe.after_deploy(delay=__import__('datetime').timedelta(days=1))", "after_deploy"),
    ("safe = 'after_deploy'", "after_deploy"),  # django-safemigrate < 5 wrote strings/enums
    ("safe = type('E', (), {'value': 'before_deploy'})()", "before_deploy"),
]


@pytest.mark.parametrize("safe,marker", MARKERS)
def test_markers(tmp_path, safe, marker):
    db = f"sqlite:///{tmp_path}/db.sqlite3"
    root = project(tmp_path / "p", {"inv": {"0001_initial": migration([ITEM], safe=safe)}})
    run = preset(root, db, "plan")
    (frame,) = run.kind("migration")
    assert frame["marker"] == marker
    assert frame["run"] == ("contract" if marker == "after_deploy" else "expand")
    assert frame["operations"] == 1


def two_apps(root):
    """inv: 0001 (always) -> 0002 drops a nullable column after deploy -> 0003 (after deploy);
    log: 0001 (before deploy), independent of inv."""
    return project(root, {
        "inv": {
            "0001_initial": migration([ITEM]),
            "0002_drop_note": migration(['migrations.RemoveField("item", "note")'],
                                        [("inv", "0001_initial")], safe="after"),
            "0003_drop_item": migration(['migrations.DeleteModel("Item")'],
                                        [("inv", "0002_drop_note")], safe="after"),
        },
        "log": {"0001_initial": migration([
            'migrations.CreateModel("Entry", [("id", models.BigAutoField(primary_key=True))])'], safe="before")},
    })


def test_expand_applies_the_plan_less_after_deploy_and_contract_the_rest(tmp_path):
    db = f"sqlite:///{tmp_path}/db.sqlite3"
    root = two_apps(tmp_path / "p")

    plan = preset(root, db, "plan")
    assert (plan.code, plan.verdict) == (0, "planned"), plan
    assert query(db, "SELECT name FROM sqlite_master") == []  # not even django_migrations
    runs = {i: m["run"] for i, m in plan.migrations().items()}
    assert runs == {"inv.0001_initial": "expand", "inv.0002_drop_note": "contract",
                    "inv.0003_drop_item": "contract", "log.0001_initial": "expand"}
    assert plan.kind("applied") == [] and plan.kind("refusal") == []

    expand = preset(root, db, "expand")
    assert (expand.code, expand.verdict) == (0, "applied"), expand
    assert sorted(expand.applied()) == ["inv.0001_initial", "log.0001_initial"]
    assert sorted(applied_migrations(db)) == ["inv.0001_initial", "log.0001_initial"]
    assert "note" in columns(db, "inv_item")

    # Expand again (a retried release): the held-back migrations stay held back.
    again = preset(root, db, "expand")
    assert (again.verdict, again.applied()) == ("applied", [])
    assert list(again.migrations()) == ["inv.0002_drop_note", "inv.0003_drop_item"]

    contract = preset(root, db, "contract")
    assert (contract.code, contract.verdict) == (0, "applied"), contract
    assert contract.applied() == ["inv.0002_drop_note", "inv.0003_drop_item"]
    assert {m["run"] for m in contract.kind("migration")} == {"contract"}
    assert columns(db, "inv_item") == []

    for phase in ("plan", "expand", "contract"):
        nothing = preset(root, db, phase)
        assert (nothing.code, nothing.verdict, len(nothing.frames)) == (0, "nothing", 2), nothing


def test_pre_deploy_migration_depending_on_after_deploy_one_is_refused(tmp_path):
    db = f"sqlite:///{tmp_path}/db.sqlite3"
    root = two_apps(tmp_path / "p")
    assert preset(root, db, "expand").verdict == "applied"
    # Transitively: 0004 (unmarked: always) -> 0003 (after deploy) -> 0002 (after deploy).
    (root / "inv" / "migrations" / "0004_more.py").write_text(migration(
        ['migrations.CreateModel("More", [("id", models.BigAutoField(primary_key=True))])'],
        [("inv", "0003_drop_item")]))
    (root / "log" / "migrations" / "0002_after.py").write_text(migration(
        ['migrations.CreateModel("Other", [("id", models.BigAutoField(primary_key=True))])'],
        [("log", "0001_initial"), ("inv", "0002_drop_note")], safe="before"))
    before = applied_migrations(db)
    run = preset(root, db, "expand")
    assert (run.code, run.verdict) == (3, "refused"), run
    refusals = {r["migration"]: r for r in run.kind("refusal")}
    assert set(refusals) == {"inv.0004_more", "log.0002_after"}
    assert refusals["inv.0004_more"]["index"] is None
    assert "depends on inv.0002_drop_note" in refusals["inv.0004_more"]["why"]
    assert "Safe.after_deploy()" in refusals["log.0002_after"]["hint"]
    assert applied_migrations(db) == before and run.applied() == []


def test_after_deploy_drop_of_a_not_null_column_and_rename_are_refused(tmp_path):
    db = f"sqlite:///{tmp_path}/db.sqlite3"
    root = project(tmp_path / "p", {"inv": {"0001_initial": migration([ITEM])}})
    assert preset(root, db, "expand").verdict == "applied"
    (root / "inv" / "migrations" / "0002_x.py").write_text(migration(
        ['migrations.RemoveField("item", "qty")', 'migrations.RemoveField("item", "note")',
         'migrations.RenameField("item", "name", "title")'], [("inv", "0001_initial")], safe="after"))
    run = preset(root, db, "expand")
    assert (run.code, run.verdict) == (3, "refused"), run
    refusals = [(r["index"], r["why"], r["hint"]) for r in run.kind("refusal")]
    assert [index for index, _, _ in refusals] == [0, 2]  # the nullable `note` may go
    assert "NOT NULL column `qty`" in refusals[0][1] and "nullable" in refusals[0][2]
    assert "new name" in refusals[1][1]
    assert applied_migrations(db) == ["inv.0001_initial"]
    # Plan reports the same refusals, but its verdict is "planned".
    plan = preset(root, db, "plan")
    assert (plan.code, plan.verdict, len(plan.kind("refusal"))) == (0, "planned", 2)


def test_allow_unsafe_applies_and_says_so(tmp_path):
    db = f"sqlite:///{tmp_path}/db.sqlite3"
    root = project(tmp_path / "p", {"inv": {"0001_initial": migration([ITEM])}})
    assert preset(root, db, "expand").verdict == "applied"
    (root / "inv" / "migrations" / "0002_x.py").write_text(
        migration(['migrations.RemoveField("item", "name")'], [("inv", "0001_initial")]))
    run = preset(root, db, "expand", "--allow-unsafe")
    assert (run.code, run.verdict) == (0, "applied"), run
    (op,) = run.operations("inv.0002_x")
    assert op["class"] == "unsafe" and "column `name`" in op["overridden"]
    assert run.kind("refusal") == []
    assert "name" not in columns(db, "inv_item")


BACKWARD_MANAGE = MANAGE.replace("    from django.core.management import execute_from_command_line\n", """\
    from django.core.management import execute_from_command_line
    from django.db.migrations.executor import MigrationExecutor

    # A plan with a backward step, as Django would build it for a database ahead of the code.
    real = MigrationExecutor.migration_plan

    def migration_plan(self, targets, clean_start=False):
        plan = real(self, targets, clean_start)
        return plan + [(self.loader.get_migration("inv", "0001_initial"), True)]

    MigrationExecutor.migration_plan = migration_plan
""")


@pytest.mark.parametrize("phase", ["expand", "contract"])
def test_a_backward_step_is_refused(tmp_path, phase):
    db = f"sqlite:///{tmp_path}/db.sqlite3"
    root = project(tmp_path / "p", {"inv": {"0001_initial": migration([ITEM])}}, manage_py=BACKWARD_MANAGE)
    run = preset(root, db, phase)
    assert (run.code, run.verdict) == (3, "refused"), run
    (refusal,) = run.kind("refusal")
    assert "unapplies inv.0001_initial" in refusal["why"]
    assert applied_migrations(db) == []


def test_runs_manage_py_from_another_directory_and_requires_it_to_hand_over(tmp_path):
    db = f"sqlite:///{tmp_path}/db.sqlite3"
    root = project(tmp_path / "p", {"inv": {"0001_initial": migration([ITEM])}})
    # manage.py's directory is first on sys.path, as with `python p/manage.py`.
    run = preset(root, db, "expand", manage="p/manage.py", cwd=tmp_path)
    assert run.verdict == "applied", run
    (root / "manage.py").write_text("print('not django')\n")
    completed = subprocess.run([PYTHON, "-c", PROGRAM, "manage.py", "plan"], cwd=root,
                               capture_output=True, text=True)
    assert completed.returncode == 1
    assert "never called execute_from_command_line" in completed.stderr


# ---------------------------------------------------------------- the example's releases


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    built = {}
    for release in ("v2", "v3", "v4", "v5", "v6", "v7", "v7-unmarked", "v7-dependent", "v5-drop-required"):
        subprocess.run([str(EXAMPLE / "build-release"), release, str(root / release)], check=True)
        built[release] = root / release
    return built


def test_example_expand_and_contract(releases, database_url):
    """v4 (plain migrate) -> v5 -> v6 -> refused v7-unmarked and v7-dependent -> v7 expand
    (nothing to apply: the drop is held back) -> v7 contract (drops `published`)."""
    assert manage(releases["v4"], database_url, "migrate", "--noinput").returncode == 0
    at_v4 = schema(database_url)

    plan = preset(releases["v5"], database_url, "plan")
    assert (plan.code, plan.verdict) == (0, "planned"), plan
    assert list(plan.migrations()) == ["catalog.0007_book_year"]
    assert plan.migrations()["catalog.0007_book_year"]["marker"] == "before_deploy"
    assert [(op["type"], op["class"]) for op in plan.operations("catalog.0007_book_year")] == [
        ("AddField", "safe"), ("RunPython", "unknown")]
    assert schema(database_url) == at_v4  # plan applies nothing

    v5 = preset(releases["v5"], database_url, "expand")
    assert (v5.code, v5.verdict, v5.applied()) == (0, "applied", ["catalog.0007_book_year"]), v5
    assert query(database_url, "SELECT year FROM catalog_book ORDER BY id") == [
        (1965,), (1969,), (1984,), (1974,)]

    v6 = preset(releases["v6"], database_url, "expand")
    assert (v6.code, v6.applied()) == (0, ["catalog.0008_book_published_nullable"]), v6
    assert {op["class"] for op in v6.kind("operation")} == {"unknown", "safe"}

    before = schema(database_url)
    for refused in ("v7-unmarked", "v7-dependent"):
        run = preset(releases[refused], database_url, "expand")
        assert (run.code, run.verdict) == (3, "refused"), run
        assert run.applied() == []
        assert schema(database_url) == before
    (refusal,) = preset(releases["v7-unmarked"], database_url, "expand").kind("refusal")
    assert (refusal["migration"], refusal["index"]) == ("catalog.0009_remove_book_published", 0)
    assert "column `published` of table `catalog_book`" in refusal["why"]

    v7 = preset(releases["v7"], database_url, "expand")
    assert (v7.code, v7.verdict, v7.applied()) == (0, "applied", []), v7
    assert v7.migrations()["catalog.0009_remove_book_published"]["run"] == "contract"
    assert schema(database_url) == before

    contract = preset(releases["v7"], database_url, "contract")
    assert (contract.code, contract.applied()) == (0, ["catalog.0009_remove_book_published"]), contract
    assert columns(database_url, "catalog_book") == ["id", "title", "author", "slug", "price_cents", "year"]
    assert preset(releases["v7"], database_url, "contract").verdict == "nothing"


def test_example_refuses_everything_when_one_migration_is_unsafe(releases, database_url):
    # v4 -> v7-unmarked at once: 0007 and 0008 are safe, 0009 is not; nothing at all is applied.
    assert manage(releases["v4"], database_url, "migrate", "--noinput").returncode == 0
    before = schema(database_url)
    run = preset(releases["v7-unmarked"], database_url, "expand")
    assert (run.code, run.verdict) == (3, "refused"), run
    assert [m["run"] for m in run.kind("migration")] == ["expand"] * 3
    assert schema(database_url) == before


def test_example_after_deploy_drop_of_not_null_column_is_refused(releases, database_url):
    assert manage(releases["v5"], database_url, "migrate", "--noinput").returncode == 0
    before = schema(database_url)
    run = preset(releases["v5-drop-required"], database_url, "expand")
    assert (run.code, run.verdict) == (3, "refused"), run
    (refusal,) = run.kind("refusal")
    assert refusal["migration"] == "catalog.0008_remove_book_published"
    assert "NOT NULL column `published`" in refusal["why"] and "nullable" in refusal["hint"]
    assert schema(database_url) == before


def test_example_failing_migration_exits_1_without_end_frame(releases, database_url):
    # v3's 0006 raises halfway: a traceback on stderr, no end frame, and (one transaction per
    # migration) nothing of it recorded.
    assert manage(releases["v2"], database_url, "migrate", "--noinput").returncode == 0
    before = applied_migrations(database_url)
    run = preset(releases["v3"], database_url, "expand")
    assert run.code == 1, run
    assert "KeyError: 'the-dispossessed-1974'" in run.stderr and "Traceback" in run.stderr
    assert "Applying catalog.0006_book_price..." in run.stdout
    assert applied_migrations(database_url) == before
