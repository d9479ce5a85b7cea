from django.db import connection
from django.http import JsonResponse

from notes.models import Note


def list_notes(request):
    """The current schema and its notes: what the tests check isolation with."""
    titles = list(Note.objects.order_by("id").values_list("title", flat=True))
    return JsonResponse({"schema": connection.schema_name, "notes": titles})


def healthz(request):
    return JsonResponse({"ok": True, "schema": connection.schema_name})
