"""The example's background worker (a Celery worker's stand-in): every few seconds it reads the
whole catalog through the release's model, so it needs the same schema as the web service.
It runs as a second ECS service from the same image (`python manage.py catalog_worker`), which
is why `shipmate deploy --service web --service worker` releases both behind one migration."""
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from catalog.models import Book


class Command(BaseCommand):
    help = "Read the catalog every few seconds and log what this release sees (SIGTERM stops it)."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=2.0, help="seconds between reads")

    def handle(self, *args, every, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        fields = [field.attname for field in Book._meta.concrete_fields]
        while not stop.is_set():
            books = list(Book.objects.order_by("id").values(*fields))
            self.stdout.write(
                f"worker (release {settings.RELEASE}): {len(books)} books, fields {', '.join(fields)}",
            )
            self.stdout.flush()
            stop.wait(every)
        self.stdout.write(f"worker (release {settings.RELEASE}): stopped")
