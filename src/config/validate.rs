//! The rules a configuration must satisfy, each problem reported with its key.

use std::collections::HashSet;

use super::reserved_headers::reserved_reason;
use super::BackendAddr;
use super::{Config, ConfigError, StoreKind, StoreLayout, UnknownHostAction};

pub(super) fn problems(config: &Config) -> Vec<ConfigError> {
    let mut out = Vec::new();
    let mut bad = |key: String, reason: String| out.push(ConfigError::new(key, reason));

    if config.workers > 1024 {
        bad(
            "workers".into(),
            format!("{} is more than 1024 threads", config.workers),
        );
    }
    if !config.admin.listen.ip().is_loopback() && config.admin.token.is_none() {
        bad(
            "admin.token".into(),
            format!(
                "required when admin.listen ({}) is not a loopback address; set it or {}",
                config.admin.listen,
                super::ADMIN_TOKEN_ENV
            ),
        );
    }
    if config.admin.token.as_deref().is_some_and(|t| t.len() < 16) {
        bad(
            "admin.token".into(),
            "must be at least 16 characters".into(),
        );
    }
    if config.listen == config.admin.listen && config.listen.port() != 0 {
        bad(
            "admin.listen".into(),
            format!("{} is also the data path's listen address", config.listen),
        );
    }

    let mut admin_problems = Vec::new();
    super::admin::problems(&config.admin, &mut admin_problems);
    for problem in admin_problems {
        bad(problem.key, problem.reason);
    }

    store_problems(config, &mut bad);
    let mut usage_problems = Vec::new();
    config.usage.problems(&mut usage_problems);
    for problem in usage_problems {
        bad(problem.key, problem.reason);
    }
    if let Some(tls) = &config.tls {
        let mut tls_problems = Vec::new();
        super::tls::problems(tls, config.listen, &mut tls_problems);
        for problem in tls_problems {
            bad(problem.key, problem.reason);
        }
    }

    if config.cache.max_entries == 0 {
        bad("cache.max_entries".into(), "must be at least 1".into());
    }
    if config.cache.table_max_domains == 0 {
        bad(
            "cache.table_max_domains".into(),
            "must be at least 1 (cache.warm: false turns the table off)".into(),
        );
    }
    if config.cache.ttl.is_zero() {
        bad("cache.ttl".into(), "must be longer than 0s".into());
    }
    if config.cache.negative_ttl.is_zero() {
        bad("cache.negative_ttl".into(), "must be longer than 0s".into());
    }

    let unknown = &config.routing.unknown_host;
    match (unknown.action, unknown.redirect_to.as_deref()) {
        (UnknownHostAction::Redirect, None) => bad(
            "routing.unknown_host.redirect_to".into(),
            "required when routing.unknown_host.action is redirect".into(),
        ),
        (_, Some(url))
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || url.parse::<http::Uri>().is_err() =>
        {
            bad(
                "routing.unknown_host.redirect_to".into(),
                format!("'{url}' is not an absolute http(s) URL"),
            )
        }
        _ => {}
    }
    if let Some(pool) = &unknown.public_pool {
        if !config.pools.contains_key(pool) {
            bad(
                "routing.unknown_host.public_pool".into(),
                format!("no pool named '{pool}' in pools"),
            );
        }
    }
    if !(400..=599).contains(&config.routing.suspended_status) {
        bad(
            "routing.suspended_status".into(),
            format!(
                "{} is not a 4xx or 5xx status",
                config.routing.suspended_status
            ),
        );
    }

    let h = &config.headers;
    let mut seen = HashSet::new();
    for (key, value) in [
        ("headers.tenant_id", &h.tenant_id),
        ("headers.schema", &h.schema),
        ("headers.database", &h.database),
        ("headers.cache_prefix", &h.cache_prefix),
        ("headers.cluster", &h.cluster),
        ("headers.request_id", &h.request_id),
        ("headers.signature", &h.signature),
    ] {
        match http::HeaderName::from_bytes(value.as_bytes()) {
            Err(_) => bad(key.into(), format!("'{value}' is not a valid header name")),
            Ok(name) => {
                if let Some(reason) = reserved_reason(&name) {
                    bad(key.into(), format!("'{value}' is reserved: {reason}"));
                } else if !seen.insert(name) {
                    bad(key.into(), format!("'{value}' is used for two headers"));
                }
            }
        }
    }

    if let Some(signing) = &h.signing {
        let mut signing_problems = Vec::new();
        super::signing::problems(signing, &mut signing_problems);
        for problem in signing_problems {
            bad(problem.key, problem.reason);
        }
    }

    if config.limits.max_request_body == 0 {
        bad(
            "limits.max_request_body".into(),
            "must be at least 1 byte".into(),
        );
    }
    // hyper times a zero header read out at once: a request whose headers
    // span two TCP segments would be dropped without an answer.
    if config.limits.header_read_timeout.is_zero() {
        bad(
            "limits.header_read_timeout".into(),
            "must be longer than 0s".into(),
        );
    }
    if config.limits.queue_timeout.is_zero() {
        bad(
            "limits.queue_timeout".into(),
            "must be longer than 0s (set queue_size: 0 to refuse at once)".into(),
        );
    }
    if config.upstream.connect_timeout.is_zero() {
        bad(
            "upstream.connect_timeout".into(),
            "must be longer than 0s".into(),
        );
    }
    if config.upstream.response_timeout.is_zero() {
        bad(
            "upstream.response_timeout".into(),
            "must be longer than 0s".into(),
        );
    }

    if let Err(problem) = config.log.filter() {
        bad(problem.key, problem.reason);
    }

    for (name, pool) in &config.pools {
        if pool.backends.is_empty() {
            bad(
                format!("pools.{name}.backends"),
                "a pool needs at least one backend".into(),
            );
        }
        for (i, backend) in pool.backends.iter().enumerate() {
            if let Err(reason) = BackendAddr::parse(backend.url()) {
                bad(format!("pools.{name}.backends[{i}]"), reason);
            }
            if !(1..=1000).contains(&backend.weight()) {
                bad(
                    format!("pools.{name}.backends[{i}].weight"),
                    "must be between 1 and 1000".into(),
                );
            }
        }
        if let Some(tls) = &pool.tls {
            let mut tls_problems = Vec::new();
            super::backend_tls::problems(name, tls, &mut tls_problems);
            for problem in tls_problems {
                bad(problem.key, problem.reason);
            }
        }
        if pool.resolve_interval < std::time::Duration::from_millis(100) {
            bad(
                format!("pools.{name}.resolve_interval"),
                "must be at least 100ms".into(),
            );
        }
        if let Some(check) = &pool.health_check {
            if !check.path.starts_with('/') {
                bad(
                    format!("pools.{name}.health_check.path"),
                    format!("'{}' must start with '/'", check.path),
                );
            }
            if check.interval.is_zero() || check.timeout.is_zero() {
                bad(
                    format!("pools.{name}.health_check"),
                    "interval and timeout must be longer than 0s".into(),
                );
            }
            if check.healthy_threshold == 0 || check.unhealthy_threshold == 0 {
                bad(
                    format!("pools.{name}.health_check"),
                    "thresholds must be at least 1".into(),
                );
            }
        }
        // Like upstream's: a zero would fail every request of the pool (502/504).
        for (field, timeout) in [
            ("connect", pool.timeouts.connect),
            ("response_header", pool.timeouts.response_header),
            ("total", pool.timeouts.total),
        ] {
            if timeout.is_some_and(|t| t.is_zero()) {
                bad(
                    format!("pools.{name}.timeouts.{field}"),
                    "must be longer than 0s".into(),
                );
            }
        }
        if pool.retries.attempts > 10 {
            bad(
                format!("pools.{name}.retries.attempts"),
                "at most 10".into(),
            );
        }
        if pool.retries.budget_percent > 100 {
            bad(
                format!("pools.{name}.retries.budget_percent"),
                "at most 100".into(),
            );
        }
    }

    let mut plan_problems = Vec::new();
    super::plans::problems(config, &mut plan_problems);
    for problem in plan_problems {
        bad(problem.key, problem.reason);
    }

    let rules = config.spec_rules();
    let mut ids = HashSet::new();
    let mut domains = HashSet::new();
    for (i, spec) in config.tenants.iter().enumerate() {
        match spec.clone().validate(&rules) {
            Err(e) => bad(format!("tenants[{i}].{}", e.field), e.message),
            Ok(tenant) => {
                if !ids.insert(tenant.id.clone()) {
                    bad(
                        format!("tenants[{i}].id"),
                        format!("tenant '{}' is listed twice", tenant.id),
                    );
                }
                for domain in tenant.domains {
                    if !domains.insert(domain.clone()) {
                        bad(
                            format!("tenants[{i}].domains"),
                            format!("domain '{domain}' is listed twice"),
                        );
                    }
                }
            }
        }
    }
    out
}

