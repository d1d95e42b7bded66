//! The bench's results: timings per contender (median, min, max of N runs), ratios to ferry, lag, throttle and
//! RSS figures, the targets they are held to, and their markdown and JSON forms.

use crate::{setup, Options, Section, Servers};
use ferry_engine::error::Result;
use std::path::Path;

/// Median, min and max of a set of runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    /// None for no values. The median of an even count is the mean of the two middle values.
    pub fn of(values: &[f64]) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// One contender of a timed section.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Measurement {
    pub section: Section,
    pub contender: String,
    /// Ferry's own contender, the one the section's ratios are taken against.
    pub reference: bool,
    pub ferry: bool,
    /// Wall seconds of each run.
    pub seconds: Vec<f64>,
    /// Rows (copy, verify) or row events (apply) one run handles.
    pub rows: u64,
    pub bytes: u64,
    /// Peak RSS of each run of a ferry contender, MiB.
    pub peak_rss_mb: Vec<f64>,
    /// CPU seconds of each run of a ferry contender (the servers' CPU is not in it).
    pub cpu_s: Vec<f64>,
    pub note: Option<String>,
}

impl Measurement {
    pub fn new(section: Section, contender: &str, rows: u64, bytes: u64) -> Measurement {
        Measurement {
            section,
            contender: contender.to_string(),
            reference: false,
            ferry: contender.starts_with("ferry"),
            seconds: Vec::new(),
            rows,
            bytes,
            peak_rss_mb: Vec::new(),
            cpu_s: Vec::new(),
            note: None,
        }
    }

    pub fn time(&self) -> Option<Stat> {
        Stat::of(&self.seconds)
    }
}

/// Replication lag under a steady write load, sampled by a heartbeat row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Lag {
    pub contender: String,
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    /// Write transactions per second the load achieved (its target is in the options).
    pub tps: f64,
    pub peak_rss_mb: Option<f64>,
}

/// One throttle knob: what was asked and what was measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Throttle {
    pub knob: String,
    pub target: f64,
    pub achieved: f64,
    pub unit: String,
    pub peak_rss_mb: f64,
}

impl Throttle {
    pub fn error_pct(&self) -> f64 {
        100.0 * (self.achieved - self.target) / self.target
    }
}

/// A target of the performance issue, and whether this run met it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Target {
    pub what: String,
    pub wanted: String,
    pub got: String,
    pub met: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub options: Options,
    pub server: String,
    pub data: crate::dataset::DataSet,
    pub tools_missing: Vec<String>,
    pub measurements: Vec<Measurement>,
    pub lag: Vec<Lag>,
    pub throttle: Vec<Throttle>,
    /// Where a contender was left out of a section, and why.
    pub notes: Vec<String>,
    pub seconds: f64,
}

/// Below this, peak RSS of every ferry process meets the memory target.
pub const RSS_MB_MAX: f64 = 512.0;

impl Report {
    pub fn new(opts: &Options, servers: &Servers, tools: &crate::tools::Tools) -> Report {
        Report {
            options: opts.clone(),
            server: servers.source.version.clone(),
            data: servers.data.clone(),
            tools_missing: tools.missing.clone(),
            measurements: Vec::new(),
            lag: Vec::new(),
            throttle: Vec::new(),
            notes: Vec::new(),
            seconds: 0.0,
        }
    }

    /// The section's reference (ferry) time.
    fn reference(&self, section: Section) -> Option<Stat> {
        self.measurements
            .iter()
            .find(|m| m.section == section && m.reference)
            .and_then(Measurement::time)
    }

    /// Anchor median time / ferry's median time: above 1, ferry is faster.
    pub fn ratio(&self, m: &Measurement) -> Option<f64> {
        let f = self.reference(m.section)?;
        let a = m.time()?;
        (f.median > 0.0).then(|| a.median / f.median)
    }

