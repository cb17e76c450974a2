"""v3's migration, with the bug v4 fixes: the price list misses a book, so the backfill raises
KeyError halfway, after the column was added and some rows were priced. Django runs the whole
migration in one transaction on PostgreSQL, so the column and the prices roll back with it and
the database stays exactly as v2 left it: that is why the rollout must wait for this exit code."""
from django.db import migrations, models

PRICES_CENTS = {
    "dune-1965": 1099,
    "the-left-hand-of-darkness-1969": 1250,
    "neuromancer-1984": 999,
}


def backfill(apps, schema_editor):
    Book = apps.get_model("catalog", "Book")
    for book in Book.objects.order_by("id"):
        book.price_cents = PRICES_CENTS[book.slug]
        book.save(update_fields=["price_cents"])
        print(f"  price {book.slug}: {book.price_cents}", flush=True)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_book_slug_required")]
    operations = [
        migrations.AddField(
            model_name="book",
            name="price_cents",
            field=models.PositiveIntegerField(null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
