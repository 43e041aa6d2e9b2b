//! report.html: one self-contained page (inline CSS and SVG, no scripts, no network).

use std::fmt::Write;

use super::format::{esc, human_rate, row_label, runtime_labels, COLORS, PAGE_STYLE};
use super::markdown;
use super::Summary;

/// Walks a chart's grid: one row per workload (labelled), one bar slot per runtime label;
/// calls `draw(svg, j, y, value)` for each runtime that has a value. `geom` is
/// (left margin, bar height, row height).
fn grid<T>(
    o: &mut String,
    s: &Summary,
    labels: &[String],
    (left, bar, row): (f64, f64, f64),
    pick: impl Fn(&super::RuntimeResult) -> Option<T>,
    mut draw: impl FnMut(&mut String, usize, f64, T),
) {
    for (i, w) in s.workloads.iter().enumerate() {
        let y0 = 10.0 + i as f64 * row;
        row_label(o, left, y0 + bar * labels.len() as f64 / 2.0, &w.spec.name);
        for (j, l) in labels.iter().enumerate() {
            if let Some(v) = w.runtimes.iter().find(|r| &r.label == l).and_then(&pick) {
                draw(o, j, y0 + j as f64 * bar, v);
            }
        }
    }
}

/// Horizontal bars with interval whiskers: one row per workload, one bar per runtime.
fn throughput_chart(s: &Summary, labels: &[String]) -> String {
    let max = s
        .workloads
        .iter()
        .flat_map(|w| w.runtimes.iter().filter_map(|r| r.thrpt.map(|t| t.upper)))
        .fold(1.0f64, f64::max);
    let (left, width, bar, gap) = (230.0, 560.0, 14.0, 12.0);
    let row = bar * labels.len() as f64 + gap;
    let height = row * s.workloads.len() as f64 + 40.0;
    let mut o = format!(
        r#"<svg viewBox="0 0 {} {height}" width="100%" role="img" aria-label="throughput">"#,
        left + width + 90.0
    );
    grid(
        &mut o,
        s,
        labels,
        (left, bar, row),
        |r| r.thrpt,
        |o, j, y, t| {
            let l = &labels[j];
            let x = |v: f64| left + v / max * width;
            let _ = write!(
                o,
                r#"<rect x="{left}" y="{y}" width="{:.1}" height="{:.1}" fill="{}"><title>{l}: {:.0} req/s [{:.0}, {:.0}]</title></rect>"#,
                x(t.estimate) - left,
                bar - 2.0,
                COLORS[j % COLORS.len()],
                t.estimate,
                t.lower,
                t.upper
            );
            let ym = y + (bar - 2.0) / 2.0;
            let _ = write!(
                o,
                r#"<line x1="{:.1}" x2="{:.1}" y1="{ym}" y2="{ym}" class="w"/><line x1="{:.1}" x2="{:.1}" y1="{}" y2="{}" class="w"/><line x1="{:.1}" x2="{:.1}" y1="{}" y2="{}" class="w"/>"#,
                x(t.lower),
                x(t.upper),
                x(t.lower),
                x(t.lower),
                y,
                y + bar - 2.0,
                x(t.upper),
                x(t.upper),
                y,
                y + bar - 2.0
            );
            let _ = write!(
                o,
                r#"<text x="{:.1}" y="{}" class="v">{}</text>"#,
                x(t.upper) + 4.0,
                ym + 4.0,
                human_rate(t.estimate)
            );
        },
    );
    o.push_str("</svg>");
    o
}

