//! What the load run says about where its syncs' time went: each sync's latency split into the
//! phone's own work, the wire and the office's parts (from the `Server-Timing` answer the office
//! gives when `server_timing = true`), the mean split of the slowest 1 %, and a per-second
//! series (count, p50, p99, max, and the office's time in each part) written as CSV and drawn
//! as SVG, so that a spike lines up with its cause.

use std::fmt::Write as _;
use std::path::Path;

/// The office's parts of one sync (milliseconds, summed over its round trips).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OfficeSplit {
    /// Waiting for the write turn.
    pub turn: f64,
    /// The write transaction, commit included.
    pub tx: f64,
    /// SQL statements inside it.
    pub sql: f64,
    /// Compacting a case's chunks into a new snapshot.
    pub compact: f64,
    /// Loading documents not in memory.
    pub load: f64,
    /// The commit.
    pub commit: f64,
    /// Waiting for other writers' locks (PostgreSQL).
    pub lock: f64,
    /// What of the transaction held what orders every writer (the global write lock, or on
    /// PostgreSQL a sync's commit order): the part no other write runs beside.
    pub held: f64,
    /// The whole handler.
    pub total: f64,
}

impl OfficeSplit {
    /// Reads `Server-Timing` values (one a round trip) and sums them; `None` when there are
    /// none (an office not configured to say).
    pub fn parse(values: &[String]) -> Option<OfficeSplit> {
        if values.is_empty() {
            return None;
        }
        let mut split = OfficeSplit::default();
        for value in values {
            for metric in value.split(',') {
                let mut parts = metric.trim().split(';');
                let name = parts.next().unwrap_or_default();
                let dur = parts
                    .find_map(|p| p.trim().strip_prefix("dur="))
                    .and_then(|d| d.parse::<f64>().ok())
                    .unwrap_or(0.0);
                let slot = match name {
                    "turn" => &mut split.turn,
                    "tx" => &mut split.tx,
                    "sql" => &mut split.sql,
                    "compact" => &mut split.compact,
                    "load" => &mut split.load,
                    "commit" => &mut split.commit,
                    "lock" => &mut split.lock,
                    "held" => &mut split.held,
                    "total" => &mut split.total,
                    _ => continue,
                };
                *slot += dur;
            }
        }
        Some(split)
    }

    /// The transaction's work other than SQL, compaction, loading, waiting for locks and the
    /// commit: automerge merging and answering, sealing, the checks.
    pub fn merge(&self) -> f64 {
        (self.tx - self.sql - self.compact - self.load - self.commit - self.lock).max(0.0)
    }

    /// The handler's time outside the turn wait and the transaction: decoding, the
    /// preloading of whole documents, the answer.
    pub fn other(&self) -> f64 {
        (self.total - self.turn - self.tx).max(0.0)
    }
}

/// How much of the office's time for its syncs `records` spent holding what orders every writer:
/// the mean held milliseconds a sync, and that as a share of the mean office time of a sync (its
/// handler, turn wait included), as a printable line. `None` when the office did not say.
pub fn held_share(records: &[SyncRecord]) -> Option<String> {
    let splits: Vec<OfficeSplit> = records.iter().filter_map(|r| r.office).collect();
    if splits.is_empty() {
        return None;
    }
    let n = splits.len() as f64;
    let held = splits.iter().map(|o| o.held).sum::<f64>() / n;
    let total = splits.iter().map(|o| o.total).sum::<f64>() / n;
    let tx = splits.iter().map(|o| o.tx).sum::<f64>() / n;
    Some(format!(
        "held {held:.2} ms a sync: {:.1} % of the office's {total:.2} ms (turn wait included), {:.1} % of the transaction's {tx:.2} ms",
        100.0 * held / total.max(f64::EPSILON),
        100.0 * held / tx.max(f64::EPSILON),
    ))
}

