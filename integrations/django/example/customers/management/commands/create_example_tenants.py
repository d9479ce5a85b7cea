"""Creates the public tenant and tenants `acme` and `globex` with
django-tenants' own models (which creates and migrates their schemas), each
with notes of its own. Run after `migrate_schemas --shared`."""

from django.core.management.base import BaseCommand
from django_tenants.utils import schema_context

from customers.models import Client, Domain
from notes.models import Note

TENANTS = [
    ("public", "Public", "example.test", []),
    ("acme", "Acme", "acme.test", ["acme: first note", "acme: second note"]),
    ("globex", "Globex", "globex.test", ["globex: only note"]),
]


class Command(BaseCommand):
    help = "Create the example tenants, domains and notes."

    def handle(self, *args, **options):
        for schema, name, domain, notes in TENANTS:
            tenant = Client(schema_name=schema, name=name)
            tenant.save()
            Domain.objects.create(domain=domain, tenant=tenant, is_primary=True)
            if notes:
                with schema_context(schema):
                    Note.objects.bulk_create(Note(title=title) for title in notes)
            self.stdout.write(f"tenant {schema} on {domain}: {len(notes)} notes")
