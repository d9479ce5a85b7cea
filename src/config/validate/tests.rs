//! Config validation: every problem is reported with its key.

use crate::config::test_support::problem_keys as keys;
use crate::config::Config;

#[test]
fn defaults_are_valid() {
    assert!(Config::default().validate().is_ok());
    assert!(Config::from_yaml("").unwrap().validate().is_ok());
}

#[test]
fn unknown_keys_are_named() {
    let err = Config::from_yaml("admin:\n  lisen: 127.0.0.1:1\n").unwrap_err();
    assert_eq!(err.0[0].key, "admin.lisen");
    assert!(
        err.0[0].reason.contains("unknown field `lisen`"),
        "{}",
        err.0[0].reason
    );
    let err =
        Config::from_yaml("pools:\n  default:\n    backends: [{url: \"http://a:1\", wieght: 2}]\n")
            .unwrap_err();
    assert!(
        err.0[0].key.starts_with("pools.default.backends[0]"),
        "{:?}",
        err.0[0]
    );
    assert!(
        err.0[0].reason.contains("unknown field `wieght`"),
        "{}",
        err.0[0].reason
    );
}

#[test]
fn bad_values_name_their_key() {
    let err = Config::from_yaml("cache:\n  ttl: soon\n").unwrap_err();
    assert_eq!(err.0[0].key, "cache.ttl");
    // The message says the key once (the YAML parser's own copy is dropped).
    assert!(
        err.to_string()
            .starts_with("config key `cache.ttl`: invalid value"),
        "{err}"
    );
    let err = Config::from_yaml("listen: nowhere\n").unwrap_err();
    assert_eq!(err.0[0].key, "listen");
    let err = Config::from_yaml("limits:\n  max_request_body: 10 parsecs\n").unwrap_err();
    assert_eq!(err.0[0].key, "limits.max_request_body");
}

#[test]
fn every_rule_reports_its_key() {
    let yaml = r#"
admin: { listen: "0.0.0.0:9090" }
routing: { unknown_host: { action: redirect }, suspended_status: 200 }
headers: { tenant_id: "bad header" }
pools: { default: { backends: ["ftp://x"] }, empty: { backends: [] } }
tenants:
  - { id: "Bad Id" }
  - { id: acme, schema: pg_acme }
  - { id: beta, pool: nowhere }
  - { id: gamma, domains: ["-bad.com"] }
  - { id: delta, domains: ["ok.example.com"] }
  - { id: epsilon, domains: ["OK.example.com"] }
  - { id: zeta, plan: "Gold Plan" }
plans: { premium: dedicated, "Bad Plan": default }
"#;
    let keys = keys(yaml);
    for expected in [
        "admin.token",
        "routing.unknown_host.redirect_to",
        "routing.suspended_status",
        "headers.tenant_id",
        "pools.default.backends[0]",
        "pools.empty.backends",
        "tenants[0].id",
        "tenants[1].schema",
        "tenants[2].pool",
        "tenants[3].domains",
        "tenants[5].domains",
        "tenants[6].plan",
        "plans.premium",
        "plans.Bad Plan",
    ] {
        assert!(
            keys.iter().any(|k| k == expected),
            "missing {expected} in {keys:?}"
        );
    }
}

#[test]
fn acme_settings_are_checked_by_key() {
    assert!(keys("tls:\n  acme:\n    contact: [\"mailto:ops@example.com\"]\n").is_empty());
    let yaml = "tls:\n  acme:\n    directory: http://ca.test/dir\n    contact: [ops@example.com]\n    \
                ca_root: /nonexistent/root.pem\n    max_concurrent_orders: 0\n    renew_before: 0s\n";
    assert_eq!(
        keys(yaml),
        [
            "tls.acme.directory",
            "tls.acme.max_concurrent_orders",
            "tls.acme.contact[0]",
            "tls.acme.renew_before",
            "tls.acme.ca_root"
        ]
    );
    let err = Config::from_yaml("tls:\n  acme:\n    challenge: dns-01\n").unwrap_err();
    assert_eq!(err.0[0].key, "tls.acme.challenge");
    let alpn = Config::from_yaml("tls:\n  acme:\n    challenge: tls-alpn-01\n").unwrap();
    let acme = alpn.tls.unwrap().acme.unwrap();
    assert_eq!(acme.challenge, super::super::AcmeChallenge::TlsAlpn01);
}

#[test]
fn sizes_parse_with_units() {
    assert_eq!(super::super::parse_byte_size("10MiB"), Ok(10 << 20));
    assert_eq!(super::super::parse_byte_size("1 KB"), Ok(1000));
    assert!(super::super::parse_byte_size("ten").is_err());
}

#[test]
fn log_level_must_be_a_filter_serve_accepts() {
    assert!(keys("log: {level: \"info,tenant_gateway=debug\"}\n").is_empty());
    assert_eq!(keys("log: {level: \"nonsense[[[\"}\n"), ["log.level"]);
}

