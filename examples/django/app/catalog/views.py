"""Two endpoints: /healthz for load balancers and ECS health checks, and /api/books, which shows
whatever columns the release's model has, so each release's migrations are visible over HTTP."""
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse

from catalog.models import Book


def healthz(request):
    try:
        connection.ensure_connection()
    except DatabaseError as error:
        return JsonResponse(
            {"status": "unavailable", "release": settings.RELEASE, "error": str(error)},
            status=503,
        )
    return JsonResponse({"status": "ok", "release": settings.RELEASE})


def books(request):
    fields = [field.attname for field in Book._meta.concrete_fields]
    rows = list(Book.objects.order_by("id").values(*fields))
    return JsonResponse({"release": settings.RELEASE, "books": rows})
