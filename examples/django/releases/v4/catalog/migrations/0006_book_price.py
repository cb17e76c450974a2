"""v4 fixes v3's migration. v3's 0006 never committed (its transaction rolled back, so it is not
in django_migrations), which lets v4 ship a corrected 0006 under the same name: books missing
from the price list keep a NULL price instead of failing the release."""
from django.db import migrations, models

PRICES_CENTS = {
    "dune-1965": 1099,
    "the-left-hand-of-darkness-1969": 1250,
    "neuromancer-1984": 999,
}


def backfill(apps, schema_editor):
    Book = apps.get_model("catalog", "Book")
    for book in Book.objects.order_by("id"):
        book.price_cents = PRICES_CENTS.get(book.slug)
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
