"""The middleware that replaces django-tenants' ``TenantMainMiddleware``.

Instead of a domain lookup per request, it takes the schema the gateway sent
in ``X-Tenant-Schema``, checks ``X-Tenant-Signature`` when signing keys are
configured, and selects the schema with django-tenants' own API
(``connection.set_schema``, or ``connection.set_tenant`` with
``LOAD_TENANT``). A request without valid tenant headers is refused: 400
when they are missing or malformed, 403 when the signature does not verify.

Settings (all optional)::

    TENANT_GATEWAY = {
        "SIGNING_KEYS": {"k2": "...", "k1": "..."},  # accepted keys; none: no check
        "MAX_SKEW": 30,                # seconds a signature's ts may differ from now
        "PUBLIC_PATHS": ["/healthz"],  # served on the public schema without headers
        "LOAD_TENANT": False,          # load the tenant model up front
        "HEADERS": {"tenant_id": "X-Tenant-ID", "schema": "X-Tenant-Schema",
                    "signature": "X-Tenant-Signature", "request_id": "X-Request-ID"},
    }
"""

import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.http import HttpResponseBadRequest, HttpResponseForbidden
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.postgresql_backend.base import is_valid_schema_name
from django_tenants.utils import get_tenant_model

from tenant_gateway_django.signature import SignatureError, verify

logger = logging.getLogger("tenant_gateway_django")

DEFAULT_HEADERS = {
    "tenant_id": "X-Tenant-ID",
    "schema": "X-Tenant-Schema",
    "signature": "X-Tenant-Signature",
    "request_id": "X-Request-ID",
}
MIN_SECRET_BYTES = 32


def _meta_key(header):
    return "HTTP_" + header.upper().replace("-", "_")


class GatewayTenant:
    """``request.tenant``: the schema name and the gateway's tenant id at no
    cost; any other attribute loads the tenant model (one query, once)."""

    def __init__(self, schema_name, tenant_id, domain_url):
        self.schema_name = schema_name
        self.tenant_id = tenant_id
        self.domain_url = domain_url
        self._model = None

    def __getattr__(self, name):
        if name.startswith("__") or name == "_model":
            raise AttributeError(name)
        if self._model is None:
            self._model = get_tenant_model().objects.get(schema_name=self.schema_name)
        return getattr(self._model, name)

    def __repr__(self):
        return f"<GatewayTenant {self.schema_name}>"


class Config:
    """``settings.TENANT_GATEWAY``, read and checked once at start."""

    def __init__(self, raw):
        unknown = set(raw) - {"SIGNING_KEYS", "MAX_SKEW", "PUBLIC_PATHS", "LOAD_TENANT", "HEADERS"}
        if unknown:
            raise ImproperlyConfigured(f"TENANT_GATEWAY: unknown keys {sorted(unknown)}")
        self.keys = {}
        for kid, secret in (raw.get("SIGNING_KEYS") or {}).items():
            secret = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
            if len(secret) < MIN_SECRET_BYTES:
                raise ImproperlyConfigured(
                    f"TENANT_GATEWAY['SIGNING_KEYS'][{kid!r}]: at least {MIN_SECRET_BYTES} bytes"
                )
            self.keys[kid] = secret
        self.max_skew = int(raw.get("MAX_SKEW", 30))
        self.public_paths = tuple(raw.get("PUBLIC_PATHS", ()))
        self.load_tenant = bool(raw.get("LOAD_TENANT", False))
        headers = {**DEFAULT_HEADERS, **raw.get("HEADERS", {})}
        self.meta = {name: _meta_key(header) for name, header in headers.items()}


class TenantGatewayMiddleware:
    """Put it where ``TenantMainMiddleware`` was: first in ``MIDDLEWARE``."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.config = Config(getattr(settings, "TENANT_GATEWAY", {}))

    def __call__(self, request):
        refused = self.select_tenant(request)
        if refused is not None:
            return refused
        return self.get_response(request)

    def select_tenant(self, request):
        """Sets the schema for this request, or returns the refusal."""
        config, meta = self.config, request.META
        schema = meta.get(config.meta["schema"])
        if schema is None and request.path.startswith(config.public_paths):
            connection.set_schema_to_public()
            return None
        if not schema:
            return self.refuse(HttpResponseBadRequest, request, "missing tenant headers")
        if not is_valid_schema_name(schema):
            return self.refuse(HttpResponseBadRequest, request, "invalid tenant schema")
        tenant_id = meta.get(config.meta["tenant_id"], "")
        if config.keys:
            try:
                verify(
                    meta.get(config.meta["signature"], ""),
                    tenant_id,
                    schema,
                    meta.get(config.meta["request_id"], ""),
                    config.keys,
                    config.max_skew,
                )
            except SignatureError as e:
                return self.refuse(HttpResponseForbidden, request, f"tenant signature refused: {e}")

        # The raw Host: the gateway already matched it against the domain table.
        tenant = GatewayTenant(schema, tenant_id, meta.get("HTTP_HOST", "").split(":")[0])
        if config.load_tenant:
            # The tenant table lives in public; the connection may still point
            # at the previous request's schema.
            connection.set_schema_to_public()
            model = get_tenant_model().objects.filter(schema_name=schema).first()
            if model is None:
                return self.refuse(HttpResponseForbidden, request, "unknown tenant schema")
            tenant._model = model
            connection.set_tenant(model)
        else:
            connection.set_schema(schema)
        request.tenant = tenant
        TenantMainMiddleware.setup_url_routing(request)
        return None

    @staticmethod
    def refuse(response_class, request, reason):
        logger.warning("refused %s %s: %s", request.method, request.path, reason)
        return response_class(f"{reason}\n", content_type="text/plain")
