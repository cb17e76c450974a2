"""The example Django project on its own: each release's models match its migrations, the
history v1 -> v2 -> v3 (fails) -> v4 does what the README says on SQLite and on PostgreSQL, the
web server answers and stops cleanly on SIGTERM, and DATABASE_URL parses as documented."""
import importlib.util
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

import django_example as example


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """Every release built once for the module: {"v1": Path, ...}."""
    root = tmp_path_factory.mktemp("releases")
    return {release: example.build(release, root / release) for release in example.RELEASES}


def test_build_release_refuses_unknown_release(tmp_path):
    result = subprocess.run([str(example.EXAMPLE / "build-release"), "v99", str(tmp_path / "o")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "no release v99" in result.stderr


@pytest.mark.parametrize("release", example.RELEASES)
def test_models_match_migrations(releases, release):
    result = example.manage(releases[release], "sqlite:///:memory:",
                            "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (releases[release] / "RELEASE").read_text().strip() == release


def migrate(releases, release, database_url):
    return example.manage(releases[release], database_url, "migrate", "--noinput")


def assert_history_through_v4(releases, database_url):
    """v1 -> v2 -> v3 (fails, changes nothing) -> v4, checking migrations, schema and data."""
    assert migrate(releases, "v1", database_url).returncode == 0
    assert example.applied_catalog_migrations(database_url) == example.CATALOG_MIGRATIONS["v1"]
    assert example.book_columns(database_url) == example.BOOK_COLUMNS["v1"]

    v2 = migrate(releases, "v2", database_url)
    assert v2.returncode == 0, v2.stderr
    assert example.applied_catalog_migrations(database_url) == example.CATALOG_MIGRATIONS["v2"]
    assert example.book_columns(database_url) == example.BOOK_COLUMNS["v2"]
    slugs = example.query(database_url, "SELECT slug FROM catalog_book ORDER BY id")
    assert [slug for (slug,) in slugs] == example.SLUGS

    v3 = migrate(releases, "v3", database_url)
    assert v3.returncode != 0
    assert "Applying catalog.0006_book_price" in v3.stdout
    assert "KeyError: 'the-dispossessed-1974'" in v3.stderr
    # The backfill priced three books before it raised: the transaction must have undone them
    # together with the column.
    assert "price neuromancer-1984: 999" in v3.stdout
    assert example.applied_catalog_migrations(database_url) == example.CATALOG_MIGRATIONS["v2"]
    assert example.book_columns(database_url) == example.BOOK_COLUMNS["v2"]

    v4 = migrate(releases, "v4", database_url)
    assert v4.returncode == 0, v4.stderr
    assert example.applied_catalog_migrations(database_url) == example.CATALOG_MIGRATIONS["v4"]
    assert example.book_columns(database_url) == example.BOOK_COLUMNS["v4"]
    prices = example.query(database_url, "SELECT price_cents FROM catalog_book ORDER BY id")
    assert [price for (price,) in prices] == example.PRICES_V4


def test_history_on_sqlite(releases, tmp_path):
    assert_history_through_v4(releases, f"sqlite:///{tmp_path}/bookshop.sqlite3")


def test_fresh_database_goes_straight_to_v4(releases, tmp_path):
    # A new environment installs the latest release at once: v3's failed attempt is not needed.
    database_url = f"sqlite:///{tmp_path}/bookshop.sqlite3"
    result = migrate(releases, "v4", database_url)
    assert result.returncode == 0, result.stderr
    assert example.applied_catalog_migrations(database_url) == example.CATALOG_MIGRATIONS["v4"]
    assert example.book_columns(database_url) == example.BOOK_COLUMNS["v4"]
    rows = example.query(database_url, "SELECT slug, price_cents FROM catalog_book ORDER BY id")
    assert rows == list(zip(example.SLUGS, example.PRICES_V4))


def test_history_on_postgres(releases, postgres_database):
    assert_history_through_v4(releases, postgres_database)


def test_v3_on_postgres_leaves_schema_and_data_untouched(releases, postgres_database):
    assert migrate(releases, "v2", postgres_database).returncode == 0
    snapshot = example.query(
        postgres_database,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_name = 'catalog_book' ORDER BY ordinal_position",
    )
    rows = example.query(postgres_database, "SELECT * FROM catalog_book ORDER BY id")

    assert migrate(releases, "v3", postgres_database).returncode != 0

    assert example.query(
        postgres_database,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_name = 'catalog_book' ORDER BY ordinal_position",
    ) == snapshot
    assert example.query(postgres_database, "SELECT * FROM catalog_book ORDER BY id") == rows


def free_loopback_address():
    # A 127.0.x.y of our own, as `shipmate local` gives each task; port 8000 must be free there.
    for last in range(2, 250):
        address = f"127.0.{os.getpid() % 200 + 20}.{last}"
        with socket.socket() as probe:
            try:
                probe.bind((address, 8000))
            except OSError:
                continue
            return address
    pytest.fail("no free 127.0.x.y:8000")


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_server_binds_task_ip_answers_and_stops_on_sigterm(releases, tmp_path):
    database_url = f"sqlite:///{tmp_path}/bookshop.sqlite3"
    assert migrate(releases, "v2", database_url).returncode == 0
    address = free_loopback_address()
    server = subprocess.Popen(
        [str(example.venv_bin() / "gunicorn"), "bookshop.wsgi"],
        cwd=releases["v2"],
        env=example.app_env(database_url, SHIPMATE_TASK_IP=address, WEB_CONCURRENCY="1"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, health = get_json(f"http://{address}:8000/healthz")
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "gunicorn never answered /healthz"
                time.sleep(0.2)
        assert (status, health) == (200, {"status": "ok", "release": "v2"})
        status, books = get_json(f"http://{address}:8000/api/books")
        assert status == 200
        assert books["release"] == "v2"
        assert [book["slug"] for book in books["books"]] == example.SLUGS
        assert "price_cents" not in books["books"][0]
        request = urllib.request.Request(
            f"http://{address}:8000/api/books", method="POST",
            data=json.dumps({"title": "Kindred", "author": "Octavia E. Butler",
                             "published": 1979}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
            assert json.loads(response.read())["book"]["slug"].startswith("kindred-")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert code == 0


def load_database_url_module():
    spec = importlib.util.spec_from_file_location(
        "database_url", example.EXAMPLE / "app" / "bookshop" / "database_url.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_database_url_parsing(tmp_path):
    database_url = load_database_url_module()
    assert database_url.parse("", tmp_path / "db.sqlite3") == {
        "ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}
    assert database_url.parse("sqlite:////var/lib/app/db.sqlite3", None)["NAME"] == \
        "/var/lib/app/db.sqlite3"
    assert database_url.parse(
        "postgresql://app:p%40ss@db.internal:5433/shop?sslmode=require", None) == {
        "ENGINE": "django.db.backends.postgresql", "NAME": "shop", "USER": "app",
        "PASSWORD": "p@ss", "HOST": "db.internal", "PORT": "5433",
        "OPTIONS": {"sslmode": "require"}}
    with pytest.raises(database_url.DatabaseUrlError, match="mysql"):
        database_url.parse("mysql://x/y", None)
    with pytest.raises(database_url.DatabaseUrlError, match="names no database"):
        database_url.parse("postgres://host:5432/", None)


# Releases v5..v7 rename `published` to `year` the expand/contract way, and the variants that
# shipmate's Django preset must refuse (tests/presets covers the preset itself).
EXPAND_CONTRACT_RELEASES = ("v5", "v6", "v7", "v7-unmarked", "v7-dependent", "v5-drop-required")
BOOK_COLUMNS_LATER = {
    "v5": example.BOOK_COLUMNS["v4"] + ["year"],
    "v6": example.BOOK_COLUMNS["v4"] + ["year"],
    "v7": ["id", "title", "author", "slug", "price_cents", "year"],
}


@pytest.fixture(scope="module")
def later_releases(tmp_path_factory):
    root = tmp_path_factory.mktemp("later")
    return {release: example.build(release, root / release)
            for release in ("v4",) + EXPAND_CONTRACT_RELEASES}


@pytest.mark.parametrize("release", EXPAND_CONTRACT_RELEASES)
def test_later_models_match_migrations(later_releases, release):
    result = example.manage(later_releases[release], "sqlite:///:memory:",
                            "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_release_variants_stay_out_of_later_releases(later_releases):
    # v7-unmarked is v7 with its own 0009; v7 and every other release never include a variant.
    unmarked = later_releases["v7-unmarked"] / "catalog" / "migrations" / "0009_remove_book_published.py"
    assert "safe = Safe" not in unmarked.read_text()
    v7 = later_releases["v7"] / "catalog" / "migrations"
    assert "Safe.after_deploy()" in (v7 / "0009_remove_book_published.py").read_text()
    assert not (v7 / "0010_book_year_index.py").exists()
    assert not (v7 / "0008_remove_book_published.py").exists()
    assert (later_releases["v7-dependent"] / "RELEASE").read_text().strip() == "v7-dependent"


API_CHECK = """
import json
from django.test import Client
client = Client(raise_request_exception=False)
get = client.get("/api/books")
post = client.post("/api/books", json.dumps(BODY), content_type="application/json")
print(json.dumps({"get": get.status_code, "post": post.status_code,
                  "books": get.json()["books"] if get.status_code == 200 else None,
                  "book": post.json().get("book") if post.status_code == 201 else None}))
"""


def api(later_releases, release, database_url, title):
    """GET and POST /api/books through release's code (Django's test client, in the release's
    own process) against whatever schema the database has now."""
    body = {"title": title, "author": "Octavia E. Butler", "published": 1979, "year": 1979}
    result = example.manage(later_releases[release], database_url, "shell", "-c",
                            f"BODY = {body!r}\n" + API_CHECK)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_expand_contract_history(later_releases, database_url):
    """Each schema change keeps the code still serving (and the code rolling out) answering
    reads and writes: v4 -> v5 (expand) -> v6 (expand) -> v7's code before the contract ->
    v7's contract. Migrated with plain `migrate`, phase by phase, as the preset would."""
    def migrate(release, *target):
        result = example.manage(later_releases[release], database_url, "migrate", "--noinput", *target)
        assert result.returncode == 0, result.stderr

    def ok(release, title):
        answer = api(later_releases, release, database_url, title)
        assert (answer["get"], answer["post"]) == (200, 201), (release, answer)
        return answer

    migrate("v4")
    ok("v4", "v4 on v4")
    migrate("v5")
    assert example.book_columns(database_url) == BOOK_COLUMNS_LATER["v5"]
    ok("v4", "v4 on v5")  # the previous release, during v5's rollout
    v5 = ok("v5", "v5 on v5")
    assert (v5["book"]["published"], v5["book"]["year"]) == (1979, 1979)
    migrate("v6")
    # (SQLite rebuilds the table to make `published` nullable: same columns, another order.)
    assert sorted(example.book_columns(database_url)) == sorted(BOOK_COLUMNS_LATER["v6"])
    assert example.query(database_url, "SELECT count(*) FROM catalog_book WHERE year IS NULL") == [(0,)]
    ok("v5", "v5 on v6")
    v6 = ok("v6", "v6 on v6")
    assert "published" not in v6["book"] and "published" not in v6["books"][0]
    # v7's rollout: its drop is held back, so v6 and v7 both serve on v6's schema.
    ok("v6", "v6 before v7's contract")
    v7 = ok("v7", "v7 before its contract")
    assert v7["book"]["year"] == 1979
    migrate("v7")  # the contract phase
    assert sorted(example.book_columns(database_url)) == sorted(BOOK_COLUMNS_LATER["v7"])
    ok("v7", "v7 after its contract")
    # Had the drop run before the rollout (v7-unmarked, which the preset refuses), v6's code
    # would have failed: its model still has the field, so its INSERTs name the column.
    assert api(later_releases, "v6", database_url, "v6 on v7")["post"] == 500
    rows = example.query(database_url, "SELECT title, year FROM catalog_book ORDER BY id")
    assert [title for title, _ in rows][4:] == [
        "v4 on v4", "v4 on v5", "v5 on v5", "v5 on v6", "v6 on v6",
        "v6 before v7's contract", "v7 before its contract", "v7 after its contract"]
    assert all(year for _, year in rows)
    check = example.manage(later_releases["v7"], database_url, "makemigrations", "--check", "--dry-run")
    assert check.returncode == 0, check.stdout + check.stderr


def test_expand_contract_history_on_sqlite(later_releases, tmp_path):
    assert_expand_contract_history(later_releases, f"sqlite:///{tmp_path}/bookshop.sqlite3")


def test_expand_contract_history_on_postgres(later_releases, postgres_database):
    assert_expand_contract_history(later_releases, postgres_database)
