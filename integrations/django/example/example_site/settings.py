"""A minimal django-tenants site: a shared `customers` app (tenants and
domains, in `public`) and a tenant app `notes` (one table per schema).

Configured from the environment, so the tests and scripts/bench-django.sh
run the same project both ways:

- TGW_EXAMPLE_DATABASE: postgres://user@host:port/db (required)
- TGW_EXAMPLE_MIDDLEWARE: `gateway` (TenantGatewayMiddleware, the default) or
  `django-tenants` (TenantMainMiddleware: a domain lookup per request)
- TGW_EXAMPLE_SIGNING_KEYS: `id=secret,id=secret`, the accepted signing keys
"""

import os
from urllib.parse import urlsplit

SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "example_site.urls"
WSGI_APPLICATION = "example_site.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_db = urlsplit(os.environ["TGW_EXAMPLE_DATABASE"])
DATABASES = {
    "default": {
        "ENGINE": "django_tenants.postgresql_backend",
        "NAME": _db.path.lstrip("/"),
        "USER": _db.username or "postgres",
        "PASSWORD": _db.password or "",
        "HOST": _db.hostname or "127.0.0.1",
        "PORT": str(_db.port or 5432),
        # Keep connections across requests, as a production site would.
        "CONN_MAX_AGE": 600,
    }
}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

SHARED_APPS = ["django_tenants", "customers", "django.contrib.contenttypes", "django.contrib.auth"]
TENANT_APPS = ["django.contrib.contenttypes", "notes"]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]
TENANT_MODEL = "customers.Client"
TENANT_DOMAIN_MODEL = "customers.Domain"

_middleware = os.environ.get("TGW_EXAMPLE_MIDDLEWARE", "gateway")
MIDDLEWARE = [
    {
        "gateway": "tenant_gateway_django.middleware.TenantGatewayMiddleware",
        "django-tenants": "django_tenants.middleware.main.TenantMainMiddleware",
    }[_middleware],
    "django.middleware.common.CommonMiddleware",
]

TENANT_GATEWAY = {
    "SIGNING_KEYS": dict(
        pair.split("=", 1) for pair in os.environ.get("TGW_EXAMPLE_SIGNING_KEYS", "").split(",") if pair
    ),
    "MAX_SKEW": 30,
    "PUBLIC_PATHS": ["/healthz"],
}

LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"tenant_gateway_django": {"handlers": ["console"], "level": "WARNING"}},
}
