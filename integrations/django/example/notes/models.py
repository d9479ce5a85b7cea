from django.db import models


class Note(models.Model):
    """A row in each tenant's own schema."""

    title = models.CharField(max_length=200)
