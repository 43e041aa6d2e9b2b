//! Formatting shared by every part of the report (tables, charts, both formats), so they
//! cannot drift apart: rates, durations, HTML escaping, the runtimes' order and colours.

use super::Summary;

/// `12345.6` -> `12.3k`.
pub fn human_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// `1 ms`, `500 µs`, `2.5 ms`.
pub fn fmt_us(us: u64) -> String {
    if us >= 1000 {
        let ms = us as f64 / 1000.0;
        if ms.fract() == 0.0 {
            format!("{ms:.0} ms")
        } else {
            format!("{ms} ms")
        }
    } else {
        format!("{us} µs")
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Runtime colours, indexed by [`runtime_labels`] order (the page's key), for every chart.
pub const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
];

/// Every runtime label of a run, in first-seen order: the page's key and colour index.
pub fn runtime_labels(s: &Summary) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for w in &s.workloads {
        for r in &w.runtimes {
            if !labels.contains(&r.label) {
                labels.push(r.label.clone());
            }
        }
    }
    labels
}