/// One sync as the load run saw it.
#[derive(Debug, Clone, Copy)]
pub struct SyncRecord {
    /// When it ended, seconds since the run began.
    pub ended: f64,
    /// The whole `sync_now`, milliseconds.
    pub latency: f64,
    /// Its round trips (wire and office), milliseconds.
    pub round_trips: f64,
    /// The office's split, when the office said.
    pub office: Option<OfficeSplit>,
}

impl SyncRecord {
    /// The phone's own work: preparing and applying, milliseconds.
    pub fn phone(&self) -> f64 {
        (self.latency - self.round_trips).max(0.0)
    }

    /// The wire (and the office's accept queue, TLS, reading the body): the round trips less
    /// the office's handler time.
    pub fn wire(&self) -> f64 {
        match self.office {
            Some(o) => (self.round_trips - o.total).max(0.0),
            None => self.round_trips,
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at]
}

/// The parts a sync's time is split into, in the order they are printed and drawn.
const PARTS: [&str; 10] = [
    "phone", "wire", "turn", "lock", "merge", "sql", "compact", "load", "commit", "other",
];

fn parts(r: &SyncRecord) -> [f64; 10] {
    let o = r.office.unwrap_or_default();
    [
        r.phone(),
        r.wire(),
        o.turn,
        o.lock,
        o.merge(),
        o.sql,
        o.compact,
        o.load,
        o.commit,
        o.other(),
    ]
}

/// The mean split of the slowest `share` of syncs (by latency), as a printable line, and how
/// many of them compacted or loaded a document.
pub fn slowest_split(records: &[SyncRecord], share: f64) -> String {
    let mut sorted: Vec<&SyncRecord> = records.iter().collect();
    sorted.sort_by(|a, b| b.latency.total_cmp(&a.latency));
    let n = ((records.len() as f64 * share).ceil() as usize).clamp(1, records.len().max(1));
    let slow = &sorted[..n.min(sorted.len())];
    if slow.is_empty() {
        return "no syncs".to_owned();
    }
    let mut sums = [0.0; 10];
    for r in slow {
        for (s, v) in sums.iter_mut().zip(parts(r)) {
            *s += v;
        }
    }
    let count = slow.len() as f64;
    let latency = slow.iter().map(|r| r.latency).sum::<f64>() / count;
    let compacted = slow
        .iter()
        .filter(|r| r.office.is_some_and(|o| o.compact > 0.0))
        .count();
    let loaded = slow
        .iter()
        .filter(|r| r.office.is_some_and(|o| o.load > 0.0))
        .count();
    let mut line = format!("{} syncs, mean {latency:.1} ms =", slow.len());
    for (name, sum) in PARTS.iter().zip(sums) {
        let _ = write!(line, " {name} {:.1}", sum / count);
    }
    let _ = write!(
        line,
        " (ms); {compacted} of them compacted a case, {loaded} loaded one"
    );
    line
}

/// One second of the run.
#[derive(Debug, Clone, Default)]
pub struct Second {
    /// Syncs that ended in it.
    pub count: usize,
    /// Their latency's p50, p99 and max (ms).
    pub p50: f64,
    /// See `p50`.
    pub p99: f64,
    /// See `p50`.
    pub max: f64,
    /// The office's time in each of its parts, summed over the second's syncs (ms): turn,
    /// merge, sql, compact, load, commit, lock.
    pub office: [f64; 7],
}

/// The run second by second.
pub fn per_second(records: &[SyncRecord]) -> Vec<Second> {
    let last = records.iter().map(|r| r.ended as usize).max().unwrap_or(0);
    let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); last + 1];
    let mut seconds: Vec<Second> = vec![Second::default(); last + 1];
    for r in records {
        let at = r.ended as usize;
        latencies[at].push(r.latency);
        if let Some(o) = r.office {
            let s = &mut seconds[at].office;
            for (slot, v) in s.iter_mut().zip([
                o.turn,
                o.merge(),
                o.sql,
                o.compact,
                o.load,
                o.commit,
                o.lock,
            ]) {
                *slot += v;
            }
        }
    }
    for (second, mut l) in seconds.iter_mut().zip(latencies) {
        l.sort_by(f64::total_cmp);
        second.count = l.len();
        second.p50 = percentile(&l, 0.5);
        second.p99 = percentile(&l, 0.99);
        second.max = l.last().copied().unwrap_or(0.0);
    }
    seconds
}

