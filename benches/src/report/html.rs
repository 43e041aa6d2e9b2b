//! report.html: one self-contained page (inline CSS and SVG, no scripts, no network).

use std::fmt::Write;

use super::format::{esc, human_rate, runtime_labels, COLORS};
use super::markdown;
use super::Summary;
use crate::analysis::Verdict;

/// A workload's name, right-aligned left of its row of bars, centred at `y`.
fn row_label(o: &mut String, left: f64, y: f64, name: &str) {
    let _ = write!(
        o,
        r#"<text x="{}" y="{}" text-anchor="end" class="l">{}</text>"#,
        left - 8.0,
        y + 4.0,
        esc(name)
    );
}

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

/// The verdict's words beside its interval: the limit that withheld it, when one did
/// (`withheld: co-limited`), else the verdict's own short form.
fn chart_label(a: &crate::analysis::Assessment) -> String {
    match a.limits.filter(|l| l.withholds_throughput().is_some()) {
        Some(l) => l
            .dominant()
            .map_or_else(|| a.verdict.short(), |d| format!("withheld: {}", d.label())),
        None => a.verdict.short(),
    }
}

/// The forest chart: per workload, the blocks' tokio-uring / tokio estimate (dot) and
/// interval (line) on a log axis (a ratio and its inverse equally far from 1), a line at
/// 1.0, the equivalence band (dashed) and the workload's own A/A noise floor (shaded,
/// symmetric on the log axis: 1/(1+f) .. 1+f).
fn forest_chart(s: &Summary) -> String {
    let rows: Vec<_> = s
        .workloads
        .iter()
        .filter_map(|w| Some((w, w.assessment.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let band = s.setup.rules.unwrap_or_default().band;
    // The axis spans every interval and floor, at least ±2 bands, within 1/8 .. 8.
    let (mut lo, mut hi) = (1.0 - band * 2.0, 1.0 + band * 2.0);
    for (_, a) in &rows {
        if let Some(p) = &a.ab {
            let (l, _, h) = p.ratio();
            lo = lo.min(l);
            hi = hi.max(h);
        }
        if let Some(f) = a.noise_floor {
            lo = lo.min(1.0 / (1.0 + f));
            hi = hi.max(1.0 + f);
        }
    }
    let (lo, hi) = (lo.max(0.125) / 1.02, hi.min(8.0) * 1.02);
    let (left, width, row) = (230.0, 470.0, 26.0);
    let x = |v: f64| left + (v.clamp(lo, hi).ln() - lo.ln()) / (hi.ln() - lo.ln()) * width;
    let height = row * rows.len() as f64 + 40.0;
    let mut o = format!(
        r#"<svg viewBox="0 0 {} {height}" width="100%" role="img" aria-label="verdicts">"#,
        left + width + 200.0
    );
    let (top, bottom) = (14.0, height - 22.0);
    for (i, (w, a)) in rows.iter().enumerate() {
        let y = top + 4.0 + i as f64 * row;
        if let Some(f) = a.noise_floor {
            let _ = write!(
                o,
                r#"<rect x="{:.1}" y="{y}" width="{:.1}" height="{}" fill="gray" opacity="0.35"><title>A/A noise floor ±{:.1} % (twin vs tokio in the same blocks)</title></rect>"#,
                x(1.0 / (1.0 + f)),
                x(1.0 + f) - x(1.0 / (1.0 + f)),
                row - 4.0,
                f * 100.0,
            );
        }
        row_label(&mut o, left, y + (row - 4.0) / 2.0, &w.spec.name);
        let color = match a.verdict {
            Verdict::UringFaster { .. } => COLORS[1],
            Verdict::TokioFaster { .. } => COLORS[0],
            Verdict::Equivalent { .. } => "#555",
            Verdict::Undecided { .. } => "#e69500",
        };
        let ym = y + (row - 4.0) / 2.0;
        if let Some(p) = &a.ab {
            let (l, m, h) = p.ratio();
            let _ = write!(
                o,
                r#"<line x1="{:.1}" x2="{:.1}" y1="{ym}" y2="{ym}" stroke="{color}" stroke-width="2"/><circle cx="{:.1}" cy="{ym}" r="4" fill="{color}"><title>{}: {m:.3} [{l:.3}, {h:.3}] over {} blocks</title></circle>"#,
                x(l),
                x(h),
                x(m),
                esc(&w.spec.name),
                p.blocks.len()
            );
        }
        let _ = write!(
            o,
            r#"<text x="{}" y="{}" class="l" fill="{color}">{}</text>"#,
            left + width + 12.0,
            ym + 4.0,
            esc(&chart_label(a))
        );
    }
    let _ = write!(
        o,
        r#"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{bottom}" class="one"/>"#,
        x(1.0)
    );
    for v in [1.0 - band, 1.0 + band] {
        let _ = write!(
            o,
            r#"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{bottom}" class="band"/>"#,
            x(v)
        );
    }
    let _ = write!(
        o,
        r#"<text x="{:.1}" y="10" text-anchor="middle" class="v">±{:.0} % band</text>"#,
        x(1.0),
        band * 100.0
    );
    // Ticks on the log axis, those that fit apart.
    let mut last = f64::NEG_INFINITY;
    for v in [
        0.125, 0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0, 8.0,
    ] {
        if v < lo || v > hi || x(v) - last < 34.0 {
            continue;
        }
        last = x(v);
        let _ = write!(
            o,
            r#"<line x1="{0:.1}" x2="{0:.1}" y1="{bottom}" y2="{1}" class="w"/><text x="{0:.1}" y="{2}" text-anchor="middle" class="v">{v}</text>"#,
            x(v),
            bottom + 4.0,
            bottom + 15.0
        );
    }
    o.push_str("</svg>");
    o
}

pub fn render(s: &Summary, criterion_link: &str) -> String {
    let labels = runtime_labels(s);
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>runtime-bench: tokio vs tokio-uring</title>
<style>body{{font:14px/1.45 system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
.bad{{background:#fdd;padding:.5em 1em;border:1px solid #c00}}.ok{{background:#dfd;padding:.5em 1em;border:1px solid #080}}
svg .one{{stroke:#000;stroke-width:1}}svg .band{{stroke:#666;stroke-dasharray:4 3}}svg .l{{font-size:11px}}svg .v{{font-size:10px;fill:#444}}svg .w{{stroke:#000;stroke-width:1}}svg .g{{stroke:#ddd}}
.key span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}}code{{font-size:12px}}</style></head><body>
<h1>runtime-bench: tokio vs tokio-uring</h1>"#
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
    o.push_str(&forest_chart(s));
    o.push_str(r#"<p class="key">dot: Hodges–Lehmann estimate over blocks, line: its signed-rank interval; shaded: the workload's A/A noise floor; dashed: the equivalence band; right of 1: tokio-uring served more</p>"#);
    let mut verdicts = super::document::Document::default();
    super::explain::verdicts(s, &mut verdicts);
    // Its heading is this section's; the rest (explanation, table) follows the chart.
    verdicts.blocks.remove(0);
    o.push_str(&verdicts.html());
    let mut efficiency = super::document::Document::default();
    super::explain::efficiency(s, &mut efficiency);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{assess, Limit, Limits, Rules};

    #[test]
    fn a_withheld_verdict_is_labelled_by_its_limit() {
        let t: Vec<Vec<f64>> = (0..8).map(|_| vec![100.0; 3]).collect();
        let u: Vec<Vec<f64>> = (0..8).map(|_| vec![120.0; 3]).collect();
        let decided = assess(&t, &u, &t, None, &Rules::default());
        assert_eq!(chart_label(&decided), "tokio-uring +20.0 %");
        let limits = Limits::count([Limit::Co, Limit::Co, Limit::Server]);
        let why = limits.withholds_throughput();
        let mut withheld = assess(&t, &u, &t, why.as_deref(), &Rules::default());
        withheld.limits = Some(limits);
        assert_eq!(chart_label(&withheld), "withheld: co-limited");
    }
}
