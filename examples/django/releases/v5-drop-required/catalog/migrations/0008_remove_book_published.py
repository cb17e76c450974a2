"""v5-drop-required: drops `published` after the deployment, straight after v5, without v6's
step that makes it nullable. The marker keeps v5's code safe, but the new code no longer knows
the column, and until the contract phase drops it every INSERT fails on its NOT NULL: shipmate's
Django preset refuses the release (exit code 3) and says to make the column nullable first."""
from django.db import migrations
from django_safemigrate import Safe


class Migration(migrations.Migration):
    safe = Safe.after_deploy()
    dependencies = [("catalog", "0007_book_year")]
    operations = [
        migrations.RemoveField(model_name="book", name="published"),
    ]
