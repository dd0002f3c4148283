//! Progress of work over many stores: a bar on a terminal (`indicatif`),
//! JSON lines otherwise (or with `--json`).

use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

pub struct Progress {
    bar: Option<ProgressBar>,
    /// Serializes JSON lines from the workers.
    out: Mutex<()>,
}

impl Progress {
    /// `json`: asked for JSON lines; a terminal gets a bar otherwise.
    pub fn new(json: bool, total: usize, verb: &str) -> Progress {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(u64::try_from(total).unwrap_or(u64::MAX));
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:40}] {pos}/{len} stores, {elapsed} (eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(verb.to_string());
            bar
        });
        Progress {
            bar,
            out: Mutex::new(()),
        }
    }

    /// Whether events go out as JSON lines.
    pub fn json(&self) -> bool {
        self.bar.is_none()
    }

    /// One store is done: the bar moves, or `event` is printed.
    pub fn done(&self, event: &Value, failed: bool, label: &str) {
        match &self.bar {
            Some(bar) => {
                if failed {
                    bar.println(format!("failed: {label}"));
                }
                bar.inc(1);
            }
            None => self.line(event),
        }
    }

    /// Prints one JSON line (stdout).
    pub fn line(&self, event: &Value) {
        let _guard = self.out.lock();
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{event}");
        let _ = stdout.flush();
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
