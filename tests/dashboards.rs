//! The operator's Grafana dashboard (`deploy/grafana/`) and Prometheus alert
//! rules (`deploy/prometheus/`) hold up: the dashboard is Grafana dashboard
//! JSON with a query on every panel, promtool accepts the rules and their
//! unit tests pass, and every metric either of them names is exported by a
//! live gateway's `/metrics`, with the label values they select on, and is
//! listed in `docs/metrics.md`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use common::pebble::Pebble;
use common::tls::https_get;
use common::{Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::Value;

const DASHBOARD: &str = "deploy/grafana/tenant-gateway.json";
const ALERTS: &str = "deploy/prometheus/alerts.yaml";
const ALERT_TESTS: &str = "deploy/prometheus/alerts_test.yaml";
const METRICS_DOC: &str = "docs/metrics.md";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    let path = repo_path(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `tenant_gateway_*` metric names in `text` (a histogram's as its
/// `_bucket` series, as PromQL names it).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("tenant_gateway_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The label values `text` selects `tenant_gateway_*` series by: each
/// `name{label="value", ...}` as (name, label, value). Regex and negative
/// matchers (`=~`, `!=`, `!~`) are left out, as is `instance`.
fn selected_labels(text: &str) -> BTreeSet<(String, String, String)> {
    let mut selected = BTreeSet::new();
    for name in metric_names(text) {
        let opening = format!("{name}{{");
        for (at, _) in text.match_indices(&opening) {
            let inside = &text[at + opening.len()..];
            let inside = &inside[..inside.find('}').expect("a closing brace")];
            for matcher in inside.split(',') {
                let Some((label, value)) = matcher.split_once('=') else {
                    continue;
                };
                let label = label.trim();
                let negated = label.ends_with('!');
                if negated || value.starts_with('~') || label == "instance" {
                    continue;
                }
                let value = value.trim().trim_matches('"');
                selected.insert((name.clone(), label.to_owned(), value.to_owned()));
            }
        }
    }
    selected
}

/// The dashboard's queries, one string.
fn dashboard_exprs() -> String {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).expect("valid JSON");
    panels(&dashboard)
        .into_iter()
        .filter_map(|panel| panel["targets"].as_array())
        .flatten()
        .filter_map(|target| target["expr"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn selected_labels_are_the_equality_matchers() {
    let got = selected_labels(
        r#"sum(rate(tenant_gateway_requests_total{instance=~"$instance",class="5xx", outcome != "routed"}[5m])) / tenant_gateway_limited_requests_total{reason="rate"}"#,
    );
    let want: BTreeSet<_> = [
        ("tenant_gateway_requests_total", "class", "5xx"),
        ("tenant_gateway_limited_requests_total", "reason", "rate"),
    ]
    .map(|(m, l, v)| (m.to_owned(), l.to_owned(), v.to_owned()))
    .into();
    assert_eq!(got, want);
}

/// The dashboard's panels, those inside collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        if let Some(inner) = panel["panels"].as_array() {
            all.extend(inner);
        }
    }
    all
}

#[test]
fn the_dashboard_is_grafana_json_with_a_query_on_every_panel() {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).expect("valid JSON");
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!(schema >= 36, "a current Grafana schema version: {schema}");
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());

    let mut ids = BTreeSet::new();
    let mut cells: Vec<(String, [u64; 4])> = Vec::new();
    let mut rows = Vec::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().expect("a title").to_owned();
        assert!(
            ids.insert(panel["id"].as_u64().expect("an id")),
            "{title}: id taken"
        );
        let pos = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| pos[k].as_u64().expect("gridPos"));
        assert!(x + w <= 24, "{title}: wider than the grid");
        for (other, [ox, oy, ow, oh]) in &cells {
            let apart = x + w <= *ox || *ox + ow <= x || y + h <= *oy || *oy + oh <= y;
            assert!(apart, "{title} overlaps {other}");
        }
        cells.push((title.clone(), [x, y, w, h]));
        if panel["type"] == "row" {
            rows.push(title.to_lowercase());
            continue;
        }
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            let expr = target["expr"].as_str().expect("an expr");
            assert!(!metric_names(expr).is_empty(), "{title}: {expr}");
        }
    }
    for topic in [
        "traffic",
        "errors",
        "latency",
        "backends",
        "cache",
        "change feed",
        "acme",
        "top n",
        "domain table",
        "tenant traffic controls",
        "usage",
    ] {
        assert!(
            rows.iter().any(|row| row.contains(topic)),
            "no {topic} row in {rows:?}"
        );
    }
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool: {e}: install prometheus (apt-get install prometheus, or ./scripts/test.sh)")
        });
    assert!(
        out.status.success(),
        "promtool {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_alert_rules_and_each_alert_fires_on_its_case() {
    promtool(&["check", "rules", ALERTS]);
    promtool(&["test", "rules", ALERT_TESTS]);
    let rules = read(ALERTS);
    for alert in [
        "TenantGatewayBackendDown",
        "TenantGatewayPoolHasNoHealthyBackend",
        "TenantGatewayChangeFeedDisconnected",
        "TenantGatewayCertificateExpiringSoon",
        "TenantGatewayHigh5xxRatio",
        "TenantGatewayServingStaleRoutes",
        "TenantGatewayRequestsHeldInMaintenance",
        "TenantGatewayManyRequestsLimited",
        "TenantGatewayUsageFlushesFailing",
        "TenantGatewayDomainTableLoading",
    ] {
        assert!(rules.contains(&format!("alert: {alert}\n")), "{alert}");
        assert!(
            read(ALERT_TESTS).contains(&format!("alertname: {alert}\n")),
            "{alert} untested"
        );
    }
}

