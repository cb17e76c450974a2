from django.db import models


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.CharField(max_length=200)
    published = models.PositiveIntegerField()
    # v2: URLs by slug. Added nullable, backfilled by 0004, then made required by 0005: the
    # usual three steps, so the old code (which doesn't know the column) keeps working while
    # the migration runs.
    slug = models.SlugField(max_length=200, unique=True)
