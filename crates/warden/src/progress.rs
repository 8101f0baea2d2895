//! Progress bars on stderr, shown only on a terminal and never with machine output.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `len` items, hidden unless stderr is a terminal and `enabled`.
pub fn bar(len: u64, enabled: bool, unit: &str) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len);
    let template =
        format!("{{spinner}} [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} {unit} {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

// --- signing: a byte-count bar that appears once the work has taken over a second ---

/// Progress over bytes hashed, on stderr, shown only on a terminal, when `enabled`, and
/// only after the first second (short jobs print nothing).
pub struct ByteProgress {
    bar: ProgressBar,
    enabled: bool,
    shown: std::sync::atomic::AtomicBool,
}

impl ByteProgress {
    pub fn new(enabled: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        ByteProgress {
            bar,
            enabled: enabled && std::io::stderr().is_terminal(),
            shown: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn set_total(&self, total: u64) {
        self.bar.set_length(total);
        self.bar.reset_elapsed();
    }

    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        if self.enabled
            && self.bar.elapsed() >= std::time::Duration::from_secs(1)
            && !self.shown.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
