"""Settings for the bookshop example: everything that differs between machines comes from the
environment, so one image (or one image directory under `shipmate local`) runs everywhere."""
import os
from pathlib import Path

from bookshop import database_url

BASE_DIR = Path(__file__).resolve().parent.parent

# The release this code is, written into the image by build-release.
RELEASE = (BASE_DIR / "RELEASE").read_text().strip() if (BASE_DIR / "RELEASE").exists() else "dev"

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-example-key-set-DJANGO_SECRET_KEY")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "catalog",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "bookshop.urls"
WSGI_APPLICATION = "bookshop.wsgi.application"

DATABASES = {
    "default": database_url.parse(
        os.environ.get("DATABASE_URL"), BASE_DIR / "db.sqlite3"
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"

# Logs go to stdout/stderr: ECS ships them to CloudWatch Logs (awslogs), `shipmate local` too.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}
