//! A run's results: one struct, three printers (text, JSON, CSV timeline).
//!
//! JSON schema `runtime-bench/loadgen/v1` (fields below; times in seconds, latencies in µs):
//! `schema`, `config` (the run's settings), `elapsed_s` (first measured send to last
//! measured answer), `completed` (measured answers), `ok` (2xx), `rate` (answers/s),
//! `statuses` (code -> count), `errors` (kind -> count), `latency_us` (count, mean, p50, p90,
//! p99, p999, max; open loop: from each request's intended send time), `service_us` (open
//! loop: the same from each request's actual send, uncorrected; else null), `schedule`
//! (open loop: {offered_rate, sent, behind, fell_behind, lag_us, client_lag_us}; else
//! null), `connects`, `source_addrs`, `timeline` ([{second, answered, errors}]), `stall`
//! (null, or {at_s, outstanding, waited_s, server}), `ids` (null, or {runs: {run: [{stream,
//! sent, ok: [[start, end], ...]}]}}: every request's id, warm-up included, and the
//! sequence ranges answered 2xx; see `ids.rs`).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::ids::{Ids, StreamRecorder};
use super::measurements::{ErrorKind, Stats, WarmUp};
use super::server_facts::ServerFacts;
use super::{Mode, RunConfig};

pub const SCHEMA: &str = "runtime-bench/loadgen/v1";

/// Progress stopped.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stall {
    /// Seconds after the start when the last answer arrived.
    pub at_s: f64,
    /// Requests sent and not answered.
    pub outstanding: u64,
    /// How long the watchdog waited before calling it a stall.
    pub waited_s: f64,
    pub server: Option<ServerFacts>,
}

/// Percentiles of a histogram of µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Latency {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// An open-loop run against its schedule.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    /// The rate asked for, requests/s.
    pub offered_rate: f64,
    /// Measured requests sent.
    pub sent: u64,
    /// How far behind its schedule the last measured request went out, as a fraction of
    /// the measured duration (0.02: the schedule's last slot was sent 2 % of the run late;
    /// the rate actually offered was about `offered_rate / (1 + behind)`).
    pub behind: f64,
    /// `behind` above 1 %: this run did not offer the rate it was asked to, so its
    /// latencies are not the server's at that rate.
    pub fell_behind: bool,
    /// Delay from each intended send to the send, µs.
    pub lag_us: Latency,
    /// The load generator's own part of it: from when the connection was free (its last
    /// answer in, or the slot, whichever was later) to the send. The rest was spent
    /// waiting for the server's previous answer on that connection.
    pub client_lag_us: Latency,
}

/// How much behind schedule a run may end before it is marked as having fallen behind.
pub const BEHIND_LIMIT: f64 = 0.01;

impl Schedule {
    /// Who held the schedule up, if it fell behind: the load generator when most of the
    /// delay came after connections were free to send, else the server.
    pub fn behind_cause(&self) -> Option<&'static str> {
        self.fell_behind
            .then_some(if self.client_lag_us.mean > 0.5 * self.lag_us.mean {
                "load generator"
            } else {
                "server"
            })
    }
}

