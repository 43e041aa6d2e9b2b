//! A server's task poll and scheduling counts (its `/metrics`, from tokio-metrics'
//! TaskMonitor over every connection task), read before and after a turn: what the turn's
//! requests cost in polls, and how long tasks waited between being woken and being polled.

/// Cumulative counts as `/metrics` exposes them, or their change over a turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskCounts {
    pub polls: f64,
    pub poll_s: f64,
    pub slow_polls: f64,
    pub slow_poll_s: f64,
    /// Wake-ups followed by a poll, and the total wait between the two.
    pub schedules: f64,
    pub scheduled_s: f64,
    /// Waits over the slow-poll threshold.
    pub long_delays: f64,
}

impl TaskCounts {
    /// From the Prometheus text of `/metrics`; `None` without task metrics (a server run
    /// with `--task-metrics false`, or an older one).
    pub fn parse(text: &str) -> Option<Self> {
        let get = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        Some(Self {
            polls: get("task_polls_total")?,
            poll_s: get("task_poll_seconds_total")?,
            slow_polls: get("task_slow_polls_total")?,
            slow_poll_s: get("task_slow_poll_seconds_total")?,
            schedules: get("task_schedules_total")?,
            scheduled_s: get("task_scheduled_seconds_total")?,
            long_delays: get("task_long_delays_total")?,
        })
    }

    /// What happened between `before` and `self`.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            polls: self.polls - before.polls,
            poll_s: self.poll_s - before.poll_s,
            slow_polls: self.slow_polls - before.slow_polls,
            slow_poll_s: self.slow_poll_s - before.slow_poll_s,
            schedules: self.schedules - before.schedules,
            scheduled_s: self.scheduled_s - before.scheduled_s,
            long_delays: self.long_delays - before.long_delays,
        }
    }

    /// Mean poll, µs.
    pub fn mean_poll_us(&self) -> Option<f64> {
        (self.polls > 0.0).then(|| self.poll_s / self.polls * 1e6)
    }

    /// Mean wait between a wake-up and its poll, µs.
    pub fn mean_scheduled_us(&self) -> Option<f64> {
        (self.schedules > 0.0).then(|| self.scheduled_s / self.schedules * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_from_metrics_and_subtract() {
        let at = |polls: u32, sched_s: f64| {
            format!(
                "connections_open 3\ntask_polls_total {polls}\ntask_poll_seconds_total {}\ntask_slow_polls_total 2\ntask_slow_poll_seconds_total 0.001\ntask_schedules_total {polls}\ntask_scheduled_seconds_total {sched_s}\ntask_long_delays_total 1\n",
                f64::from(polls) * 2e-6
            )
        };
        let a = TaskCounts::parse(&at(1000, 0.01)).expect("counts");
        let b = TaskCounts::parse(&at(3000, 0.05)).expect("counts");
        let d = b.since(&a);
        assert_eq!(d.polls, 2000.0);
        assert!((d.mean_poll_us().expect("polls") - 2.0).abs() < 1e-9);
        assert!((d.mean_scheduled_us().expect("schedules") - 20.0).abs() < 1e-9);
        assert_eq!(d.slow_polls, 0.0);
        assert_eq!(TaskCounts::parse("kafka_records_delivered_total 5\n"), None);
        // A name that only starts like another is not it.
        assert_eq!(
            TaskCounts::parse(&at(1, 0.0).replace("task_polls_total", "task_polls_total_x")),
            None
        );
    }
}
