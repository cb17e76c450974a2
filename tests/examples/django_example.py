"""Helpers shared by the example's tests: build a release of examples/django, run its manage.py,
and read back what the migrations did (applied migrations, table columns, rows) from SQLite or
PostgreSQL. Pure plumbing: the assertions live in the tests."""
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "django"
RELEASES = ("v1", "v2", "v3", "v4")

# What each release's migrations leave in django_migrations for the catalog app, and the columns
# of catalog_book. v3's 0006 never commits, so after a failed v3 the state is v2's.
CATALOG_MIGRATIONS = {
    "v1": ["0001_initial", "0002_seed_books"],
    "v2": ["0001_initial", "0002_seed_books", "0003_book_slug", "0004_backfill_slug",
           "0005_book_slug_required"],
}
CATALOG_MIGRATIONS["v4"] = CATALOG_MIGRATIONS["v2"] + ["0006_book_price"]
BOOK_COLUMNS = {
    "v1": ["id", "title", "author", "published"],
    "v2": ["id", "title", "author", "published", "slug"],
}
BOOK_COLUMNS["v4"] = BOOK_COLUMNS["v2"] + ["price_cents"]
SLUGS = ["dune-1965", "the-left-hand-of-darkness-1969", "neuromancer-1984",
         "the-dispossessed-1974"]
PRICES_V4 = [1099, 1250, 999, None]


def build(release, out):
    """examples/django/build-release RELEASE OUT; returns OUT as a Path."""
    subprocess.run([str(EXAMPLE / "build-release"), release, str(out)], check=True)
    return Path(out)


def venv_bin():
    """The bin/ of the Python environment running the tests: it has Django, psycopg and gunicorn
    (tests/requirements.txt), so it is the "image's" Python for `shipmate local` too."""
    return Path(sys.executable).parent


def app_env(database_url, **extra):
    env = {
        "PATH": f"{venv_bin()}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url,
    }
    env.update(extra)
    return env


def manage(app_dir, database_url, *args, timeout=300):
    """`python manage.py ARGS` in a built release; returns the CompletedProcess (never raises on
    a non-zero exit: failing migrations are part of the story)."""
    return subprocess.run(
        [str(venv_bin() / "python"), "manage.py", *args],
        cwd=app_dir,
        env=app_env(database_url),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def query(database_url, sql, params=()):
    """Rows of one SELECT against the example's database (SQLite path or PostgreSQL URL)."""
    parts = urlsplit(database_url)
    if parts.scheme == "sqlite":
        path = parts.path[1:] if parts.path.startswith("//") else parts.path
        with sqlite3.connect(path) as connection:
            return connection.execute(sql.replace("%s", "?"), params).fetchall()
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        return connection.execute(sql, params).fetchall()


def applied_catalog_migrations(database_url):
    rows = query(database_url,
                 "SELECT name FROM django_migrations WHERE app = %s ORDER BY id", ("catalog",))
    return [name for (name,) in rows]


def book_columns(database_url):
    """Column names of catalog_book in table order, from the catalogue the database keeps
    (information_schema on PostgreSQL, table_info on SQLite)."""
    if urlsplit(database_url).scheme == "sqlite":
        return [row[1] for row in query(database_url, "PRAGMA table_info(catalog_book)")]
    rows = query(
        database_url,
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = 'catalog_book'"
        " ORDER BY ordinal_position",
    )
    return [name for (name,) in rows]
