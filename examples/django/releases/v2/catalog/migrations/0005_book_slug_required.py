from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_backfill_slug")]
    operations = [
        migrations.AlterField(
            model_name="book",
            name="slug",
            field=models.SlugField(max_length=200, unique=True),
        ),
    ]
