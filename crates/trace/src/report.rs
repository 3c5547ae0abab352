//! Measuring allocators on traces and presenting the results: [`measure`] one
//! allocator on one trace, collect [`TraceReport`]s into a [`Run`], and print it as
//! Markdown tables ([`Run::markdown`]) or JSON (it is `Serialize`).
//!
//! The summary scores each allocator as the malloc lab does, [`SCORE_FORMULA`]:
//!
//! * U is the mean over traces of the malloc-lab utilization (peak live bytes / the
//!   heap's high-water mark), counting 0 for a trace with a refused request or an error,
//!   since the lab scores only traces that run correctly;
//! * T is the allocator's throughput over all traces: total ops / total seconds;
//! * T_ref is the system allocator's throughput measured the same way in the same run.
//!
//! Traces of weight 0 are shown but left out of the summary, as in the lab.

use std::fmt::Write;

use rawheap::RawHeap;
use serde::Serialize;

use crate::format::{Profile, Trace};
use crate::region::{self, Region};
use crate::replay::{
    self, DEFAULT_ALIGN, MinRegion, ReplayOptions, SCORE_FORMULA, Throughput, performance_index,
};

/// How [`measure`] runs an allocator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasureOptions {
    /// The region for the verified replay and the timing; `None` for the one
    /// [`region::choose`] picks for each trace.
    pub region: Option<usize>,
    /// The alignment of every request.
    pub align: usize,
    /// Call `check()` every this many ops in the verified replay; `None` never.
    pub check_every: Option<usize>,
}

impl Default for MeasureOptions {
    fn default() -> Self {
        MeasureOptions {
            region: None,
            align: DEFAULT_ALIGN,
            check_every: None,
        }
    }
}

/// One allocator on one trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measurement {
    /// The allocator's name.
    pub allocator: String,
    /// The region of the verified replay and the timing, and why it is that size.
    pub region: Region,
    /// Why the verified replay stopped (corruption, a failed `check()`, no region); the
    /// numbers below are then absent.
    pub error: Option<String>,
    /// Peak live bytes / high-water mark (the malloc lab's U).
    pub utilization: Option<f64>,
    /// The smallest region the trace completes in, and peak live bytes / that region.
    pub min_region: Option<MinRegion>,
    /// The timing pass.
    pub throughput: Option<Throughput>,
    /// Requests the heap refused in the verified replay.
    pub failed_requests: usize,
    /// Largest sampled `reserved - requested`, bytes.
    pub peak_internal_fragmentation: usize,
    /// Mean sampled `reserved - requested`, bytes.
    pub mean_internal_fragmentation: f64,
    /// Largest sampled `1 - largest_free / free`.
    pub peak_external_fragmentation: f64,
    /// `(ops run, external fragmentation)` samples, for [`crate::plot`].
    pub external_fragmentation: Vec<(usize, f64)>,
    /// Measured through its calls alone ([`crate::peer::measure_peer`]): a peer crate
    /// shows no stats, so the fragmentation fields are not measured (tables print `-`),
    /// and its high-water mark is the highest byte of a block it handed out.
    pub peer: bool,
}

impl Measurement {
    /// A measurement of `allocator` over `region` with nothing measured yet.
    pub fn new(allocator: &str, region: Region) -> Self {
        Measurement {
            allocator: allocator.to_string(),
            region,
            error: None,
            utilization: None,
            min_region: None,
            throughput: None,
            failed_requests: 0,
            peak_internal_fragmentation: 0,
            mean_internal_fragmentation: 0.0,
            peak_external_fragmentation: 0.0,
            external_fragmentation: Vec::new(),
            peer: false,
        }
    }

    /// The utilization this measurement adds to the score: U, or 0 when the trace did
    /// not run correctly.
    pub fn scored_utilization(&self) -> f64 {
        match self.utilization {
            Some(u) if self.error.is_none() && self.failed_requests == 0 => u,
            _ => 0.0,
        }
    }
}

/// Replays `trace` on a fresh `H` (verified, sampled), times it, and searches its
/// smallest region.
pub fn measure<H: RawHeap>(
    allocator: &str,
    trace: &Trace,
    options: &MeasureOptions,
) -> Measurement {
    let region = region::choose(trace, options.region, options.align);
    let replay_options = ReplayOptions {
        region: Some(region.bytes),
        align: options.align,
        check_every: options.check_every,
        ..ReplayOptions::default()
    };
    let mut measurement = Measurement::new(allocator, region);
    match replay::replay::<H>(trace, &replay_options) {
        Err(error) => measurement.error = Some(error.to_string()),
        Ok(report) => {
            measurement.utilization = Some(report.utilization);
            measurement.failed_requests = report.failed_requests;
            measurement.peak_internal_fragmentation = report.peak_internal_fragmentation;
            measurement.mean_internal_fragmentation = report.mean_internal_fragmentation;
            measurement.peak_external_fragmentation = report.peak_external_fragmentation;
            measurement.external_fragmentation = report.external_fragmentation;
            measurement.throughput =
                replay::time_replay::<H>(trace, region.bytes, options.align).ok();
            measurement.min_region = replay::min_region_utilization::<H>(trace, options.align);
        }
    }
    measurement
}

