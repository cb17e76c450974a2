from django.db import models


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.CharField(max_length=200)
    # The year of first publication. v5 starts renaming it to `year` the zero-downtime way:
    # v5 adds `year` and writes both, v6 stops using `published`, v7 drops it after the rollout.
    published = models.PositiveIntegerField()
    slug = models.SlugField(max_length=200, unique=True)
    price_cents = models.PositiveIntegerField(null=True)
    # v5: nullable, so v4's code (which doesn't know it) keeps inserting books while v5 rolls out.
    year = models.PositiveIntegerField(null=True)

    def complete(self):
        """v5 writes both columns, from whichever the client sent: v4's code, still serving
        during the rollout, reads `published`."""
        if self.year is None:
            self.year = self.published
        if self.published is None:
            self.published = self.year
