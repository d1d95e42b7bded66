//! The verifier's output folder: the JSON-lines diff, the repair SQL, the summary, and the per-table progress a
//! resumed run continues from (files cut back to what the progress covers, so nothing is written twice).

use crate::diff::{json_row, Diff};
use crate::repair;
use crate::TableResult;
use ferry_engine::codes;
use ferry_engine::error::{Error, Result};
use ferry_engine::schema::model::Table;
use ferry_engine::value::Value;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub const DIFF_FILE: &str = "diff.jsonl";
pub const REPAIR_FILE: &str = "repair.sql";
pub const SUMMARY_FILE: &str = "summary.json";
pub const PROGRESS_FILE: &str = "progress.json";

/// How far one table got.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TableProgress {
    pub done: bool,
    /// The upper key of the last range whose result is in the files; None before the first.
    pub last_key: Option<Vec<Value>>,
    pub result: TableResult,
}

/// `progress.json`: which run it belongs to and where each table stands.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// The options that shape results (mode, sample, chunking): a resumed run must have the same.
    pub run: String,
    pub tables: BTreeMap<String, TableProgress>,
    pub diff_bytes: u64,
    pub repair_bytes: u64,
}

/// The open output folder.
pub struct Output {
    dir: PathBuf,
    diff: BufWriter<File>,
    repair: BufWriter<File>,
    pub progress: Progress,
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::definite(&codes::VERIFY_OUTPUT, format!("{}: {e}", path.display()))
}

fn open_at(path: &Path, len: Option<u64>) -> Result<BufWriter<File>> {
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(len.is_none())
        .open(path)
        .map_err(|e| io_error(path, e))?;
    if let Some(len) = len {
        f.set_len(len).map_err(|e| io_error(path, e))?;
    }
    let mut w = BufWriter::new(f);
    use std::io::Seek;
    w.seek(std::io::SeekFrom::End(0))
        .map_err(|e| io_error(path, e))?;
    Ok(w)
}

impl Output {
    /// Opens `dir` for a run described by `run`; with `resume`, continues the run recorded there (which must be
    /// the same run), else starts it afresh.
    pub fn open(dir: &Path, run: &str, task: &str, resume: bool) -> Result<Output> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let progress_path = dir.join(PROGRESS_FILE);
        let previous: Option<Progress> = if resume && progress_path.exists() {
            let text =
                std::fs::read_to_string(&progress_path).map_err(|e| io_error(&progress_path, e))?;
            Some(serde_json::from_str(&text).map_err(|e| {
                Error::definite(
                    &codes::VERIFY_RESUME,
                    format!("{}: {e}", progress_path.display()),
                )
            })?)
        } else {
            None
        };
        if let Some(p) = &previous {
            if p.run != run {
                return Err(Error::definite(
                    &codes::VERIFY_RESUME,
                    format!(
                        "{} was written by a run with `{}`; this one has `{run}`",
                        progress_path.display(),
                        p.run
                    ),
                ));
            }
        }
        let diff = open_at(
            &dir.join(DIFF_FILE),
            previous.as_ref().map(|p| p.diff_bytes),
        )?;
        let mut repair_out = open_at(
            &dir.join(REPAIR_FILE),
            previous.as_ref().map(|p| p.repair_bytes),
        )?;
        let progress = match previous {
            Some(p) => p,
            None => {
                writeln!(
                    repair_out,
                    "-- ferry verify: repair of task {task}'s destination, one statement per line. Review it, then \
                     apply it with `ferry verify -c <task> --apply-repair` (one transaction) or the mysql client."
                )
                .and_then(|_| writeln!(repair_out, "{}", repair::session_sql()))
                .map_err(|e| io_error(&dir.join(REPAIR_FILE), e))?;
                Progress {
                    run: run.to_string(),
                    ..Default::default()
                }
            }
        };
        Ok(Output {
            dir: dir.to_path_buf(),
            diff,
            repair: repair_out,
            progress,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends differences of `source` (compared columns) whose destination copy is `dest`.
    pub fn write(&mut self, source: &Table, dest: &Table, diffs: &[Diff]) -> Result<()> {
        let names: Vec<String> = source.columns.iter().map(|c| c.name.clone()).collect();
        let dest_names: Vec<String> = dest.columns.iter().map(|c| c.name.clone()).collect();
        let diff_path = self.dir.join(DIFF_FILE);
        let repair_path = self.dir.join(REPAIR_FILE);
        for d in diffs {
            let key: Vec<serde_json::Value> = match &source.key {
                Some(k) => k
                    .columns
                    .iter()
                    .map(|&i| crate::diff::json_value(&d.row()[i]))
                    .collect(),
                None => vec![],
            };
            let line = serde_json::json!({
                "table": source.display_name(),
                "destination_table": dest.display_name(),
                "kind": d.kind.as_str(),
                "key": key,
                "columns": d.columns.iter().map(|&i| names[i].clone()).collect::<Vec<_>>(),
                "source": d.source.as_deref().map(|r| json_row(&names, r)),
                "destination": d.destination.as_deref().map(|r| json_row(&dest_names, r)),
            });
            let mut line = line;
            let notes: Vec<String> = match (&d.source, &d.destination) {
                (Some(a), Some(b)) => d
                    .columns
                    .iter()
                    .filter_map(|&i| {
                        crate::diff::explain_json(a.get(i)?, b.get(i)?)
                            .map(|why| format!("{}: {why}", names[i]))
                    })
                    .collect(),
                _ => vec![],
            };
            if !notes.is_empty() {
                line["notes"] = serde_json::json!(notes);
            }
            writeln!(self.diff, "{line}").map_err(|e| io_error(&diff_path, e))?;
            if let Some(sql) = repair::statement(dest, d)? {
                writeln!(self.repair, "{sql}").map_err(|e| io_error(&repair_path, e))?;
            }
        }
        Ok(())
    }

    /// Records a table's progress once everything before `last_key` is in the files.
    pub fn checkpoint(
        &mut self,
        table: &str,
        last_key: Option<Vec<Value>>,
        result: &TableResult,
        done: bool,
    ) -> Result<()> {
        let diff_path = self.dir.join(DIFF_FILE);
        let repair_path = self.dir.join(REPAIR_FILE);
        self.diff.flush().map_err(|e| io_error(&diff_path, e))?;
        self.repair.flush().map_err(|e| io_error(&repair_path, e))?;
        self.progress.diff_bytes = len(&diff_path)?;
        self.progress.repair_bytes = len(&repair_path)?;
        self.progress.tables.insert(
            table.to_string(),
            TableProgress {
                done,
                last_key,
                result: result.clone(),
            },
        );
        let path = self.dir.join(PROGRESS_FILE);
        let tmp = self.dir.join(format!("{PROGRESS_FILE}.tmp"));
        let text = serde_json::to_string_pretty(&self.progress).unwrap_or_default();
        std::fs::write(&tmp, text).map_err(|e| io_error(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))
    }

    /// Writes the summary.
    pub fn summary(&mut self, report: &impl serde::Serialize) -> Result<()> {
        let path = self.dir.join(SUMMARY_FILE);
        let text = serde_json::to_string_pretty(report).unwrap_or_default();
        std::fs::write(&path, text).map_err(|e| io_error(&path, e))
    }
}

fn len(path: &Path) -> Result<u64> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| io_error(path, e))
}
