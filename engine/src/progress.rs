//! Copy progress on a terminal: one bar per table being copied and a total, with rows, rows/s and percent.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;

/// Progress bars; drawn only on a terminal (stderr), silent otherwise.
pub struct CopyProgress {
    multi: MultiProgress,
    total: ProgressBar,
    tables: Mutex<HashMap<String, ProgressBar>>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl CopyProgress {
    pub fn new(visible: bool) -> CopyProgress {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let total = multi.add(ProgressBar::new(0));
        total.set_style(style(
            "{prefix:>28} [{bar:30}] {human_pos}/{human_len} rows {per_sec} ({percent}%) {elapsed}",
        ));
        total.set_prefix("total");
        CopyProgress {
            multi,
            total,
            tables: Mutex::new(HashMap::new()),
        }
    }

    /// A table is about to be copied: `rows_done` rows were copied by an earlier run.
    pub fn table_started(&self, name: &str, rows_estimate: u64, rows_done: u64) {
        let bar = self
            .multi
            .insert_before(&self.total, ProgressBar::new(rows_estimate.max(rows_done)));
        bar.set_style(style(
            "{prefix:>28} [{bar:30}] {human_pos}/{human_len} rows {per_sec} ({percent}%)",
        ));
        bar.set_prefix(truncate(name, 28));
        bar.set_position(rows_done);
        self.total.inc_length(rows_estimate.max(rows_done));
        self.total.inc(rows_done);
        if let Ok(mut t) = self.tables.lock() {
            t.insert(name.to_string(), bar);
        }
    }

    pub fn rows(&self, name: &str, n: u64) {
        if let Ok(t) = self.tables.lock() {
            if let Some(bar) = t.get(name) {
                bar.inc(n);
                if bar.position() > bar.length().unwrap_or(0) {
                    let extra = bar.position() - bar.length().unwrap_or(0);
                    bar.set_length(bar.position());
                    self.total.inc_length(extra);
                }
            }
        }
        self.total.inc(n);
    }

    pub fn table_done(&self, name: &str) {
        if let Ok(mut t) = self.tables.lock() {
            if let Some(bar) = t.remove(name) {
                let pos = bar.position();
                if let Some(len) = bar.length() {
                    if len > pos {
                        // The estimate was high: shrink the total to what was really there.
                        self.total
                            .set_length(self.total.length().unwrap_or(0).saturating_sub(len - pos));
                    }
                }
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
    }

    pub fn finish(&self) {
        self.total.finish();
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(n - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}
