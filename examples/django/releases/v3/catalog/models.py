from django.db import models


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.CharField(max_length=200)
    published = models.PositiveIntegerField()
    slug = models.SlugField(max_length=200, unique=True)
    # v3: prices, in cents, from the publisher's list.
    price_cents = models.PositiveIntegerField(null=True)
