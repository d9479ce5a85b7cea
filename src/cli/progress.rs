//! Progress of the long store commands (`tenants import`, `tenants
//! migrate-all`): an `indicatif` bar on standard error when the command runs
//! in a terminal, a plain `progress: done/total (n failed)` line per step
//! otherwise, so logs and pipes get lines rather than redrawn bars.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tenant_gateway::provision::migrate::Progress;

/// Shows a command's progress; clones show the same bar.
#[derive(Clone)]
pub struct Shown {
    /// `None` when not in a terminal: plain lines instead.
    bar: Option<ProgressBar>,
}

impl Shown {
    /// `what` names the items counted (`tenants`).
    pub fn new(what: &str) -> Shown {
        // Both streams: the bar is drawn on stderr, and the results that
        // follow on stdout would tear a bar redrawn into a file or pipe.
        let terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(0);
            let template = format!(
                "[{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {what} ({{msg}}) {{per_sec}} eta {{eta}}"
            );
            bar.set_style(
                ProgressStyle::with_template(&template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message("0 failed");
            // Redraws on a timer too, so elapsed time moves while one
            // slow tenant holds the count still.
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Shown { bar }
    }

    pub fn update(&self, p: Progress) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(p.total as u64);
                bar.set_position(p.done as u64);
                bar.set_message(format!("{} failed", p.failed));
            }
            None if p.done > 0 => {
                eprintln!("progress: {}/{} ({} failed)", p.done, p.total, p.failed);
            }
            None => {}
        }
    }

    /// Leaves the bar at its last state, so the results print below it.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
