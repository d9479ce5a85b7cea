import datetime

from django.conf import settings
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


def one_year_from_today():
    return datetime.date.today() + datetime.timedelta(days=365)


class Client(TenantMixin):
    """A tenant as the django-tenants docs and the seeds model it: its
    defaults live in Python, so the database has none for these columns."""

    name = models.CharField(max_length=100)
    paid_until = models.DateField(default=one_year_from_today)
    on_trial = models.BooleanField(default=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tenants")
    auto_create_schema = True


class Domain(DomainMixin):
    pass
