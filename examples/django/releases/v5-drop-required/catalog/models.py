from django.db import models


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    price_cents = models.PositiveIntegerField(null=True)
    year = models.PositiveIntegerField(null=True)
