//! Signed tenant headers (`headers.signing`): the app behind the gateway gets
//! an `X-Tenant-Signature` it can verify with the shared secret, a client's
//! own copy never reaches it, and with two keys the first one signs (also
//! after a reload swaps them).

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{Backend, Gateway, GatewayOptions, Seen};
use hyper::Method;
use ring::hmac;
use serde_json::json;

const CURRENT: &str = "current-secret-0123456789abcdef-0123456789";
const PREVIOUS: &str = "previous-secret-0123456789abcdef-012345678";

fn signing_config(keys: &[&str]) -> String {
    let mut yaml = String::from("headers:\n  signing:\n    keys:\n");
    for key in keys {
        yaml.push_str(&format!("      - {key}\n"));
    }
    yaml
}

async fn gateway_with(options: GatewayOptions, app: &Backend) -> Gateway {
    let gw = Gateway::with_acme(options.backend(app)).await;
    gw
}

/// Checks the signature the backend saw as an app would, following the
/// docs/headers.md: `v1;kid=K;ts=T;sig=HEX`, an HMAC-SHA256 over
/// `v1\nK\nT\n<tenant id>\n<schema>\n<request id>`. Returns the key id.
fn verify(seen: &Seen, secrets: &[(&str, &str)]) -> Result<String, String> {
    let value = seen
        .header("x-tenant-signature")
        .ok_or("no x-tenant-signature")?;
    let fields: Vec<&str> = value.split(';').collect();
    let [version, kid, ts, sig] = fields[..] else {
        return Err(format!("not four fields: {value}"));
    };
    assert_eq!(version, "v1");
    let (kid, ts, sig) = (field(kid, "kid=")?, field(ts, "ts=")?, field(sig, "sig=")?);
    let secret = secrets
        .iter()
        .find(|(id, _)| *id == kid)
        .ok_or(format!("unknown key id {kid}"))?
        .1;
    let signed = format!(
        "v1\n{kid}\n{ts}\n{}\n{}\n{}",
        seen.header("x-tenant-id").unwrap_or(""),
        seen.header("x-tenant-schema").unwrap_or(""),
        seen.header("x-request-id").unwrap_or(""),
    );
    let tag: Vec<u8> = (0..sig.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(sig.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("sig is not hex: {e}"))?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, signed.as_bytes(), &tag).map_err(|_| "signature mismatch".to_string())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ts: u64 = ts.parse().map_err(|_| format!("ts {ts} is not a number"))?;
    if now.abs_diff(ts) > 60 {
        return Err(format!("ts {ts} is far from now {now}"));
    }
    Ok(kid)
}

fn field(field: &str, prefix: &str) -> Result<String, String> {
    field
        .strip_prefix(prefix)
        .map(str::to_owned)
        .ok_or(format!("{field} lacks {prefix}"))
}

#[tokio::test]
async fn the_backend_sees_a_signature_that_verifies_with_the_shared_secret() {
    let app = Backend::start("app").await;
    let config = signing_config(&[&format!("{{id: k1, secret: {CURRENT}}}")]);
    let gw = gateway_with(GatewayOptions::new().config(&config), &app).await;

    let seen = gw
        .request(Method::GET, "acme.test", "/orders")
        .header("X-Request-ID", "req-42")
        .send()
        .await
        .seen();
    assert_eq!(seen.header("x-request-id"), Some("req-42"));
    assert_eq!(verify(&seen, &[("k1", CURRENT)]), Ok("k1".to_string()));

    // The signature binds the tenant: the same signature with another
    // tenant's headers does not verify.
    let mut forged = seen.clone();
    forged.0["headers"]["x-tenant-schema"] = json!("globex");
    assert_eq!(
        verify(&forged, &[("k1", CURRENT)]),
        Err("signature mismatch".to_string())
    );
    // A generated request id is signed as well.
    let seen = gw.get("acme.test", "/").await.seen();
    assert_eq!(verify(&seen, &[("k1", CURRENT)]), Ok("k1".to_string()));
}

#[tokio::test]
async fn a_client_sent_signature_is_stripped_with_signing_on_or_off() {
    let app = Backend::start("app").await;
    let forged = "v1;kid=k1;ts=1;sig=00";
    let off = gateway_with(GatewayOptions::new(), &app).await;
    let seen = off
        .request(Method::GET, "acme.test", "/")
        .header("X-Tenant-Signature", forged)
        .send()
        .await
        .seen();
    assert_eq!(seen.header("x-tenant-signature"), None);
    assert_eq!(
        seen.tenant_header_names(),
        ["x-tenant-id", "x-tenant-schema"]
    );

    let config = signing_config(&[&format!("{{id: k1, secret: {CURRENT}}}")]);
    let on = gateway_with(GatewayOptions::new().config(&config), &app).await;
    let seen = on
        .request(Method::GET, "acme.test", "/")
        .header("X-Tenant-Signature", forged)
        .header("x-tenant-signature", "v1;kid=k1;ts=2;sig=11")
        .send()
        .await
        .seen();
    assert_eq!(
        seen.tenant_header_names(),
        ["x-tenant-id", "x-tenant-schema", "x-tenant-signature"]
    );
    assert_ne!(seen.header("x-tenant-signature"), Some(forged));
    assert_eq!(verify(&seen, &[("k1", CURRENT)]), Ok("k1".to_string()));
}

#[tokio::test]
async fn with_two_keys_the_first_signs_and_a_reload_rotates_them() {
    let app = Backend::start("app").await;
    let both = [("new", CURRENT), ("old", PREVIOUS)];
    // The current secret comes from the environment, the previous inline.
    let rotating = signing_config(&[
        "{id: new, secret_env: TGW_SIGNING_SECRET}",
        &format!("{{id: old, secret: {PREVIOUS}}}"),
    ]);
    let before = signing_config(&[
        &format!("{{id: old, secret: {PREVIOUS}}}"),
        "{id: new, secret_env: TGW_SIGNING_SECRET}",
    ]);
    let options = GatewayOptions::new()
        .config(&before)
        .env("TGW_SIGNING_SECRET", CURRENT);
    let mut gw = gateway_with(options, &app).await;

    let seen = gw.get("acme.test", "/").await.seen();
    assert_eq!(verify(&seen, &both), Ok("old".to_string()));

    gw.rewrite_config(&rotating);
    let (status, body) = gw.reload().await;
    assert_eq!(status, hyper::StatusCode::OK, "{body}");
    let seen = gw.get("acme.test", "/").await.seen();
    assert_eq!(verify(&seen, &both), Ok("new".to_string()));
    // An app that only knows the retired key refuses it.
    assert_eq!(
        verify(&seen, &[("old", PREVIOUS)]),
        Err("unknown key id new".to_string())
    );
}

#[tokio::test]
async fn a_short_secret_is_refused_at_start_naming_the_key() {
    let out = common::run_command(
        &["check-config", "--config", "{config}"],
        &signing_config(&["{id: k1, secret: too-short}"]),
        &[],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        out.stdout.contains("headers.signing.keys[0].secret")
            || out.stderr.contains("headers.signing.keys[0].secret"),
        "{out:?}"
    );
}
