"""Data migration: every existing book gets its slug before the column becomes required."""
from django.db import migrations
from django.utils.text import slugify


def backfill(apps, schema_editor):
    Book = apps.get_model("catalog", "Book")
    for book in Book.objects.filter(slug__isnull=True).order_by("id"):
        book.slug = slugify(f"{book.title}-{book.published}")
        book.save(update_fields=["slug"])
        print(f"  slug {book.id}: {book.slug}", flush=True)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_book_slug")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
