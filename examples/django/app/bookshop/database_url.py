"""DATABASE_URL -> Django's DATABASES entry.

Twelve-factor style: the task definition carries one variable, the same on ECS and locally.
Only the two engines this example supports are understood; anything else is an error with the
URL's scheme in it, so a typo fails at start-up rather than at the first query.
"""
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


class DatabaseUrlError(ValueError):
    pass


def parse(url, default_sqlite_path):
    """`postgresql://user:pass@host:port/name?sslmode=require`, `sqlite:////abs/path.sqlite3`,
    or empty/None for SQLite at `default_sqlite_path`."""
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(default_sqlite_path)}
    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise DatabaseUrlError(f"DATABASE_URL {parts.scheme}://… names no database")
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "OPTIONS": options,
        }
    if parts.scheme == "sqlite":
        # sqlite:////abs/path (four slashes) is an absolute path; sqlite:///rel is relative.
        path = unquote(parts.path)
        path = path[1:] if path.startswith("//") else path.lstrip("/")
        if not path or path == ":memory:":
            return {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(Path(path))}
    raise DatabaseUrlError(
        f"DATABASE_URL has scheme {parts.scheme!r}; expected postgresql:// or sqlite://"
    )
