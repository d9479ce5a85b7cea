//! Hooks run while a tenant is provisioned (`provisioning.hooks`) and the
//! events webhook told after a tenant is created or deleted (`events`),
//! with the rules their keys must satisfy.

use serde::Deserialize;
use std::time::Duration;

/// The placeholders a hook command's arguments may hold.
pub const HOOK_PLACEHOLDERS: [&str; 5] = [
    "{schema}",
    "{tenant_id}",
    "{tenant_name}",
    "{database}",
    "{cluster}",
];

/// Steps run after the provisioning steps and before the registry commit;
/// a failure rolls the tenant back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    /// Program and arguments, run without a shell; each argument has its
    /// placeholders (`HOOK_PLACEHOLDERS`) replaced.
    pub command: Option<Vec<String>>,
    /// `http://` URL POSTed the tenant as JSON; any answer but 2xx fails.
    pub webhook: Option<String>,
    /// Each hook's limit; the command is killed after it.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            command: None,
            webhook: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Where `tenant.provisioned` and `tenant.deleted` are POSTed (fire and forget).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    pub webhook: Option<String>,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            webhook: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Why `url` cannot be a webhook (only plain `http://` is spoken).
fn webhook_problem(url: &str) -> Option<String> {
    match url.parse::<http::Uri>() {
        Err(e) => Some(format!("'{url}' is not a URL: {e}")),
        Ok(uri) if uri.scheme_str() != Some("http") || uri.host().is_none() => Some(format!(
            "'{url}' must be an http://host[:port]/path URL (https is not supported)"
        )),
        Ok(_) => None,
    }
}

pub(super) fn problems(
    hooks: &HooksConfig,
    events: &EventsConfig,
    postgres: bool,
    bad: &mut impl FnMut(String, String),
) {
    if let Some(command) = &hooks.command {
        if command.first().is_none_or(|program| program.is_empty()) {
            bad(
                "provisioning.hooks.command".into(),
                "needs a program: [program, args…]".into(),
            );
        }
        for (i, arg) in command.iter().enumerate() {
            let mut rest = arg.as_str();
            while let Some(start) = rest.find('{') {
                let Some(len) = rest[start..].find('}') else {
                    break;
                };
                let token = &rest[start..start + len + 1];
                if !HOOK_PLACEHOLDERS.contains(&token) {
                    bad(
                        format!("provisioning.hooks.command[{i}]"),
                        format!("unknown placeholder {token}: use {HOOK_PLACEHOLDERS:?}"),
                    );
                }
                rest = &rest[start + len + 1..];
            }
        }
    }
    if let Some(problem) = hooks.webhook.as_deref().and_then(webhook_problem) {
        bad("provisioning.hooks.webhook".into(), problem);
    }
    if (hooks.command.is_some() || hooks.webhook.is_some()) && !postgres {
        bad(
            "provisioning.hooks".into(),
            "hooks run while provisioning, which needs store.kind postgres".into(),
        );
    }
    if hooks.timeout.is_zero() {
        bad(
            "provisioning.hooks.timeout".into(),
            "must be longer than 0s".into(),
        );
    }
    if let Some(problem) = events.webhook.as_deref().and_then(webhook_problem) {
        bad("events.webhook".into(), problem);
    }
    if events.timeout.is_zero() {
        bad("events.timeout".into(), "must be longer than 0s".into());
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::problem_keys as keys;

    #[test]
    fn hooks_and_events_name_their_key() {
        let pg = "store: {kind: postgres, url: \"postgres://u@h/db\"}\n";
        let good = format!(
            "{pg}provisioning:\n  hooks:\n    command: [setup, \"--schema={{schema}}\", \"{{tenant_name}}\"]\n    webhook: http://127.0.0.1:9/hook\nevents: {{webhook: \"http://hooks.internal/events\"}}\n"
        );
        assert_eq!(keys(&good), Vec::<String>::new());
        let bad = format!(
            "{pg}provisioning:\n  hooks:\n    command: [setup, \"{{tenant}}\"]\n    webhook: https://x/h\n    timeout: 0s\nevents: {{webhook: \"nope\"}}\n"
        );
        assert_eq!(
            keys(&bad),
            [
                "provisioning.hooks.command[1]",
                "provisioning.hooks.webhook",
                "provisioning.hooks.timeout",
                "events.webhook",
            ]
        );
        assert_eq!(
            keys("provisioning:\n  hooks:\n    command: []\n"),
            ["provisioning.hooks.command", "provisioning.hooks"]
        );
    }
}
