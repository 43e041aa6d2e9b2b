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

/// A chart row's name, right-aligned left of the plot at `left`, centred at `y` (SVG).
pub fn row_label(o: &mut String, left: f64, y: f64, name: &str) {
    use std::fmt::Write;
    let _ = write!(
        o,
        r#"<text x="{}" y="{}" text-anchor="end" class="l">{}</text>"#,
        left - 8.0,
        y + 4.0,
        esc(name)
    );
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

/// The CSS of every page (report.html, the comparison page): inline, no network.
pub const PAGE_STYLE: &str = r#"body{font:14px/1.45 system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}td:first-child,th:first-child{text-align:left}
.bad{background:#fdd;padding:.5em 1em;border:1px solid #c00}.ok{background:#dfd;padding:.5em 1em;border:1px solid #080}
svg .one{stroke:#000;stroke-width:1}svg .band{stroke:#666;stroke-dasharray:4 3}svg .l{font-size:11px}svg .v{font-size:10px;fill:#444}svg .w{stroke:#000;stroke-width:1}svg .g{stroke:#ddd}
.key span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}code{font-size:12px}"#;