/// Latency percentiles on a log axis: per workload and runtime, marks at p50, p99, p99.9.
fn latency_chart(s: &Summary, labels: &[String]) -> String {
    let vals: Vec<u64> = s
        .workloads
        .iter()
        .flat_map(|w| {
            w.runtimes
                .iter()
                .filter_map(|r| r.latency().map(|l| l.p999.max(1)))
        })
        .collect();
    let max = vals.iter().copied().max().unwrap_or(1000).max(10) as f64;
    let min = s
        .workloads
        .iter()
        .flat_map(|w| {
            w.runtimes
                .iter()
                .filter_map(|r| r.latency().map(|l| l.p50.max(1)))
        })
        .min()
        .unwrap_or(1) as f64;
    let (lo, hi) = ((min / 2.0).max(1.0).log10().floor(), max.log10().ceil());
    let (left, width, bar, gap) = (230.0, 560.0, 14.0, 12.0);
    let x = |v: f64| left + (v.max(1.0).log10() - lo) / (hi - lo).max(1e-9) * width;
    let row = bar * labels.len() as f64 + gap;
    let height = row * s.workloads.len() as f64 + 50.0;
    let mut o = format!(
        r#"<svg viewBox="0 0 {} {height}" width="100%" role="img" aria-label="latency">"#,
        left + width + 60.0
    );
    let axis_y = height - 20.0;
    let mut p = lo;
    while p <= hi {
        let v = 10f64.powf(p);
        let _ = write!(
            o,
            r#"<line x1="{0:.1}" x2="{0:.1}" y1="5" y2="{axis_y}" class="g"/><text x="{0:.1}" y="{1}" text-anchor="middle" class="v">{2}</text>"#,
            x(v),
            axis_y + 14.0,
            super::format::fmt_us(v.round() as u64)
        );
        p += 1.0;
    }
    grid(
        &mut o,
        s,
        labels,
        (left, bar, row),
        |r| r.latency(),
        |o, j, y, lat| {
            let l = &labels[j];
            let c = COLORS[j % COLORS.len()];
            let (a, b, d) = (x(lat.p50 as f64), x(lat.p99 as f64), x(lat.p999 as f64));
            let _ = write!(
                o,
                r#"<rect x="{a:.1}" y="{}" width="{:.1}" height="{}" fill="{c}" opacity="0.35"/><rect x="{:.1}" y="{}" width="3" height="{}" fill="{c}"><title>{l} p50 {} µs</title></rect><rect x="{:.1}" y="{}" width="3" height="{}" fill="{c}"><title>{l} p99 {} µs</title></rect><circle cx="{d:.1}" cy="{}" r="3" fill="{c}"><title>{l} p99.9 {} µs</title></circle>"#,
                y,
                (d - a).max(1.0),
                bar - 2.0,
                a - 1.5,
                y,
                bar - 2.0,
                lat.p50,
                b - 1.5,
                y,
                bar - 2.0,
                lat.p99,
                y + (bar - 2.0) / 2.0,
                lat.p999
            );
        },
    );
    o.push_str("</svg>");
    o
}

pub fn render(s: &Summary, criterion_link: &str) -> String {
    let labels = runtime_labels(s);
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>runtime-bench: tokio vs tokio-uring</title>
<style>{}</style></head><body>
<h1>runtime-bench: tokio vs tokio-uring</h1>"#,
        PAGE_STYLE
    );
    let _ = write!(
        o,
        "<p>{} · <a href=\"{}\">criterion's reports</a></p>",
        esc(&s.run_line()),
        esc(criterion_link)
    );
    // The same pass/fail statement as summary.md, styled.
    let class = if s.passed() { "ok" } else { "bad" };
    let _ = write!(
        o,
        r#"<div class="{class}">{}</div>"#,
        markdown::verdict_lines(s).html()
    );
    o.push_str("<h2>Verdict: tokio-uring / tokio over blocks of fresh processes</h2>");
    o.push_str(&super::forest::verdicts(s));
    o.push_str(r#"<p class="key">dot: Hodges–Lehmann estimate over blocks, line: its signed-rank interval; shaded: the workload's A/A noise floor; dashed: the equivalence band; right of 1: tokio-uring served more</p>"#);
    let mut verdicts = super::document::Document::default();
    super::explain::verdicts(s, &mut verdicts);
    // Its heading is this section's; the rest (explanation, table) follows the chart.
    verdicts.blocks.remove(0);
    o.push_str(&verdicts.html());
    let mut efficiency = super::document::Document::default();
    super::explain::efficiency(s, &mut efficiency);
    super::kafka_cost::section(s, &mut efficiency);
    o.push_str(&efficiency.html());
    o.push_str("<p class=\"key\">");
    for (j, l) in labels.iter().enumerate() {
        let _ = write!(
            o,
            r#"<span style="background:{}"></span>{}"#,
            COLORS[j % COLORS.len()],
            esc(l)
        );
    }
    o.push_str("</p><h2>Throughput (req/s, 95% interval)</h2>");
    o.push_str(&throughput_chart(s, &labels));
    let curves = super::curve_chart::charts(s);
    if !curves.is_empty() {
        o.push_str("<h2>Latency under a fixed load (open loop, corrected)</h2>");
        o.push_str(&curves);
    }
    o.push_str("<h2>Latency at saturation (closed-loop pass): p50 ▮ p99 ▮ p99.9 ●</h2>");
    o.push_str(&latency_chart(s, &labels));
    // The same tables as summary.md, from the same document.
    o.push_str("<h2>Tables</h2>");
    o.push_str(&markdown::details(s).html());
    o.push_str("</body></html>\n");
    o
}
