//! The latency curves as inline SVG: per workload, corrected latency (log axis) against
//! offered rate, one colour per runtime, one line style per percentile (p50, p99, p99.9),
//! the objectives as dotted lines; a point that is not the server's latency (the load
//! generator fell behind, or errors) is drawn hollow.

use std::fmt::Write;

use super::curves::objectives;
use super::format::{esc, fmt_us, human_rate, runtime_labels, COLORS};
use super::summary::WorkloadResult;
use super::Summary;
use loadgen::Latency;

/// (label, pick, stroke width, dash pattern) per percentile drawn.
type Style = (&'static str, fn(&Latency) -> u64, f64, &'static str);
const PERCENTILES: [Style; 3] = [
    ("p50", |l| l.p50, 1.2, "2 3"),
    ("p99", |l| l.p99, 2.2, ""),
    ("p99.9", |l| l.p999, 1.2, "7 4"),
];

/// Every workload's chart (empty when no workload has a curve).
pub fn charts(s: &Summary) -> String {
    let mut o = String::new();
    for w in s
        .workloads
        .iter()
        .filter(|w| w.runtimes.iter().any(|r| r.raw.curve.is_some()))
    {
        let _ = write!(o, "<h3>{}</h3>", esc(&w.spec.name));
        o.push_str(&chart(s, w));
    }
    if !o.is_empty() {
        o.push_str(r#"<p class="key">line style: p50 dotted, p99 solid, p99.9 dashed (all corrected, from the intended send time); hollow point: not the server's latency (fell behind its schedule, or errors); grey dotted: the p99 objectives</p>"#);
    }
    o
}

fn chart(s: &Summary, w: &WorkloadResult) -> String {
    // Colours by the page's key, so a runtime has one colour in every chart.
    let labels = runtime_labels(s);
    let curves: Vec<(usize, &str, &crate::results::Curve)> = w
        .runtimes
        .iter()
        .filter_map(|r| {
            let i = labels.iter().position(|l| l == &r.label).unwrap_or(0);
            Some((i, r.label.as_str(), r.raw.curve.as_ref()?))
        })
        .collect();
    let points = || curves.iter().flat_map(|(_, _, c)| c.points.iter());
    let max_rate = points().map(|p| p.offered).fold(1.0f64, f64::max) * 1.05;
    let objectives = objectives(s);
    let lat = points().flat_map(|p| {
        PERCENTILES
            .iter()
            .map(move |(_, f, _, _)| f(&p.corrected).max(1))
    });
    let (lo_v, hi_v) = lat
        .chain(objectives.iter().copied())
        .fold((u64::MAX, 1u64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let lo = (lo_v.max(1) as f64).log10().floor();
    let hi = (hi_v.max(10) as f64).log10().ceil().max(lo + 1.0);
    let (left, top, width, height) = (70.0, 12.0, 640.0, 260.0);
    let x = |r: f64| left + r / max_rate * width;
    let y = |us: u64| top + height - ((us.max(1) as f64).log10() - lo) / (hi - lo) * height;
    let mut o = format!(
        r#"<svg viewBox="0 0 {} {}" width="100%" role="img" aria-label="latency curve {}">"#,
        left + width + 150.0,
        top + height + 44.0,
        esc(&w.spec.name)
    );
    // Decades on the latency axis.
    let mut d = lo;
    while d <= hi {
        let us = 10f64.powf(d).round() as u64;
        let _ = write!(
            o,
            r#"<line x1="{left}" x2="{right}" y1="{yy:.1}" y2="{yy:.1}" class="g"/><text x="{tx}" y="{ty:.1}" text-anchor="end" class="v">{label}</text>"#,
            right = left + width,
            yy = y(us),
            tx = left - 6.0,
            ty = y(us) + 3.5,
            label = fmt_us(us)
        );
        d += 1.0;
    }
    // Rate ticks: five, rounded.
    for i in 0..=5 {
        let r = max_rate / 1.05 * f64::from(i) / 5.0;
        let _ = write!(
            o,
            r#"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{1}" class="g"/><text x="{0:.1}" y="{2}" text-anchor="middle" class="v">{3}</text>"#,
            x(r),
            top + height,
            top + height + 14.0,
            human_rate(r)
        );
    }
    let _ = write!(
        o,
        r#"<text x="{:.1}" y="{}" text-anchor="middle" class="l">offered rate (req/s)</text><text x="12" y="{:.1}" class="l" transform="rotate(-90 12 {:.1})" text-anchor="middle">latency (log)</text>"#,
        left + width / 2.0,
        top + height + 32.0,
        top + height / 2.0,
        top + height / 2.0
    );
    for &obj in &objectives {
        let _ = write!(
            o,
            r##"<line x1="{left}" x2="{right}" y1="{yy:.1}" y2="{yy:.1}" stroke="#888" stroke-dasharray="1 3"/><text x="{tx}" y="{ty:.1}" class="v">objective {label}</text>"##,
            right = left + width,
            yy = y(obj),
            tx = left + width + 4.0,
            ty = y(obj) + 3.5,
            label = fmt_us(obj)
        );
    }
    for (k, (i, label, curve)) in curves.iter().enumerate() {
        let color = COLORS[*i % COLORS.len()];
        for (name, pick, stroke, dash) in PERCENTILES {
            let path: Vec<String> = curve
                .points
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.offered), y(pick(&p.corrected))))
                .collect();
            let _ = write!(
                o,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{stroke}" stroke-dasharray="{dash}"><title>{} {name}</title></polyline>"#,
                path.join(" "),
                esc(label)
            );
            for p in &curve.points {
                let v = pick(&p.corrected);
                let fill = if p.usable() { color } else { "white" };
                let _ = write!(
                    o,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{fill}" stroke="{color}"><title>{} {name} at {} req/s offered: {} ({}){}</title></circle>"#,
                    x(p.offered),
                    y(v),
                    esc(label),
                    human_rate(p.offered),
                    fmt_us(v),
                    human_rate(p.achieved) + " req/s achieved",
                    p.unusable_because().map_or(String::new(), |why| format!(
                        " — not the server's latency: {}",
                        esc(&why)
                    ))
                );
            }
        }
        let ly = top + 14.0 + k as f64 * 16.0;
        let _ = write!(
            o,
            r#"<line x1="{0}" x2="{1}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2.2"/><text x="{2}" y="{3}" class="l">{4}</text>"#,
            left + width + 60.0,
            left + width + 80.0,
            left + width + 84.0,
            ly + 4.0,
            esc(label)
        );
    }
    o.push_str("</svg>");
    o
}
