//! The comparison page (`report --compare ... --out FILE`): one self-contained HTML file —
//! the overview (what differs from the base, the machines side by side), a forest chart per
//! workload with one row per run, then the tables.

use std::fmt::Write;

use super::{assessment, details, overview, workload_names, Run, Which};
use crate::report::forest;
use crate::report::format::{esc, PAGE_STYLE};

/// The page.
pub fn html(runs: &[Run]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>runtime-bench: runs compared</title><style>{PAGE_STYLE}
td b{{background:#fff3c4}}</style></head><body><h1>runtime-bench: runs compared</h1>"#
    );
    o.push_str(&overview(runs).html());
    let band = runs
        .first()
        .and_then(|r| r.summary.setup.rules)
        .unwrap_or_default()
        .band;
    let names = workload_names(runs);
    for (which, title, _) in Which::BOTH {
        let charts: Vec<(String, String)> = names
            .iter()
            .filter_map(|n| {
                let rows: Vec<(&str, _)> = runs
                    .iter()
                    .filter_map(|r| Some((r.name.as_str(), assessment(&r.summary, n, which)?)))
                    .collect();
                (!rows.is_empty()).then(|| (n.clone(), forest::chart(&rows, band)))
            })
            .collect();
        if charts.is_empty() {
            continue;
        }
        let _ = write!(o, "<h2>{}: one row per run</h2>", esc(title));
        for (n, chart) in charts {
            let _ = write!(o, "<h3>{}</h3>{chart}", esc(&n));
        }
        o.push_str(r#"<p class="key">dot: estimate over blocks, line: its interval; shaded: that run's A/A noise floor; dashed: the equivalence band; right of 1: tokio-uring served more (efficiency: more requests per core-second)</p>"#);
    }
    o.push_str("<h2>Tables</h2>");
    o.push_str(&details(runs).html());
    o.push_str("</body></html>\n");
    o
}
