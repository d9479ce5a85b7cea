"""The v1 signature format, without Django: run with
`python -m unittest discover -s tests` from integrations/django/."""

import unittest

from tenant_gateway_django.signature import SignatureError, sign, verify

SECRET = "an-example-secret-of-32-bytes-or-more!"
OTHER = "another-secret-of-32-bytes-or-more-too"
NOW = 1_700_000_000


class SignatureTests(unittest.TestCase):
    def test_the_gateways_vector_verifies(self):
        # Pinned in src/proxy/signing.rs too: both sides sign the same bytes.
        value = "v1;kid=k1;ts=1700000000;sig=719956d5765079556594ca0551efa634f91017215b456a133eab4f81623824b3"
        self.assertEqual(sign("k1", SECRET, "acme", "acme_s", "req-1", ts=NOW), value)
        self.assertEqual(verify(value, "acme", "acme_s", "req-1", {"k1": SECRET}, 30, now=NOW), "k1")

    def test_any_active_key_is_accepted(self):
        keys = {"new": OTHER, "old": SECRET}
        for kid, secret in keys.items():
            value = sign(kid, secret, "acme", "acme", "r", ts=NOW)
            self.assertEqual(verify(value, "acme", "acme", "r", keys, 30, now=NOW), kid)

    def refused(self, value, *, tenant="acme", schema="acme", request_id="r", keys=None, now=NOW):
        with self.assertRaises(SignatureError) as caught:
            verify(value, tenant, schema, request_id, keys or {"k1": SECRET}, 30, now=now)
        return str(caught.exception)

    def test_forgeries_are_refused(self):
        good = sign("k1", SECRET, "acme", "acme", "r", ts=NOW)
        self.assertEqual(self.refused(good, schema="globex"), "signature mismatch")
        self.assertEqual(self.refused(good, request_id="r2"), "signature mismatch")
        self.assertEqual(self.refused(sign("k1", OTHER, "acme", "acme", "r", ts=NOW)), "signature mismatch")
        self.assertEqual(self.refused(sign("k9", SECRET, "acme", "acme", "r", ts=NOW)), "unknown key id 'k9'")
        # Moving a byte from one field into the next changes the message.
        shifted = sign("k1", SECRET, "acm", "eacme", "r", ts=NOW)
        self.assertEqual(self.refused(shifted), "signature mismatch")

    def test_stale_or_future_timestamps_are_refused(self):
        good = sign("k1", SECRET, "acme", "acme", "r", ts=NOW)
        self.assertIn("more than 30s", self.refused(good, now=NOW + 31))
        self.assertIn("more than 30s", self.refused(good, now=NOW - 31))

    def test_malformed_values_are_refused(self):
        good = sign("k1", SECRET, "acme", "acme", "r", ts=NOW)
        for value, reason in [
            ("", "missing signature"),
            ("v2" + good[2:], "not a v1 signature"),
            (good + ";x=1", "not a v1 signature"),
            (good.replace("kid=", "key="), "malformed kid"),
            (good.replace("ts=", "ts=-"), "malformed ts"),
            (good.upper().replace("V1;KID=K1;TS=", "v1;kid=k1;ts=").replace(";SIG=", ";sig="), "malformed sig"),
            (good[:-2], "malformed sig"),
        ]:
            with self.subTest(value=value):
                self.assertEqual(self.refused(value), reason)


if __name__ == "__main__":
    unittest.main()