/// Every allocator on one trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceReport {
    /// The trace's name (its file name without `.rep`).
    pub trace: String,
    /// Its weight in the summary (0: left out).
    pub weight: u32,
    /// Its counts and peak live bytes.
    pub profile: Profile,
    /// Its total ops.
    pub ops: usize,
    /// What the parser read from a C dialect or forgave ([`Trace::warnings`]), as
    /// `file:line: warning: ...`.
    pub warnings: Vec<String>,
    /// The system allocator's timing pass: the reference throughput.
    pub system: Throughput,
    /// One row per allocator.
    pub measurements: Vec<Measurement>,
}

impl TraceReport {
    /// A report for `trace` with the system allocator's throughput and no allocator yet.
    pub fn new(name: &str, trace: &Trace, system: Throughput) -> Self {
        TraceReport {
            trace: name.to_string(),
            weight: trace.weight(),
            profile: trace.profile(),
            ops: trace.ops().len(),
            warnings: trace.warnings().iter().map(ToString::to_string).collect(),
            system,
            measurements: Vec::new(),
        }
    }

    /// This trace as a Markdown section: a heading, the trace's counts, its warnings,
    /// the region and why, and a table with one row per allocator and a last row for
    /// the system allocator.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let p = &self.profile;
        let _ = writeln!(
            out,
            "### {}\n\n{} ops ({} a, {} r, {} f), peak live {}, weight {}\n",
            self.trace,
            self.ops,
            p.allocs,
            p.reallocs,
            p.frees,
            bytes(p.peak_live_bytes),
            self.weight
        );
        for warning in &self.warnings {
            let _ = writeln!(out, "- {warning}");
        }
        if !self.warnings.is_empty() {
            out.push('\n');
        }
        // Every allocator of a report runs in the same region (one `MeasureOptions`).
        if let Some(m) = self.measurements.first() {
            let _ = writeln!(out, "{}\n", m.region);
        }
        out.push_str(
            "| allocator | util (high water) | util (min region) | min region | Kops/s | failed | int frag (peak) | ext frag (peak) |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for m in &self.measurements {
            if let Some(error) = &m.error {
                let _ = writeln!(out, "| {} | error: {} | | | | | | |", m.allocator, error);
                continue;
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                m.allocator,
                m.utilization.map_or("-".into(), percent),
                m.min_region.map_or("-".into(), |r| percent(r.utilization)),
                m.min_region
                    .map_or("none found".into(), |r| bytes(r.region)),
                m.throughput.map_or("-".into(), |t| kops(t.ops_per_sec)),
                m.failed_requests,
                if m.peer {
                    "-".into()
                } else {
                    bytes(m.peak_internal_fragmentation)
                },
                if m.peer {
                    "-".into()
                } else {
                    percent(m.peak_external_fragmentation)
                },
            );
        }
        let _ = writeln!(
            out,
            "| system (std::alloc, T_ref) | | | | {} | | | |",
            kops(self.system.ops_per_sec)
        );
        out
    }
}

/// One allocator over every weighted trace of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The allocator's name.
    pub allocator: String,
    /// Weighted traces it ran.
    pub traces: usize,
    /// Of those, the ones it ran correctly (no error, no refused request).
    pub correct: usize,
    /// U: the weighted mean of [`Measurement::scored_utilization`].
    pub utilization: f64,
    /// The weighted mean of the min-region utilization (0 where none was found).
    pub min_region_utilization: f64,
    /// T: total ops / total seconds of its timing passes, ops per second.
    pub throughput: f64,
    /// The performance index P, [`SCORE_FORMULA`].
    pub score: f64,
}

/// A whole run: every trace, the reference throughput, and the summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    /// How the score is computed.
    pub formula: &'static str,
    /// T_ref: the system allocator's total ops / total seconds over the weighted traces.
    pub reference_ops_per_sec: f64,
    /// One row per allocator, in the order they first appear in `traces`.
    pub summary: Vec<Summary>,
    /// Every trace's measurements.
    pub traces: Vec<TraceReport>,
    /// The files of the run that could not be replayed, and why; see
    /// [`Run::with_not_replayed`].
    pub not_replayed: Vec<NotReplayed>,
}

