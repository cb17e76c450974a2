from django.db import models


class Book(models.Model):
    # v6 neither shows nor writes `published` (views.api_fields): the field stays in the model,
    # nullable, only until v7's migration drops the column after v7's rollout. Nullable first,
    # so v7's code, which no longer knows the column, can insert books before it is gone.
    RETIRED_FIELDS = ("published",)

    title = models.CharField(max_length=200)
    author = models.CharField(max_length=200)
    published = models.PositiveIntegerField(null=True)
    slug = models.SlugField(max_length=200, unique=True)
    price_cents = models.PositiveIntegerField(null=True)
    year = models.PositiveIntegerField(null=True)