#[test]
fn injected_headers_may_not_take_a_name_the_gateway_owns() {
    let yaml = "headers: {tenant_id: Host, schema: X-Forwarded-For, database: content-length, \
                cache_prefix: Upgrade, cluster: Keep-Alive, request_id: TE, signature: Connection}\n";
    assert_eq!(
        keys(yaml),
        [
            "headers.tenant_id",
            "headers.schema",
            "headers.database",
            "headers.cache_prefix",
            "headers.cluster",
            "headers.request_id",
            "headers.signature",
        ]
    );
    for reserved in [
        "Transfer-Encoding",
        "Proxy-Connection",
        "Trailer",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
    ] {
        let errors = Config::from_yaml(&format!("headers: {{tenant_id: {reserved}}}\n"))
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(errors.0.len(), 1, "{errors}");
        assert_eq!(errors.0[0].key, "headers.tenant_id");
        assert!(errors.0[0].reason.contains("reserved"), "{errors}");
    }
}

#[test]
fn injected_headers_have_distinct_names() {
    assert_eq!(
        keys("headers: {tenant_id: X-Org, schema: x-org}\n"),
        ["headers.schema"]
    );
}

#[test]
fn limits_that_would_stop_serving_are_refused() {
    assert_eq!(
        keys("limits: {header_read_timeout: 0s, max_request_body: 0}\n"),
        ["limits.max_request_body", "limits.header_read_timeout"]
    );
    let yaml = "pools:\n  default:\n    backends: [\"http://127.0.0.1:8000\"]\n    \
                timeouts: {connect: 0s, response_header: 0s, total: 0s}\n";
    assert_eq!(
        keys(yaml),
        [
            "pools.default.timeouts.connect",
            "pools.default.timeouts.response_header",
            "pools.default.timeouts.total",
        ]
    );
}

#[test]
fn a_negative_body_limit_says_what_a_size_is() {
    for value in ["-1", "1.5"] {
        let err =
            Config::from_yaml(&format!("limits:\n  max_request_body: {value}\n")).unwrap_err();
        assert_eq!(err.0[0].key, "limits.max_request_body");
        assert!(
            err.0[0]
                .reason
                .contains("a size like `10MiB` or a non-negative number of bytes"),
            "{}",
            err.0[0].reason
        );
    }
    let sized = Config::from_yaml("limits:\n  max_request_body: 512KiB\n").unwrap();
    assert_eq!(sized.limits.max_request_body, 512 << 10);
    let bytes = Config::from_yaml("limits:\n  max_request_body: 2048\n").unwrap();
    assert_eq!(bytes.limits.max_request_body, 2048);
}

#[test]
fn backend_forms_and_their_tls_files_are_checked_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("ca.pem");
    std::fs::write(&garbage, "not PEM\n").unwrap();
    let yaml = format!(
        "pools:\n  default:\n    backends: [\"unix:app.sock\", \"https://app.internal:8443\"]\n    resolve_interval: 0s\n    tls: {{ca: {}, server_name: \"bad name!\", client_cert: /nonexistent.pem}}\n",
        garbage.display()
    );
    assert_eq!(
        keys(&yaml),
        [
            "pools.default.backends[0]",
            "pools.default.tls.ca",
            "pools.default.tls.server_name",
            "pools.default.tls.client_key",
            "pools.default.resolve_interval",
        ]
    );
    // A socket not there yet is a warning, not a refusal.
    let config =
        Config::from_yaml("pools:\n  default:\n    backends: [\"unix:/nonexistent/app.sock\"]\n")
            .unwrap();
    assert!(config.validate().is_ok());
    assert_eq!(config.warnings()[0].key, "pools.default.backends[0]");
}

#[test]
fn django_column_defaults_and_template_copies_are_checked_by_key() {
    let django = "store: {kind: postgres, url: \"postgres://u@h/db\", layout: django-tenants}\n";
    let good = format!(
        "{django}provisioning: {{template_schema: tenant_template, template_copy_data: [django_content_type]}}\n"
    );
    assert_eq!(keys(&good), Vec::<String>::new());
    let defaults = "store:\n  django:\n    column_defaults: {paid_until: \"current_date + 365\", \"Bad Col\": \"1\", on_trial: \"\", x: \"1; DROP TABLE t\"}\n";
    assert_eq!(
        keys(defaults),
        [
            "store.django.column_defaults.Bad Col",
            "store.django.column_defaults.on_trial",
            "store.django.column_defaults.x",
        ]
    );
    assert_eq!(
        keys("provisioning: {template_copy_data: [django_content_type]}\n"),
        ["provisioning.template_copy_data[0]"],
        "copying rows needs a template"
    );
    assert_eq!(
        keys("provisioning: {template_schema: t, template_copy_data: [\"a;b\"]}\n"),
        ["provisioning.template_copy_data[0]"]
    );
}
