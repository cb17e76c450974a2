"""v5 (expand, before the deployment): a nullable `year` column, backfilled from `published`.
Both are safe for v4's code, which keeps serving while this runs: it doesn't know the new column,
and its INSERTs leave it NULL (v6's migration backfills the rows v4 writes during the rollout)."""
from django.db import migrations, models
from django_safemigrate import Safe


def backfill(apps, schema_editor):
    Book = apps.get_model("catalog", "Book")
    for book in Book.objects.filter(year__isnull=True).order_by("id"):
        book.year = book.published
        book.save(update_fields=["year"])
        print(f"  year {book.slug}: {book.year}", flush=True)


class Migration(migrations.Migration):
    safe = Safe.before_deploy()
    dependencies = [("catalog", "0006_book_price")]
    operations = [
        migrations.AddField(
            model_name="book",
            name="year",
            field=models.PositiveIntegerField(null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