/// Writes the series as CSV.
pub fn write_csv(path: &Path, seconds: &[Second]) -> std::io::Result<()> {
    let mut out = String::from(
        "second,syncs,p50_ms,p99_ms,max_ms,office_turn_ms,office_merge_ms,office_sql_ms,office_compact_ms,office_load_ms,office_commit_ms,office_lock_ms\n",
    );
    for (i, s) in seconds.iter().enumerate() {
        let _ = write!(
            out,
            "{i},{},{:.2},{:.2},{:.2}",
            s.count, s.p50, s.p99, s.max
        );
        for v in s.office {
            let _ = write!(out, ",{v:.2}");
        }
        out.push('\n');
    }
    std::fs::write(path, out)
}

/// Draws the series: above, p50, p99 and max latency per second (solid, dashed, dotted: told
/// apart without colour); below, the office's time per second in the turn wait, compaction,
/// loading and the commit, each its own line style, with a legend.
pub fn write_svg(path: &Path, seconds: &[Second], title: &str) -> std::io::Result<()> {
    let (w, h, left, right) = (900.0, 560.0, 60.0, 20.0);
    let (top_a, height_a, top_b, height_b) = (40.0, 250.0, 340.0, 170.0);
    let n = seconds.len().max(2) as f64;
    let x = |i: usize| left + (w - left - right) * i as f64 / (n - 1.0);
    let max_latency = seconds.iter().map(|s| s.max).fold(1.0, f64::max);
    let office_parts = [
        (0, "turn wait"),
        (3, "compaction"),
        (4, "loading"),
        (5, "commit"),
        (6, "lock wait"),
    ];
    let max_office = seconds
        .iter()
        .flat_map(|s| office_parts.iter().map(|(k, _)| s.office[*k]))
        .fold(1.0, f64::max);
    let line = |values: Vec<f64>, top: f64, height: f64, max: f64, style: &str| {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), top + height - height * v / max))
            .collect();
        format!(
            "<polyline fill=\"none\" stroke=\"#000\" {style} points=\"{}\"/>\n",
            points.join(" ")
        )
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n\
         <text x=\"{left}\" y=\"20\" font-size=\"14\">{title}</text>\n"
    );
    for (top, height, max, label) in [
        (top_a, height_a, max_latency, "sync latency per second (ms)"),
        (
            top_b,
            height_b,
            max_office,
            "office time per second, summed over its syncs (ms)",
        ),
    ] {
        let _ = write!(
            svg,
            "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{height}\" fill=\"none\" stroke=\"#999\"/>\n\
             <text x=\"{left}\" y=\"{}\">{label}</text>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max:.0}</text>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>\n",
            w - left - right,
            top - 5.0,
            left - 4.0,
            top + 10.0,
            left - 4.0,
            top + height
        );
    }
    let styles = [
        "stroke-width=\"1.5\"",
        "stroke-width=\"1.5\" stroke-dasharray=\"6 3\"",
        "stroke-width=\"1\" stroke-dasharray=\"1 3\"",
        "stroke-width=\"1\" stroke-dasharray=\"8 3 2 3\"",
        "stroke-width=\"2.5\" stroke-dasharray=\"2 2\"",
    ];
    svg += &line(
        seconds.iter().map(|s| s.p50).collect(),
        top_a,
        height_a,
        max_latency,
        styles[0],
    );
    svg += &line(
        seconds.iter().map(|s| s.p99).collect(),
        top_a,
        height_a,
        max_latency,
        styles[1],
    );
    svg += &line(
        seconds.iter().map(|s| s.max).collect(),
        top_a,
        height_a,
        max_latency,
        styles[2],
    );
    for (i, (k, _)) in office_parts.iter().enumerate() {
        svg += &line(
            seconds.iter().map(|s| s.office[*k]).collect(),
            top_b,
            height_b,
            max_office,
            styles[i],
        );
    }
    let legend = |y: f64, items: &[(&str, &str)]| {
        let mut out = String::new();
        for (i, (name, style)) in items.iter().enumerate() {
            let lx = left + 10.0 + 170.0 * i as f64;
            let _ = writeln!(
                out,
                "<line x1=\"{lx}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#000\" {style}/>\
                 <text x=\"{}\" y=\"{}\">{name}</text>",
                lx + 30.0,
                lx + 35.0,
                y + 4.0
            );
        }
        out
    };
    svg += &legend(
        top_a + height_a + 18.0,
        &[("p50", styles[0]), ("p99", styles[1]), ("max", styles[2])],
    );
    let office_legend: Vec<(&str, &str)> = office_parts
        .iter()
        .zip(styles)
        .map(|((_, name), style)| (*name, style))
        .collect();
    svg += &legend(top_b + height_b + 18.0, &office_legend);
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">seconds into the run: {}</text>\n</svg>\n",
        w - right,
        h - 8.0,
        seconds.len()
    );
    std::fs::write(path, svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ended: f64, latency: f64, timing: &str) -> SyncRecord {
        SyncRecord {
            ended,
            latency,
            round_trips: latency - 1.0,
            office: OfficeSplit::parse(&[timing.to_owned()]),
        }
    }

    #[test]
    fn a_server_timing_splits_a_sync_and_the_slowest_are_found() {
        let t = "turn;dur=40.000, tx;dur=30.000, sql;dur=5.000, compact;dur=20.000, load;dur=0.000, commit;dur=3.000, lock;dur=1.500, total;dur=75.000";
        let slow = record(1.2, 100.0, t);
        let o = slow.office.unwrap();
        assert_eq!(o.turn, 40.0);
        assert!((o.merge() - 0.5).abs() < 1e-9);
        assert_eq!(o.lock, 1.5);
        assert!((o.other() - 5.0).abs() < 1e-9);
        assert!((slow.wire() - 24.0).abs() < 1e-9);
        assert!((slow.phone() - 1.0).abs() < 1e-9);
        let quick = record(
            0.5,
            5.0,
            "turn;dur=0, tx;dur=2, sql;dur=1, compact;dur=0, load;dur=0, commit;dur=1, total;dur=3",
        );
        let mut all = vec![quick; 99];
        all.push(slow);
        let line = slowest_split(&all, 0.01);
        assert!(line.starts_with("1 syncs, mean 100.0 ms"), "{line}");
        assert!(
            line.contains("turn 40.0")
                && line.contains("lock 1.5")
                && line.contains("compact 20.0"),
            "{line}"
        );
        assert!(line.contains("1 of them compacted"), "{line}");
        let seconds = per_second(&all);
        assert_eq!(seconds.len(), 2);
        assert_eq!(seconds[0].count, 99);
        assert_eq!(seconds[1].max, 100.0);
        assert_eq!(seconds[1].office[3], 20.0);
        assert_eq!(seconds[1].office[6], 1.5);
        assert!(OfficeSplit::parse(&[]).is_none());
    }

    #[test]
    fn the_held_share_is_the_mean_held_time_over_the_mean_office_time() {
        let a = record(0.1, 12.0, "turn;dur=0, tx;dur=8, held;dur=2, total;dur=10");
        let b = record(
            0.2,
            32.0,
            "turn;dur=10, tx;dur=12, held;dur=4, total;dur=30",
        );
        let line = held_share(&[a, b]).unwrap();
        assert!(
            line.starts_with("held 3.00 ms a sync: 15.0 % of the office's 20.00 ms"),
            "{line}"
        );
        assert!(
            line.contains("30.0 % of the transaction's 10.00 ms"),
            "{line}"
        );
        let silent = SyncRecord { office: None, ..a };
        assert!(held_share(&[silent]).is_none());
    }
}
