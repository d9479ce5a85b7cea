"""Creates the user `owner`, the public tenant, tenants `acme` and `globex`
and the template tenant `tenant_template` with django-tenants' own models
(which creates and migrates their schemas), each tenant with notes of its
own. Run after `migrate_schemas --shared`.

`tenant_template` has no domain: it is never routed. It is a tenant so that
`migrate_schemas` keeps it migrated; the gateway clones new tenants from it
(`provisioning.template_schema`)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django_tenants.utils import schema_context

from customers.models import Client, Domain
from notes.models import Note

TENANTS = [
    ("public", "Public", "example.test", []),
    ("acme", "Acme", "acme.test", ["acme: first note", "acme: second note"]),
    ("globex", "Globex", "globex.test", ["globex: only note"]),
    ("tenant_template", "Template", None, []),
]


class Command(BaseCommand):
    help = "Create the example owner, tenants, domains and notes."

    def handle(self, *args, **options):
        owner = get_user_model().objects.create_user("owner", "owner@example.test")
        self.stdout.write(f"user owner: id {owner.pk}")
        for schema, name, domain, notes in TENANTS:
            tenant = Client(schema_name=schema, name=name, owner=owner)
            tenant.save()
            if domain:
                Domain.objects.create(domain=domain, tenant=tenant, is_primary=True)
            if notes:
                with schema_context(schema):
                    Note.objects.bulk_create(Note(title=title) for title in notes)
            self.stdout.write(f"tenant {schema} on {domain}: {len(notes)} notes")
