"""v7-dependent: v7 plus an index marked to run before the deployment, which depends on v7's
after-deploy drop (0009). It cannot run before the rollout without 0009, and 0009 cannot run
before it: shipmate's Django preset refuses the release (exit code 3)."""
from django.db import migrations, models
from django_safemigrate import Safe


class Migration(migrations.Migration):
    safe = Safe.before_deploy()
    dependencies = [("catalog", "0009_remove_book_published")]
    operations = [
        migrations.AddIndex(
            model_name="book",
            index=models.Index(fields=["year"], name="catalog_book_year_idx"),
        ),
    ]
