//! The machines side by side: the facts a result may depend on (CPU, microcode,
//! mitigations, kernel, clock, idle states, layout, broker, ...) and the calibrated unit
//! costs, each marked where it differs from the base's (a unit cost: where the two ranges
//! over rounds do not overlap).

use super::Run;
use crate::calibrate::UnitCost;
use crate::report::document::{Table, Text};
use crate::report::Summary;

/// The facts a run's result may depend on besides the code, by name, in display order:
/// the machine's (CPU, its microcode and mitigations, kernel, clock, idle states, ...)
/// and the run's (layout, broker, profile, A/A).
pub fn facts(s: &Summary) -> Vec<(&'static str, String)> {
    let e = &s.env;
    let m = &e.machine;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    vec![
        ("CPU", opt(&e.cpu_model)),
        ("CPU family/model/stepping", opt(&m.signature)),
        ("microcode", opt(&m.microcode)),
        ("hypervisor", opt(&m.hypervisor)),
        ("cores", e.cores.to_string()),
        (
            "memory",
            e.memory_kib
                .map_or("—".into(), |k| format!("{} GiB", k >> 20)),
        ),
        ("kernel", opt(&e.kernel)),
        ("mitigations", opt(&m.mitigations)),
        ("clocksource", opt(&m.clocksource)),
        ("cpuidle", opt(&m.cpuidle)),
        ("transparent huge pages", opt(&m.thp)),
        ("io_uring", e.io_uring.clone()),
        ("librdkafka", e.librdkafka.clone()),
        ("rustc", opt(&e.rustc)),
        ("layout", e.cpu_layout.clone()),
        (
            "topology",
            // The kind and the link settings asked for (the measured round trip varies
            // from run to run and is in each run's own line).
            e.topology.as_ref().map_or("local".into(), |t| {
                let set = [
                    ("delay", &t.delay),
                    ("rate", &t.rate),
                    ("kafka delay", &t.kafka_delay),
                ]
                .iter()
                .filter_map(|(k, v)| Some(format!(" {k} {}", v.as_ref()?)))
                .collect::<String>();
                format!("{}{set}", t.kind)
            }),
        ),
        (
            // Over ssh the servers ran on another machine: its facts, as its probe saw them.
            "servers' host",
            e.topology
                .as_ref()
                .and_then(|t| t.server_host.as_ref())
                .map_or("this machine".into(), |h| {
                    format!(
                        "{} ({} cores, kernel {}, io_uring {})",
                        h.cpu_model,
                        h.cpus.len(),
                        h.kernel,
                        h.io_uring
                    )
                }),
        ),
        ("Kafka", s.setup.kafka.clone()),
        ("profile", s.setup.profile.clone()),
        ("A/A run", s.setup.aa.to_string()),
    ]
}

/// The facts in which `run` differs from `base`, as `name: base's vs run's`: a comparison
/// across machines is marked, never silent.
pub fn differences(base: &Summary, run: &Summary) -> Vec<String> {
    let costs = unit_costs(base).into_iter().filter_map(|(name, b)| {
        let r = cost(run, &name)?;
        apart(b, r).then(|| format!("{name}: {:.0} vs {:.0} ns", b.ns, r.ns))
    });
    facts(base)
        .into_iter()
        .zip(facts(run))
        .filter(|((_, x), (_, y))| x != y)
        .map(|((name, x), (_, y))| format!("{name}: {x} vs {y}"))
        .chain(costs)
        .collect()
}

/// A run's calibrated unit costs, by name.
fn unit_costs(s: &Summary) -> Vec<(String, &UnitCost)> {
    (s.env.calibration.iter())
        .flat_map(|c| c.costs.iter().map(|u| (u.name.clone(), u)))
        .collect()
}

fn cost<'a>(s: &'a Summary, name: &str) -> Option<&'a UnitCost> {
    s.env.calibration.as_ref()?.get(name)
}

/// Two unit costs whose ranges over rounds do not overlap.
fn apart(a: &UnitCost, b: &UnitCost) -> bool {
    a.max_ns < b.min_ns || b.max_ns < a.min_ns
}

/// The machines table: a row per fact, then a row per unit cost; a column per run.
pub(super) fn table(runs: &[Run]) -> Table {
    let mut t = Table::new(
        std::iter::once(Text::plain("fact")).chain(runs.iter().map(|r| Text::code(&r.name))),
    );
    let all: Vec<_> = runs.iter().map(|r| facts(&r.summary)).collect();
    for (i, (name, base_value)) in all[0].iter().enumerate() {
        let cells = all.iter().map(|f| {
            let v = &f[i].1;
            if v == base_value {
                Text::plain(v)
            } else {
                Text::bold(v)
            }
        });
        t.row(std::iter::once(Text::plain(*name)).chain(cells));
    }
    let mut names: Vec<String> = Vec::new();
    for r in runs {
        for (n, _) in unit_costs(&r.summary) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let base = &runs[0].summary;
    for n in names {
        let cells = runs
            .iter()
            .map(|r| match (cost(&r.summary, &n), cost(base, &n)) {
                (None, _) => Text::plain("—"),
                (Some(u), Some(b)) if apart(u, b) => Text::bold(format!("{:.0} ns", u.ns)),
                (Some(u), _) => Text::plain(format!("{:.0} ns", u.ns)),
            });
        t.row(std::iter::once(Text::plain(format!("{n} (calibration)"))).chain(cells));
    }
    t
}