/// A trace file that a run could not replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotReplayed {
    /// The file.
    pub file: String,
    /// Why: the parse error with its line, or the read error.
    pub error: String,
}

impl Run {
    /// Summarizes `traces`.
    pub fn new(traces: Vec<TraceReport>) -> Run {
        let weighted = || traces.iter().filter(|t| t.weight > 0);
        let reference = ops_per_sec(weighted().map(|t| (t.system.ops, t.system.seconds)));
        let mut names: Vec<&str> = Vec::new();
        for m in traces.iter().flat_map(|t| &t.measurements) {
            if !names.contains(&m.allocator.as_str()) {
                names.push(&m.allocator);
            }
        }
        let summary = names
            .into_iter()
            .map(|name| {
                let rows: Vec<(u32, &Measurement)> = weighted()
                    .flat_map(|t| {
                        t.measurements
                            .iter()
                            .filter(|m| m.allocator == name)
                            .map(|m| (t.weight, m))
                    })
                    .collect();
                let mean = |value: &dyn Fn(&Measurement) -> f64| {
                    let total: f64 = rows.iter().map(|&(w, _)| f64::from(w)).sum();
                    let sum: f64 = rows.iter().map(|&(w, m)| f64::from(w) * value(m)).sum();
                    if total > 0.0 { sum / total } else { 0.0 }
                };
                let utilization = mean(&Measurement::scored_utilization);
                let throughput = ops_per_sec(
                    rows.iter()
                        .filter_map(|(_, m)| m.throughput)
                        .map(|t| (t.ops, t.seconds)),
                );
                Summary {
                    allocator: name.to_string(),
                    traces: rows.len(),
                    correct: rows
                        .iter()
                        .filter(|(_, m)| m.error.is_none() && m.failed_requests == 0)
                        .count(),
                    utilization,
                    min_region_utilization: mean(&|m| m.min_region.map_or(0.0, |r| r.utilization)),
                    throughput,
                    score: performance_index(utilization, throughput, reference),
                }
            })
            .collect();
        Run {
            formula: SCORE_FORMULA,
            reference_ops_per_sec: reference,
            summary,
            traces,
            not_replayed: Vec::new(),
        }
    }

    /// The same run, listing the files that could not be replayed.
    pub fn with_not_replayed(self, not_replayed: Vec<NotReplayed>) -> Run {
        Run {
            not_replayed,
            ..self
        }
    }

    /// The summary as a Markdown section: the formula, T_ref, and one row per allocator.
    pub fn summary_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### Summary\n\n`{}` with U the mean malloc-lab utilization (peak live bytes / high-water mark; \
             0 for a trace with a refused request or an error), T the allocator's total ops / total seconds, \
             and T_ref = {} Kops/s, the system allocator's on the same traces in this run.\n",
            self.formula,
            kops(self.reference_ops_per_sec)
        );
        out.push_str(
            "| allocator | correct traces | U | util (min region) | T (Kops/s) | P |\n\
             | --- | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for s in &self.summary {
            let _ = writeln!(
                out,
                "| {} | {}/{} | {} | {} | {} | {:.1} |",
                s.allocator,
                s.correct,
                s.traces,
                percent(s.utilization),
                percent(s.min_region_utilization),
                kops(s.throughput),
                s.score
            );
        }
        out
    }

    /// Every trace's table, then the summary, then the files not replayed.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for trace in &self.traces {
            out.push_str(&trace.markdown());
            out.push('\n');
        }
        out.push_str(&self.summary_markdown());
        if !self.not_replayed.is_empty() {
            let _ = writeln!(
                out,
                "\n### Not replayed\n\n{} file(s) could not be read as traces and are not in the summary:\n",
                self.not_replayed.len()
            );
            for file in &self.not_replayed {
                let _ = writeln!(out, "- `{}`: {}", file.file, file.error);
            }
        }
        out
    }
}

/// Total ops / total seconds of `(ops, seconds)` pairs; 0 when no time was spent.
fn ops_per_sec(runs: impl Iterator<Item = (usize, f64)>) -> f64 {
    let (ops, seconds) = runs.fold((0usize, 0.0), |(o, s), (ops, secs)| (o + ops, s + secs));
    if seconds > 0.0 {
        ops as f64 / seconds
    } else {
        0.0
    }
}

/// `0.875` as `87.5%`.
fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// Ops per second as thousands, no decimals.
fn kops(ops_per_sec: f64) -> String {
    format!("{:.0}", ops_per_sec / 1000.0)
}

/// A byte count in B, KiB or MiB.
pub(crate) fn bytes(n: usize) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1024 * 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
    }
}
