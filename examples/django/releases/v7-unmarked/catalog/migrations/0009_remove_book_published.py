"""v7-unmarked: v7's drop of `published` without its `Safe.after_deploy()` marker, as a
developer might forget it. Run before the deployment, it would break v6's code, which keeps
serving during the rollout and still names the column: shipmate's Django preset refuses the
release (exit code 3) before any schema change, naming this migration and its RemoveField."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0008_book_published_nullable")]
    operations = [
        migrations.RemoveField(model_name="book", name="published"),
    ]