    /// (section, anchor, ratio) for every anchor with a ratio.
    pub fn ratios(&self) -> Vec<(Section, String, f64)> {
        self.measurements
            .iter()
            .filter(|m| !m.reference)
            .filter_map(|m| Some((m.section, m.contender.clone(), self.ratio(m)?)))
            .collect()
    }

    fn ratio_to(&self, section: Section, anchor_prefix: &str) -> Option<f64> {
        self.measurements
            .iter()
            .find(|m| {
                m.section == section && !m.reference && m.contender.starts_with(anchor_prefix)
            })
            .and_then(|m| self.ratio(m))
    }

    /// The targets, each judged on this run's figures (absent sections give no line).
    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        let mut ratio = |what: &str, section, prefix: &str, wanted: f64| {
            if let Some(r) = self.ratio_to(section, prefix) {
                out.push(Target {
                    what: what.to_string(),
                    wanted: format!(">= {wanted:.1}x"),
                    got: format!("{r:.2}x"),
                    met: r >= wanted,
                });
            }
        };
        ratio(
            "full copy vs mydumper + myloader",
            Section::Copy,
            "mydumper",
            1.5,
        );
        ratio(
            "full copy vs SELECT INTO OUTFILE + LOAD DATA",
            Section::Copy,
            "OUTFILE",
            1.0,
        );
        ratio(
            "binlog apply vs native replication, 1 SQL thread",
            Section::Apply,
            "native replication, 1",
            2.0,
        );
        ratio(
            "verify vs pt-table-sync",
            Section::Verify,
            "pt-table-sync",
            1.5,
        );
        if !self.throttle.is_empty() {
            let worst = self
                .throttle
                .iter()
                .map(|t| t.error_pct().abs())
                .fold(0.0, f64::max);
            out.push(Target {
                what: "throttle: every knob within 5% of its target".into(),
                wanted: "<= 5%".into(),
                got: format!("worst {worst:.1}%"),
                met: worst <= 5.0,
            });
        }
        if let Some((what, mb)) = self.peak_rss() {
            out.push(Target {
                what: "ferry's peak RSS".into(),
                wanted: format!("< {RSS_MB_MAX:.0} MiB"),
                got: format!("{mb:.0} MiB ({what})"),
                met: mb < RSS_MB_MAX,
            });
        }
        out
    }

    /// The largest RSS any ferry process reached, and in which contender.
    pub fn peak_rss(&self) -> Option<(String, f64)> {
        let mut all: Vec<(String, f64)> = self
            .measurements
            .iter()
            .flat_map(|m| m.peak_rss_mb.iter().map(|r| (m.contender.clone(), *r)))
            .collect();
        all.extend(
            self.lag
                .iter()
                .filter_map(|l| Some((format!("lag: {}", l.contender), l.peak_rss_mb?))),
        );
        all.extend(
            self.throttle
                .iter()
                .map(|t| (format!("throttle: {}", t.knob), t.peak_rss_mb)),
        );
        all.into_iter().max_by(|a, b| a.1.total_cmp(&b.1))
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let d = &self.data;
        s.push_str(&format!(
            "# ferry bench\n\n{} tables x {} rows = {} rows ({:.0} MiB of values), {}; medians of {} run(s) \
             (min..max); {} threads for every parallel contender.\n",
            d.tables,
            d.rows_per_table,
            d.rows(),
            d.bytes() as f64 / MIB,
            self.server,
            self.options.runs,
            self.options.threads
        ));
        for section in Section::ALL {
            let ms: Vec<&Measurement> = self
                .measurements
                .iter()
                .filter(|m| m.section == section)
                .collect();
            if ms.is_empty() {
                continue;
            }
            let unit = if section == Section::Apply {
                "row events/s"
            } else {
                "rows/s"
            };
            s.push_str(&format!(
                "\n## {}\n\n| contender | wall s | min..max s | {unit} | MB/s | anchor time / ferry time | ferry peak RSS MiB | ferry CPU s |\n\
                 |---|---:|---:|---:|---:|---:|---:|---:|\n",
                heading(section)
            ));
            for m in ms {
                let Some(t) = m.time() else {
                    s.push_str(&format!(
                        "| {} | - | - | - | - | - | - | - |\n",
                        cell(&m.contender)
                    ));
                    continue;
                };
                let ratio = if m.reference {
                    "(reference)".to_string()
                } else {
                    self.ratio(m)
                        .map(|r| format!("{r:.2}x"))
                        .unwrap_or_else(|| "-".into())
                };
                let rss = Stat::of(&m.peak_rss_mb)
                    .map(|r| format!("{:.0}", r.max))
                    .unwrap_or_else(|| "-".into());
                let cpu = Stat::of(&m.cpu_s)
                    .map(|c| format!("{:.1}", c.median))
                    .unwrap_or_else(|| "-".into());
                s.push_str(&format!(
                    "| {} | {:.2} | {:.2}..{:.2} | {:.0} | {:.1} | {ratio} | {rss} | {cpu} |\n",
                    cell(&m.contender),
                    t.median,
                    t.min,
                    t.max,
                    m.rows as f64 / t.median,
                    m.bytes as f64 / MB / t.median,
                ));
                if let Some(n) = &m.note {
                    s.push_str(&format!("| &nbsp;&nbsp;{} | | | | | | | |\n", cell(n)));
                }
            }
        }
        if !self.lag.is_empty() {
            s.push_str(&format!(
                "\n## steady-state lag ({} write transactions/s target, 4 row events each, {} s)\n\n\
                 | contender | samples | p50 ms | p95 ms | max ms | load achieved tx/s | ferry peak RSS MiB |\n\
                 |---|---:|---:|---:|---:|---:|---:|\n",
                self.options.lag_tps, self.options.lag_window_s
            ));
            for l in &self.lag {
                s.push_str(&format!(
                    "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} |\n",
                    l.contender,
                    l.samples,
                    l.p50_ms,
                    l.p95_ms,
                    l.max_ms,
                    l.tps,
                    l.peak_rss_mb
                        .map(|r| format!("{r:.0}"))
                        .unwrap_or_else(|| "-".into())
                ));
            }
        }
        if !self.throttle.is_empty() {
            s.push_str(&format!(
                "\n## throttle accuracy ({} s window per knob)\n\n| knob | target | achieved | error | ferry peak RSS MiB |\n\
                 |---|---:|---:|---:|---:|\n",
                self.options.throttle_window_s
            ));
            for t in &self.throttle {
                s.push_str(&format!(
                    "| {} | {} {} | {:.2} {} | {:+.1}% | {:.0} |\n",
                    t.knob,
                    t.target,
                    t.unit,
                    t.achieved,
                    t.unit,
                    t.error_pct(),
                    t.peak_rss_mb
                ));
            }
        }
        let targets = self.targets();
        if !targets.is_empty() {
            s.push_str("\n## targets\n\n| target | wanted | this run | met |\n|---|---|---|---|\n");
            for t in targets {
                s.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    t.what,
                    t.wanted,
                    t.got,
                    if t.met { "yes" } else { "**no**" }
                ));
            }
        }
        if !self.tools_missing.is_empty() || !self.notes.is_empty() {
            s.push_str("\n## notes\n\n");
            for n in self.tools_missing.iter().chain(&self.notes) {
                s.push_str(&format!("- {n}\n"));
            }
        }
        s
    }

    /// Writes report.md, report.json and ratios.svg into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| setup(format!("{}: {e}", dir.display())))?;
        let json =
            serde_json::to_string_pretty(self).map_err(|e| setup(format!("report.json: {e}")))?;
        for (name, text) in [
            ("report.md", self.markdown()),
            ("report.json", json),
            ("ratios.svg", crate::chart::svg(&self.ratios())),
        ] {
            std::fs::write(dir.join(name), text)
                .map_err(|e| setup(format!("{}: {e}", dir.join(name).display())))?;
        }
        Ok(())
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Text for a markdown table cell: a `|` would end the cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}
const MB: f64 = 1_000_000.0;

