"""Run a django-tenants site behind tenant-gateway.

The gateway resolves the tenant from the Host once, from its cache, and sends
it as headers (``X-Tenant-ID``, ``X-Tenant-Schema``, optionally signed with
``X-Tenant-Signature``). :class:`TenantGatewayMiddleware` replaces
django-tenants' ``TenantMainMiddleware``: it trusts those headers (after
checking the signature when keys are configured) instead of looking the
domain up in the database on every request.
"""

from tenant_gateway_django.signature import SignatureError, sign, verify

__all__ = ["SignatureError", "sign", "verify"]
