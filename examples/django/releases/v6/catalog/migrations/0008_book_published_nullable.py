"""v6 (expand, before the deployment): backfill `year` for the books v4's code inserted while v5
rolled out, then make `published` nullable. v5's code, serving while this runs, still writes
`published`; v6's code stops writing it, and v7's code no longer knows it."""
from django.db import migrations, models
from django_safemigrate import Safe


def backfill(apps, schema_editor):
    Book = apps.get_model("catalog", "Book")
    for book in Book.objects.filter(year__isnull=True, published__isnull=False).order_by("id"):
        book.year = book.published
        book.save(update_fields=["year"])
        print(f"  year {book.slug}: {book.year}", flush=True)


class Migration(migrations.Migration):
    safe = Safe.before_deploy()
    dependencies = [("catalog", "0007_book_year")]
    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="book",
            name="published",
            field=models.PositiveIntegerField(null=True),
        ),
    ]