fn heading(section: Section) -> &'static str {
    match section {
        Section::Copy => "full copy (source to an empty destination, schema included)",
        Section::Apply => "binlog apply (a backlog written after P0, caught up from P0)",
        Section::Lag => "steady-state lag",
        Section::Verify => {
            "verify (both sides equal but for 10 changed rows, which each tool must find)"
        }
        Section::Throttle => "throttle",
    }
}

/// The p-th percentile (0..=100) by nearest rank; 0 for no samples.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::DataSet;

    #[test]
    fn stat_takes_median_min_max() {
        assert_eq!(Stat::of(&[]), None);
        assert_eq!(
            Stat::of(&[3.0, 1.0, 2.0]),
            Some(Stat {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        assert_eq!(Stat::of(&[4.0, 1.0, 2.0, 3.0]).map(|s| s.median), Some(2.5));
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 10.0);
        assert_eq!(percentile(&v, 95.0), 19.0);
        assert_eq!(percentile(&v, 100.0), 20.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
        assert_eq!(percentile(&[], 95.0), 0.0);
    }

    fn sample() -> Report {
        let data = DataSet {
            db: "sbtest".into(),
            tables: 2,
            rows_per_table: 1000,
        };
        let mut ferry = Measurement::new(
            Section::Copy,
            "ferry run (schema + full)",
            2000,
            data.bytes(),
        );
        ferry.reference = true;
        ferry.seconds = vec![2.0, 1.0, 3.0];
        ferry.peak_rss_mb = vec![40.0, 42.0, 41.0];
        ferry.cpu_s = vec![0.9, 1.1, 1.0];
        let mut myd = Measurement::new(Section::Copy, "mydumper + myloader", 2000, data.bytes());
        myd.seconds = vec![3.0, 3.5, 2.5];
        let mut outfile =
            Measurement::new(Section::Copy, "OUTFILE + LOAD DATA", 2000, data.bytes());
        outfile.seconds = vec![1.0, 1.0, 1.0];
        let mut dump =
            Measurement::new(Section::Copy, "mariadb-dump | mariadb", 2000, data.bytes());
        dump.seconds = vec![4.0];
        Report {
            options: Options {
                tables: 2,
                rows_per_table: 1000,
                ..Default::default()
            },
            server: "10.11.19-MariaDB".into(),
            data,
            tools_missing: vec![
                "pt-table-sync skipped: not on PATH (apt-get install percona-toolkit)".into(),
            ],
            measurements: vec![ferry, myd, outfile, dump],
            lag: vec![],
            throttle: vec![Throttle {
                knob: "full.rows_per_s_max".into(),
                target: 1000.0,
                achieved: 1062.0,
                unit: "rows/s".into(),
                peak_rss_mb: 30.0,
            }],
            notes: vec![],
            seconds: 1.0,
        }
    }

    #[test]
    fn ratios_and_targets_are_anchor_time_over_ferry_time() {
        let r = sample();
        let ratios = r.ratios();
        assert_eq!(ratios.len(), 3);
        assert_eq!(ratios[0].2, 1.5);
        assert_eq!(ratios[1].2, 0.5);
        assert_eq!(ratios[2].2, 2.0);
        let t = r.targets();
        let met: Vec<(&str, bool)> = t.iter().map(|t| (t.what.as_str(), t.met)).collect();
        assert_eq!(
            met,
            [
                ("full copy vs mydumper + myloader", true),
                ("full copy vs SELECT INTO OUTFILE + LOAD DATA", false),
                ("throttle: every knob within 5% of its target", false),
                ("ferry's peak RSS", true),
            ]
        );
    }

    #[test]
    fn markdown_report() {
        insta::assert_snapshot!(sample().markdown());
    }
}
