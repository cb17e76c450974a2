"""Two endpoints: /healthz for load balancers and ECS health checks, and /api/books: GET lists
the books with every column the release's code uses (so each release's migrations are visible over
HTTP), POST creates one from JSON (so a rollout can be watched for failing writes, too)."""
import json
import uuid

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils.text import slugify

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


def api_fields():
    """The model's columns, less those the release retired: a retired field stays in the model
    (Django's model must match the migrations) until a later release's migration drops it, but
    the code neither shows nor writes it any more."""
    retired = getattr(Book, "RETIRED_FIELDS", ())
    return [field for field in Book._meta.concrete_fields if field.name not in retired]


def books(request):
    if request.method == "POST":
        return create(request)
    fields = [field.attname for field in api_fields()]
    rows = list(Book.objects.order_by("id").values(*fields))
    return JsonResponse({"release": settings.RELEASE, "books": rows})


def create(request):
    """POST /api/books {"title": ..., "author": ..., "published": 1969, ...}: the columns this
    release writes are taken from the body, anything else is ignored (so one client can write to
    every release). 201 with the book; 400 when a required column is missing."""
    try:
        data = json.loads(request.body)
        assert isinstance(data, dict)
    except (ValueError, AssertionError):
        return JsonResponse({"error": "the body must be a JSON object"}, status=400)
    fields = [field for field in api_fields() if not field.primary_key]
    book = Book(**{field.attname: data[field.name] for field in fields if field.name in data})
    if any(field.name == "slug" for field in fields) and not book.slug:
        book.slug = f"{slugify(book.title)}-{uuid.uuid4().hex[:8]}"
    if hasattr(book, "complete"):
        book.complete()
    missing = [field.name for field in fields
               if not field.null and not field.has_default() and getattr(book, field.attname) in (None, "")]
    if missing:
        return JsonResponse({"error": f"missing: {', '.join(missing)}"}, status=400)
    book.save()
    return JsonResponse(
        {"release": settings.RELEASE, "book": {field.attname: getattr(book, field.attname)
                                               for field in api_fields()}},
        status=201,
    )
