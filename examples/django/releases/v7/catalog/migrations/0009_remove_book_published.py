"""v7 (contract, after the deployment): drop `published`. v6's code still has the field (its
INSERTs name the column, its worker reads it), so it may only go once v7's code is all that
serves: `Safe.after_deploy()` holds it back from the migration that runs before the rollout, and
shipmate's Django preset applies it once the deployment is complete. v7's code inserts books
without it meanwhile, which works because v6 made it nullable."""
from django.db import migrations
from django_safemigrate import Safe


class Migration(migrations.Migration):
    safe = Safe.after_deploy()
    dependencies = [("catalog", "0008_book_published_nullable")]
    operations = [
        migrations.RemoveField(model_name="book", name="published"),
    ]
