//! The operator's own provisioning steps (`provisioning.hooks`): a command
//! (argv, no shell, placeholders substituted per argument) and a webhook,
//! run after the schema or database is ready and before the registry
//! commits. A failing hook fails the step `hook command` / `hook webhook`,
//! which rolls the tenant back like any other step.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use super::webhook::{tail, Poster};
use super::{ProvisionError, ProvisionFailure};
use crate::config::HooksConfig;

/// What a hook is told about the tenant being provisioned.
pub struct HookValues<'a> {
    pub tenant_id: &'a str,
    pub tenant_name: &'a str,
    pub schema: &'a str,
    /// The database holding the tenant's schema (its own one for database
    /// isolation).
    pub database: &'a str,
    pub cluster: &'a str,
    pub isolation: &'a str,
}

impl HookValues<'_> {
    /// `arg` with every placeholder replaced; values are never re-parsed.
    fn substitute(&self, arg: &str) -> String {
        let mut out = String::with_capacity(arg.len());
        let mut rest = arg;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let value = [
                ("{schema}", self.schema),
                ("{tenant_id}", self.tenant_id),
                ("{tenant_name}", self.tenant_name),
                ("{database}", self.database),
                ("{cluster}", self.cluster),
            ]
            .into_iter()
            .find(|(token, _)| rest.starts_with(token));
            match value {
                Some((token, value)) => {
                    out.push_str(value);
                    rest = &rest[token.len()..];
                }
                None => {
                    out.push('{');
                    rest = &rest[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// The configured hooks.
pub struct Hooks {
    command: Option<Vec<String>>,
    webhook: Option<String>,
    timeout: Duration,
    poster: Poster,
}

impl Hooks {
    pub fn new(config: &HooksConfig) -> Hooks {
        Hooks {
            command: config.command.clone().filter(|argv| !argv.is_empty()),
            webhook: config.webhook.clone(),
            timeout: config.timeout,
            poster: Poster::default(),
        }
    }

    /// Runs the command, then the webhook; the first failure is the error.
    pub async fn run(&self, values: &HookValues<'_>) -> Result<(), ProvisionError> {
        let failed = |step: &str| {
            let step = step.to_owned();
            move |message| ProvisionError {
                step,
                source: ProvisionFailure::Hook(message),
            }
        };
        if let Some(argv) = &self.command {
            self.run_command(argv, values)
                .await
                .map_err(failed("hook command"))?;
        }
        if let Some(url) = &self.webhook {
            let body = json!({
                "event": "tenant.provisioning",
                "tenant": {
                    "id": values.tenant_id,
                    "name": values.tenant_name,
                    "schema": values.schema,
                    "isolation": values.isolation,
                    "database": values.database,
                    "cluster": values.cluster,
                },
            });
            self.poster
                .post_json(url, &body, self.timeout)
                .await
                .map_err(failed("hook webhook"))?;
        }
        Ok(())
    }

    async fn run_command(&self, argv: &[String], values: &HookValues<'_>) -> Result<(), String> {
        let args: Vec<String> = argv.iter().map(|a| values.substitute(a)).collect();
        let program = &args[0];
        let child = tokio::process::Command::new(program)
            .args(&args[1..])
            // The admin token is the gateway's secret, not the hook's.
            .env_remove(crate::config::ADMIN_TOKEN_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // A command past its timeout is killed when its wait is dropped.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| format!("{program} did not finish within {:?}; killed", self.timeout))?
            .map_err(|e| format!("{program}: {e}"))?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!(
            "{program} failed ({}): {}",
            output.status,
            tail(&stderr, 1000)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_per_argument_and_never_reparsed() {
        let values = HookValues {
            tenant_id: "acme",
            tenant_name: "{schema} $(rm -rf /)",
            schema: "acme_s",
            database: "app",
            cluster: "eu1",
            isolation: "schema",
        };
        assert_eq!(
            values.substitute("--schema={schema}@{database}/{cluster}"),
            "--schema=acme_s@app/eu1"
        );
        assert_eq!(values.substitute("{tenant_name}"), "{schema} $(rm -rf /)");
        assert_eq!(values.substitute("{x}{tenant_id}{"), "{x}acme{");
    }
}
