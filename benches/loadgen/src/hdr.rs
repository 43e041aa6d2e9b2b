//! HdrHistogram's interchange formats, for histograms of µs:
//!
//! - `.hgrm`: the percentile-distribution text HdrHistogram's `outputPercentileDistribution`
//!   prints (wrk2 prints the same), values in milliseconds — the form HdrHistogram's
//!   plotter (`plotFiles.html`) reads. [`write_hgrm`] writes it, [`parse_hgrm`] reads it
//!   back.
//! - `.hlog`: HdrHistogram's interval log, each histogram whole in the base64 V2
//!   compressed encoding under a tag, values in µs — what `HistogramLogProcessor` and the
//!   other HdrHistogram libraries read, add and re-plot. [`write_hlog`], [`read_hlog`].

use std::io::{self, Write};
use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Values are µs; `.hgrm` prints milliseconds.
const US_PER_MS: f64 = 1000.0;
/// Percentile ticks per half distance to 100 %, as HdrHistogram's own tools print.
const TICKS: u32 = 5;

/// Writes `h` (µs) as HdrHistogram's percentile distribution, in milliseconds.
pub fn write_hgrm(h: &Histogram<u64>, w: &mut impl Write) -> io::Result<()> {
    let digits = usize::from(h.sigfig());
    writeln!(
        w,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(TICKS) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / US_PER_MS;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                writeln!(
                    w,
                    "{value:>12.digits$} {q:>2.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - q)
                )?;
            } else {
                writeln!(w, "{value:>12.digits$} {q:>2.12} {total:>10}")?;
            }
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            h.mean() / US_PER_MS,
            h.stdev() / US_PER_MS,
            h.max() as f64 / US_PER_MS,
        )
    };
    writeln!(
        w,
        "#[Mean    = {mean:>12.digits$}, StdDeviation   = {stdev:>12.digits$}]"
    )?;
    writeln!(
        w,
        "#[Max     = {max:>12.digits$}, Total count    = {:>12}]",
        h.len()
    )?;
    // Sub-buckets: the power of two above 2 x 10^digits, as HdrHistogram sizes them.
    let sub_buckets = (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two();
    writeln!(
        w,
        "#[Buckets = {:>12}, SubBuckets     = {sub_buckets:>12}]",
        h.buckets()
    )
}

/// One line of a `.hgrm`: the value (ms) at a percentile level, and the count up to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HgrmRow {
    pub value_ms: f64,
    /// 0..=1.
    pub quantile: f64,
    pub total_count: u64,
}

/// Reads the rows of a `.hgrm` (header, blank and `#` lines skipped).
pub fn parse_hgrm(text: &str) -> Result<Vec<HgrmRow>, String> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("Value") {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = |what: &str| format!("line {}: {what}: {line:?}", i + 1);
        if f.len() < 3 {
            return Err(bad("expected value, percentile, total count"));
        }
        rows.push(HgrmRow {
            value_ms: f[0].parse().map_err(|_| bad("value"))?,
            quantile: f[1].parse().map_err(|_| bad("percentile"))?,
            total_count: f[2].parse().map_err(|_| bad("total count"))?,
        });
    }
    Ok(rows)
}

/// The value (ms) at quantile `q` from parsed rows: the first row at or past `q`.
pub fn hgrm_value_at(rows: &[HgrmRow], q: f64) -> Option<f64> {
    rows.iter().find(|r| r.quantile >= q).map(|r| r.value_ms)
}

/// Writes tagged histograms (µs) as one HdrHistogram interval log, each spanning
/// `duration` from the log's start.
pub fn write_hlog(
    histograms: &[(&str, &Histogram<u64>)],
    duration: Duration,
    comment: &str,
    w: &mut impl Write,
) -> io::Result<()> {
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment(comment)
        .add_comment("values in microseconds")
        .with_max_value_divisor(US_PER_MS);
    let mut log = builder.begin_log_with(w, &mut serializer)?;
    for (tag, h) in histograms {
        let tag = Tag::new(tag).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("bad tag {tag:?}"))
        })?;
        log.write_histogram(*h, Duration::ZERO, duration, Some(tag))
            .map_err(|e| io::Error::other(format!("{e}")))?;
    }
    Ok(())
}