/// The merged histograms behind a report's percentiles (not serialised: written as
/// `.hgrm` files by whoever needs them).
#[derive(Debug, Clone)]
pub struct Histograms {
    /// From the intended send (open loop) or the send (closed loop).
    pub latency: Histogram<u64>,
    /// From the actual send.
    pub service: Histogram<u64>,
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Second {
    pub second: u64,
    pub answered: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReportConfig {
    pub target: String,
    pub mode: String,
    pub connections: usize,
    pub threads: usize,
    pub requests: Option<u64>,
    pub duration_s: Option<f64>,
    pub warmup_s: f64,
    pub method: String,
    pub path: String,
    pub body_size: usize,
    pub rate: Option<f64>,
    pub depth: usize,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LoadReport {
    pub schema: String,
    pub config: ReportConfig,
    pub elapsed_s: f64,
    pub completed: u64,
    pub ok: u64,
    pub rate: f64,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
    pub latency_us: Latency,
    /// Open loop: uncorrected service time (from each request's actual send).
    #[serde(default)]
    pub service_us: Option<Latency>,
    /// Open loop: how the run kept to its schedule.
    #[serde(default)]
    pub schedule: Option<Schedule>,
    #[serde(skip)]
    pub histograms: Option<Box<Histograms>>,
    pub connects: u64,
    /// Source addresses connection-per-request rotated over (1 = no spreading).
    pub source_addrs: u8,
    pub timeline: Vec<Second>,
    pub stall: Option<Stall>,
    /// Every request's id and which were answered 2xx, warm-up included (`None`: the
    /// requests carried no ids). With the topic, enough to verify the run afterwards.
    #[serde(default)]
    pub ids: Option<Ids>,
    /// What the warm-up's requests got (not in any figure above; a delivery check counts
    /// them).
    #[serde(default)]
    pub warmup: WarmUp,
}

fn kind_name(k: ErrorKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{k:?}"))
}

impl LoadReport {
    pub fn build(cfg: &RunConfig, s: &Stats, elapsed: Duration, stall: Option<Stall>) -> Self {
        let schedule = cfg.rate.map(|offered_rate| {
            let span = cfg.duration.unwrap_or(s.last_slot).as_secs_f64().max(1e-9);
            let behind = s.last_send.saturating_sub(s.last_slot).as_secs_f64() / span;
            Schedule {
                offered_rate,
                sent: s.lag.len(),
                behind,
                fell_behind: behind > BEHIND_LIMIT,
                lag_us: Latency::of(&s.lag),
                client_lag_us: Latency::of(&s.client_lag),
            }
        });
        let completed = s.responses();
        let spread = cfg.mode == Mode::ConnPerRequest
            && matches!(cfg.addr.ip(), std::net::IpAddr::V4(ip) if ip.is_loopback());
        Self {
            schema: SCHEMA.into(),
            config: ReportConfig {
                target: cfg.addr.to_string(),
                mode: cfg.mode.label(),
                connections: cfg.connections,
                threads: cfg.threads,
                requests: cfg.requests,
                duration_s: cfg.duration.map(|d| d.as_secs_f64()),
                warmup_s: cfg.warmup.as_secs_f64(),
                method: cfg.workload.method.clone(),
                path: cfg.workload.path.clone(),
                body_size: cfg.workload.body.len(),
                rate: cfg.rate,
                depth: cfg.mode.depth(),
            },
            elapsed_s: elapsed.as_secs_f64(),
            completed,
            ok: s.ok(),
            rate: if elapsed.is_zero() {
                0.0
            } else {
                completed as f64 / elapsed.as_secs_f64()
            },
            statuses: s.statuses.clone(),
            errors: s.errors.iter().map(|(k, v)| (kind_name(*k), *v)).collect(),
            latency_us: Latency::of(&s.latency),
            service_us: cfg.rate.map(|_| Latency::of(&s.service)),
            schedule,
            histograms: Some(Box::new(Histograms {
                latency: s.latency.clone(),
                service: s.service.clone(),
            })),
            connects: s.connects,
            source_addrs: if spread { cfg.source_addrs.max(1) } else { 1 },
            timeline: s
                .timeline
                .iter()
                .enumerate()
                .map(|(i, (a, e))| Second {
                    second: i as u64,
                    answered: *a,
                    errors: *e,
                })
                .collect(),
            stall,
            ids: cfg
                .carries_ids()
                .then(|| Ids::of(s.ids.iter().map(StreamRecorder::finish).collect())),
            warmup: s.warmup,
        }
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Answers that were not 2xx.
    pub fn non_2xx(&self) -> u64 {
        self.completed - self.ok
    }

    pub fn stall_summary(&self) -> String {
        match &self.stall {
            None => "no stall".into(),
            Some(st) => {
                let mut s = format!(
                    "STALL: no answer for {:.1} s with {} requests outstanding (last progress at {:.1} s; {} answered before)",
                    st.waited_s, st.outstanding, st.at_s, self.completed
                );
                if let Some(f) = &st.server {
                    s.push_str(&format!(
                        "; server pid {}: {} open fds (limit {}), sockets on its port: {:?}",
                        f.pid,
                        f.open_fds.map_or("?".into(), |n| n.to_string()),
                        f.fd_limit.map_or("?".into(), |n| n.to_string()),
                        f.socket_states
                    ));
                    if !f.threads.is_empty() {
                        let threads: Vec<String> = f.threads.iter().map(|t| t.short()).collect();
                        s.push_str(&format!(
                            "; its threads (name tid state wchan): {}",
                            threads.join(", ")
                        ));
                    }
                }
                s
            }
        }
    }

    /// Human-readable summary, in the spirit of wrk's.
    pub fn write_text(&self, w: &mut impl Write) -> std::io::Result<()> {
        let c = &self.config;
        writeln!(
            w,
            "target {}  mode {}  {} connections on {} threads  body {} B",
            c.target, c.mode, c.connections, c.threads, c.body_size
        )?;
        if let Some(r) = c.rate {
            writeln!(
                w,
                "open loop at {r} req/s (latency from each request's intended send time)"
            )?;
        }
        if self.source_addrs > 1 {
            writeln!(
                w,
                "source addresses: {} (127.0.0.1..=127.0.0.{})",
                self.source_addrs, self.source_addrs
            )?;
        }
        writeln!(
            w,
            "{} answers in {:.3} s = {:.0} req/s ({} 2xx)",
            self.completed, self.elapsed_s, self.rate, self.ok
        )?;
        let line = |w: &mut dyn Write, what: &str, l: &Latency| {
            writeln!(
                w,
                "{what} µs: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {:.0}",
                l.p50, l.p90, l.p99, l.p999, l.max, l.mean
            )
        };
        match &self.service_us {
            None => line(w, "latency", &self.latency_us)?,
            Some(service) => {
                line(
                    w,
                    "latency (corrected, from intended send)",
                    &self.latency_us,
                )?;
                line(w, "service time (uncorrected, from send)", service)?;
            }
        }
        if let Some(sc) = &self.schedule {
            writeln!(
                w,
                "schedule: {} sent; last slot sent {:.2} % of the run late{}; lag from slot p99 {} µs, the load generator's own p99 {} µs",
                sc.sent,
                sc.behind * 100.0,
                sc.behind_cause()
                    .map_or(String::new(), |c| format!(" — FELL BEHIND (held up by the {c})")),
                sc.lag_us.p99,
                sc.client_lag_us.p99
            )?;
        }
        writeln!(w, "statuses: {}", fmt_map(&self.statuses))?;
        writeln!(
            w,
            "errors: {}",
            if self.errors.is_empty() {
                "none".into()
            } else {
                fmt_map(&self.errors)
            }
        )?;
        writeln!(w, "connections opened: {}", self.connects)?;
        let wu = &self.warmup;
        if wu.answered + wu.errors > 0 {
            writeln!(
                w,
                "warm-up (not measured): {} answers ({} 2xx), {} errors",
                wu.answered, wu.ok, wu.errors
            )?;
        }
        match &self.ids {
            Some(ids) => writeln!(
                w,
                "ids: {} sent, {} answered 2xx (warm-up included; --json lists them)",
                ids.sent(),
                ids.answered_2xx()
            )?,
            None => writeln!(w, "ids: none (--no-ids, or bodies under 32 bytes)")?,
        }
        if self.stall.is_some() {
            writeln!(w, "{}", self.stall_summary())?;
        }
        Ok(())
    }

    pub fn write_json(&self, w: &mut impl Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, self).map_err(std::io::Error::other)?;
        writeln!(w)
    }

    /// The per-second timeline: `second,answered,errors`.
    pub fn write_csv(&self, w: &mut impl Write) -> std::io::Result<()> {
        writeln!(w, "second,answered,errors")?;
        for s in &self.timeline {
            writeln!(w, "{},{},{}", s.second, s.answered, s.errors)?;
        }
        Ok(())
    }
}

fn fmt_map<K: std::fmt::Display, V: std::fmt::Display>(m: &BTreeMap<K, V>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
