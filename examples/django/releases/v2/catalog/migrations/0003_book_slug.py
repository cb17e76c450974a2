from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_seed_books")]
    operations = [
        migrations.AddField(
            model_name="book",
            name="slug",
            field=models.SlugField(max_length=200, null=True),
        ),
    ]
