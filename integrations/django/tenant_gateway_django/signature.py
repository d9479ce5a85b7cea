"""The ``X-Tenant-Signature`` format of tenant-gateway, version 1.

Header value: ``v1;kid=<key id>;ts=<unix seconds>;sig=<64 lowercase hex>``.
``sig`` is HMAC-SHA256(secret, message), the message being

    v1\\n<kid>\\n<ts>\\n<X-Tenant-ID>\\n<X-Tenant-Schema>\\n<X-Request-ID>

with each value exactly as sent (empty when its header is absent). A header
value cannot contain a newline, so the fields cannot be shifted into one
another. This module has no Django dependency.
"""

import hashlib
import hmac
import re
import time

VERSION = "v1"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,32}")
_TIMESTAMP = re.compile(r"[0-9]{1,20}")
_SIG = re.compile(r"[0-9a-f]{64}")


class SignatureError(Exception):
    """Why a signature was refused (safe to log; never contains a secret)."""


def _message(kid, ts, tenant_id, schema, request_id):
    return "\n".join((VERSION, kid, ts, tenant_id, schema, request_id)).encode("latin-1")


def sign(kid, secret, tenant_id, schema, request_id, ts=None):
    """The header value the gateway would send (for tests and tools)."""
    ts = str(int(time.time()) if ts is None else ts)
    digest = hmac.new(_as_bytes(secret), _message(kid, ts, tenant_id, schema, request_id), hashlib.sha256)
    return f"{VERSION};kid={kid};ts={ts};sig={digest.hexdigest()}"


def verify(value, tenant_id, schema, request_id, keys, max_skew, now=None):
    """Checks a signature against the accepted ``keys`` ({id: secret}).

    Returns the key id that signed; raises :class:`SignatureError` otherwise.
    The digest comparison is constant-time; ``ts`` must be within
    ``max_skew`` seconds of ``now``.
    """
    if not value:
        raise SignatureError("missing signature")
    parts = value.split(";")
    if len(parts) != 4 or parts[0] != VERSION:
        raise SignatureError("not a v1 signature")
    kid, ts, sig = _field(parts[1], "kid=", _KEY_ID), _field(parts[2], "ts=", _TIMESTAMP), _field(parts[3], "sig=", _SIG)
    secret = keys.get(kid)
    if secret is None:
        raise SignatureError(f"unknown key id {kid!r}")
    try:
        message = _message(kid, ts, tenant_id, schema, request_id)
    except UnicodeEncodeError:
        raise SignatureError("tenant headers are not ASCII") from None
    expected = hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sig):
        raise SignatureError("signature mismatch")
    now = time.time() if now is None else now
    if abs(now - int(ts)) > max_skew:
        raise SignatureError(f"timestamp {ts} is more than {max_skew}s from now")
    return kid


def _field(part, prefix, pattern):
    if not part.startswith(prefix) or not pattern.fullmatch(part[len(prefix):]):
        raise SignatureError(f"malformed {prefix[:-1]}")
    return part[len(prefix):]


def _as_bytes(secret):
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")
