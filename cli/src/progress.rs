//! A progress bar for long steps (key generation, proving) on stderr, hidden when stderr is not a terminal
//! or when the output is JSON.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// A progress bar fed by `veil_core`'s `(stage, done, total)` callbacks.
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar that draws only on an interactive stderr and never with `--json`.
    pub fn new(json: bool) -> Self {
        if json || !std::io::stderr().is_terminal() {
            return Bar(ProgressBar::hidden());
        }
        let bar = ProgressBar::new(0);
        let style = ProgressStyle::with_template("{spinner} {msg:8} [{elapsed_precise}] {bar:30} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(bar)
    }

    /// Records that `done` of `total` units of `stage` are finished.
    pub fn update(&self, stage: &str, done: usize, total: usize) {
        self.0.set_message(stage.to_string());
        self.0.set_length(total as u64);
        self.0.set_position(done as u64);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
