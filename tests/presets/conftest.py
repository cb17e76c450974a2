"""The PostgreSQL fixtures of tests/examples (a throwaway server per session, a fresh database
per test), shared rather than copied."""
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "shipmate_examples_conftest", Path(__file__).resolve().parents[1] / "examples" / "conftest.py")
_examples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_examples)

postgres_server = _examples.postgres_server
postgres_database = _examples.postgres_database
