"""v1's data: a few books, so every later release has rows to reshape."""
from django.db import migrations

BOOKS = [
    ("Dune", "Frank Herbert", 1965),
    ("The Left Hand of Darkness", "Ursula K. Le Guin", 1969),
    ("Neuromancer", "William Gibson", 1984),
    ("The Dispossessed", "Ursula K. Le Guin", 1974),
]


def seed(apps, schema_editor):
    Book = apps.get_model("catalog", "Book")
    for title, author, published in BOOKS:
        Book.objects.create(title=title, author=author, published=published)


def unseed(apps, schema_editor):
    Book = apps.get_model("catalog", "Book")
    Book.objects.filter(title__in=[title for title, _, _ in BOOKS]).delete()


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