/// Some series exist only with some config or after some traffic, so the
/// gateway gets them all: `metrics.per_tenant` (per-tenant counters),
/// `tls.acme` with one certificate ordered (its expiry gauge), one admin
/// request (the admin counters) and `usage.enabled` (the flush counters).
/// Everything else is there from the start.
#[tokio::test]
async fn every_metric_of_the_dashboard_and_the_alerts_is_in_a_live_gateways_metrics() {
    let pebble = Pebble::start(None).await;
    let app = Backend::start("app").await;
    let yaml = format!(
        "metrics:\n  per_tenant: true\nusage:\n  enabled: true\ntls:\n  listen: 127.0.0.1:0\n{}\
         tenants:\n  - {{id: acme, domains: [shop.acme.test]}}\n",
        pebble.acme_yaml(&[])
    );
    let gw = Gateway::start(GatewayOptions::new().backend(&app).config(&yaml)).await;
    let roots = pebble.issuing_roots().await;
    let name = "shop.acme.test";
    let got = https_get(gw.https_addr.expect("HTTPS"), &roots, name, name, "/")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", gw.log(), pebble.log()));
    assert_eq!(got.reply.status, StatusCode::OK);
    let (status, _) = gw.admin(Method::GET, "/v1/tenants", None).await;
    assert_eq!(status, StatusCode::OK);

    let reply = gw
        .admin_raw(None, Method::GET, "/metrics", Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = reply.text();
    let series = text.lines().filter(|line| !line.starts_with('#'));
    let exported: BTreeSet<String> = series
        .clone()
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    let mut named = metric_names(&read(DASHBOARD));
    named.extend(metric_names(&read(ALERTS)));
    assert!(named.len() > 20, "{named:?}");
    let missing: Vec<&String> = named.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "named by {DASHBOARD} or {ALERTS} but not in /metrics: {missing:?}\n{text}"
    );

    // A selector on a label value no series has (`reason="rate_limit"`)
    // matches nothing, silently: each one must be exported.
    let labelled: BTreeSet<(String, String, String)> = series
        .flat_map(|line| {
            let (name, rest) = line.split_once('{').unwrap_or((line, ""));
            let labels = rest.split_once('}').map_or("", |(labels, _)| labels);
            labels.split("\",").filter_map(move |pair| {
                let (label, value) = pair.split_once("=\"")?;
                let value = value.trim_end_matches('"');
                Some((name.to_owned(), label.to_owned(), value.to_owned()))
            })
        })
        .collect();
    let mut selected = selected_labels(&dashboard_exprs());
    selected.extend(selected_labels(&read(ALERTS)));
    assert!(selected.len() >= 4, "{selected:?}");
    let unmatched: Vec<_> = selected.difference(&labelled).collect();
    assert!(
        unmatched.is_empty(),
        "label values selected by {DASHBOARD} or {ALERTS} that no series in /metrics has: \
         {unmatched:?}\n{text}"
    );

    // Every metric family the gateway exports is documented.
    let doc = read(METRICS_DOC);
    let undocumented: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .filter(|family| !doc.contains(&format!("`{family}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "exported but not listed in {METRICS_DOC}: {undocumented:?}"
    );
}