/// The PostgreSQL store's url, pool and django-tenants names.
fn store_problems(config: &Config, bad: &mut impl FnMut(String, String)) {
    let store = &config.store;
    if store.kind == StoreKind::Postgres {
        match store.url.as_deref() {
            None => bad(
                "store.url".into(),
                "required when store.kind is postgres (or pass --store postgres://…)".into(),
            ),
            Some(url) => {
                if let Err(e) = url.parse::<tokio_postgres::Config>() {
                    bad("store.url".into(), format!("not a PostgreSQL URL: {e}"));
                }
            }
        }
        if store.pool_size == 0 {
            bad("store.pool_size".into(), "must be at least 1".into());
        }
        for (key, value) in [
            ("store.connect_timeout", store.connect_timeout),
            ("store.resync_interval", store.resync_interval),
        ] {
            if value.is_zero() {
                bad(key.into(), "must be longer than 0s".into());
            }
        }
    } else if store.layout != StoreLayout::Native {
        bad(
            "store.layout".into(),
            "django-tenants needs store.kind postgres".into(),
        );
    }
    let d = &store.django;
    for (key, value) in [
        ("store.django.tenant_table", Some(&d.tenant_table)),
        ("store.django.domain_table", Some(&d.domain_table)),
        ("store.django.tenant_id_column", Some(&d.tenant_id_column)),
        ("store.django.name_column", d.name_column.as_ref()),
        ("store.django.plan_column", d.plan_column.as_ref()),
        ("store.django.cluster_column", d.cluster_column.as_ref()),
    ] {
        if let Some(value) = value.filter(|v| !plain_name(v)) {
            bad(
                key.into(),
                format!("'{value}' is not a plain lowercase SQL name"),
            );
        }
    }
    for (column, expr) in &d.column_defaults {
        let key = format!("store.django.column_defaults.{column}");
        if !plain_name(column) {
            bad(key, format!("'{column}' is not a plain lowercase SQL name"));
        } else if expr.trim().is_empty() {
            bad(
                key,
                "an SQL expression is required, e.g. \"current_date + 365\"".into(),
            );
        } else if expr.contains(';') || expr.contains('\0') {
            bad(key, format!("'{expr}' must be one SQL expression (no ';')"));
        }
    }
    super::provisioning::problems(config, bad);
}

/// A plain lowercase SQL name: a table or column as Django names them.
pub(super) fn plain_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

#[cfg(test)]
mod tests;

/// What may be a mistake but must not stop the gateway: a Unix socket not
/// there yet (its app may start after the gateway).
pub(super) fn warnings(config: &Config) -> Vec<ConfigError> {
    let mut out = Vec::new();
    for (name, pool) in &config.pools {
        for (i, backend) in pool.backends.iter().enumerate() {
            if let Ok(BackendAddr::Unix(path)) = BackendAddr::parse(backend.url()) {
                if !path.exists() {
                    out.push(ConfigError::new(
                        format!("pools.{name}.backends[{i}]"),
                        format!(
                            "no socket at {} yet: requests fail until the app listens there",
                            path.display()
                        ),
                    ));
                }
            }
        }
    }
    out
}