/// Reads every tagged histogram of an interval log.
pub fn read_hlog(bytes: &[u8]) -> Result<Vec<(String, Histogram<u64>)>, String> {
    let mut out = Vec::new();
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        match entry.map_err(|e| format!("{e:?}"))? {
            LogEntry::Interval(h) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(h.encoded_histogram())
                    .map_err(|e| format!("base64: {e}"))?;
                let hist: Histogram<u64> = de
                    .deserialize(&mut &decoded[..])
                    .map_err(|e| format!("{e:?}"))?;
                out.push((h.tag().map_or("", |t| t.as_str()).to_string(), hist));
            }
            LogEntry::StartTime(_) | LogEntry::BaseTime(_) => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measurements::histogram;

    /// A long-tailed sample: most answers fast, a few very slow.
    fn sample() -> Histogram<u64> {
        let mut h = histogram();
        let mut x = 7u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let base = 80 + x % 400;
            let v = if x % 100 == 0 { base * 50 } else { base };
            h.record(v).expect("in range");
        }
        h.record(2_500_000).expect("one 2.5 s outlier");
        h
    }

    #[test]
    fn hgrm_parses_back_to_the_same_percentiles() {
        let h = sample();
        let mut out = Vec::new();
        write_hgrm(&h, &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        let rows = parse_hgrm(&text).expect("parse");
        assert!(rows.len() > 50, "{} rows", rows.len());
        // Every row: its value is the histogram's value at that level, its count the
        // histogram's count up to that value (values are whole µs: exact in ms to 3 places).
        for r in &rows {
            let us = (r.value_ms * 1000.0).round() as u64;
            assert_eq!(us, h.value_at_quantile(r.quantile), "{r:?}");
            assert_eq!(r.total_count, h.count_between(0, us), "{r:?}");
        }
        for q in [0.0, 0.5, 0.9] {
            let ms = hgrm_value_at(&rows, q).expect("row");
            assert_eq!(
                (ms * 1000.0).round() as u64,
                h.value_at_quantile(q),
                "q {q}"
            );
        }
        // p99 and p99.9 are not ticks: the first row past them brackets the true value.
        for q in [0.99, 0.999] {
            let ms = hgrm_value_at(&rows, q).expect("row");
            assert!(
                (ms * 1000.0).round() as u64 >= h.value_at_quantile(q),
                "q {q}"
            );
        }
        let last = rows.last().expect("rows");
        assert_eq!(last.quantile, 1.0);
        assert_eq!((last.value_ms * 1000.0).round() as u64, h.max());
        assert_eq!(last.total_count, h.len());
        let footer = format!(
            "#[Max     = {:>12.3}, Total count    =        20001]",
            h.max() as f64 / 1000.0
        );
        assert!(text.contains(&footer), "{text}");
        assert!(h.max() >= 2_500_000);
    }

    #[test]
    fn hgrm_of_an_empty_histogram_is_just_the_footer() {
        let mut out = Vec::new();
        write_hgrm(&histogram(), &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert!(parse_hgrm(&text).expect("parse").is_empty());
        assert!(text.contains("Total count    =            0"), "{text}");
        assert!(parse_hgrm("1.0 x 3")
            .expect_err("bad")
            .contains("percentile"));
    }

    #[test]
    fn hlog_reads_back_the_same_histograms() {
        let a = sample();
        let mut b = histogram();
        b.record(42).expect("record");
        let mut out = Vec::new();
        write_hlog(
            &[("corrected", &a), ("uncorrected", &b)],
            Duration::from_secs(3),
            "test",
            &mut out,
        )
        .expect("write");
        let back = read_hlog(&out).expect("read");
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].0, "corrected");
        assert_eq!(back[0].1, a);
        assert_eq!(back[1].0, "uncorrected");
        assert_eq!(back[1].1, b);
    }
}
