//! The forest chart of verdicts: one row per assessment (a run's workloads in report.html,
//! one workload's runs on the comparison page), each the blocks' estimate and interval on a
//! log axis with the equivalence band and the row's A/A noise floor.

use std::fmt::Write;

use super::format::{esc, row_label, COLORS};
use super::Summary;
use crate::analysis::{Assessment, Verdict};

/// A row's label right of the chart: the verdict, or why a throughput verdict was withheld.
fn chart_label(a: &Assessment) -> String {
    match a.limits.filter(|l| l.withholds_throughput().is_some()) {
        Some(l) => l
            .dominant()
            .map_or_else(|| a.verdict.short(), |d| format!("withheld: {}", d.label())),
        None => a.verdict.short(),
    }
}

/// The run's verdicts: one row per workload with a throughput verdict.
pub fn verdicts(s: &Summary) -> String {
    let rows: Vec<(&str, &Assessment)> = s
        .workloads
        .iter()
        .filter_map(|w| Some((w.spec.name.as_str(), w.assessment.as_ref()?)))
        .collect();
    chart(&rows, s.setup.rules.unwrap_or_default().band)
}

/// A forest chart of labelled assessments: per row, the blocks' tokio-uring / tokio
/// estimate (dot) and interval (line) on a log axis (a ratio and its inverse equally far
/// from 1), a line at 1.0, the equivalence band `band` (dashed) and the row's own A/A
/// noise floor (shaded, symmetric on the log axis: 1/(1+f) .. 1+f).
pub fn chart(rows: &[(&str, &Assessment)], band: f64) -> String {
    if rows.is_empty() {
        return String::new();
    }
    // The axis spans every interval and floor, at least ±2 bands, within 1/8 .. 8.
    let (mut lo, mut hi) = (1.0 - band * 2.0, 1.0 + band * 2.0);
    for (_, a) in rows {
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
    for (i, (name, a)) in rows.iter().enumerate() {
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
        row_label(&mut o, left, y + (row - 4.0) / 2.0, name);
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
                esc(name),
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
