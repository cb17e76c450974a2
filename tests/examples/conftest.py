"""Fixtures for the example's tests: a throwaway PostgreSQL server (scripts/postgres) shared by
the session, and a fresh database on it per test."""
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL 15 on 127.0.0.1 for this test session: dict with url, port, dir."""
    started = subprocess.run(
        [str(REPO / "scripts" / "postgres"), "start"],
        capture_output=True, text=True, timeout=600,
    )
    if started.returncode != 0:
        pytest.fail(f"scripts/postgres start failed:\n{started.stderr}")
    info = dict(line.split("=", 1) for line in started.stdout.split())
    yield {"url": info["DATABASE_URL"], "port": int(info["PGPORT"]), "dir": info["PGDIR"]}
    subprocess.run([str(REPO / "scripts" / "postgres"), "stop", info["PGDIR"]], check=True,
                   timeout=120)


@pytest.fixture
def postgres_database(postgres_server):
    """A new, empty database on the session's server; its URL. Dropped afterwards."""
    import psycopg

    name = f"bookshop_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server["url"], autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:{postgres_server['port']}/{name}"
    with psycopg.connect(postgres_server["url"], autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
