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
    /// Wake-to-poll waits per bucket (`common::task_waits::BOUNDS_US`, then above them),
    /// not cumulative.
    #[serde(default)]
    pub waits: [f64; WAIT_BUCKETS],
    /// Gauges at the later reading: the longest poll since the server started (s), and
    /// the tasks woken and not yet polled.
    #[serde(default)]
    pub longest_poll_s: f64,
    #[serde(default)]
    pub waiting: f64,
}

/// Buckets of the wake-to-poll histogram.
pub const WAIT_BUCKETS: usize = common::task_waits::BOUNDS_US.len() + 1;

impl TaskCounts {
    /// From the Prometheus text of `/metrics`; `None` without task metrics (a server run
    /// with `--task-metrics false`, or an older one).
    pub fn parse(text: &str) -> Option<Self> {
        let get = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        // The histogram's cumulative buckets, in order, back to counts per bucket.
        let cumulative: Vec<f64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("task_wake_to_poll_seconds_bucket{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
            .collect();
        let mut waits = [0.0; WAIT_BUCKETS];
        if cumulative.len() == WAIT_BUCKETS {
            for i in 0..WAIT_BUCKETS {
                waits[i] = cumulative[i] - if i == 0 { 0.0 } else { cumulative[i - 1] };
            }
        }
        Some(Self {
            waits,
            longest_poll_s: get("task_longest_poll_seconds").unwrap_or(0.0),
            waiting: get("tasks_waiting_to_be_polled").unwrap_or(0.0),
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
            waits: std::array::from_fn(|i| self.waits[i] - before.waits[i]),
            longest_poll_s: self.longest_poll_s,
            waiting: self.waiting,
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
        // Without the histogram lines the buckets stay empty; with them, counts per bucket.
        assert_eq!(d.waits, [0.0; WAIT_BUCKETS]);
        let mut hist = at(10, 0.0);
        let mut total = 0;
        for (i, le) in common::task_waits::BOUNDS_US
            .iter()
            .map(|b| b.to_string())
            .chain(["+Inf".to_string()])
            .enumerate()
        {
            total += i as u32; // bucket i holds i waits
            hist += &format!("task_wake_to_poll_seconds_bucket{{le=\"{le}\"}} {total}\n");
        }
        hist += "task_longest_poll_seconds 0.25\n";
        let h = TaskCounts::parse(&hist).expect("counts");
        assert_eq!(h.waits[0], 0.0);
        assert_eq!(h.waits[3], 3.0);
        assert_eq!(h.waits[WAIT_BUCKETS - 1], (WAIT_BUCKETS - 1) as f64);
        assert_eq!(h.since(&a).longest_poll_s, 0.25);
        assert_eq!(TaskCounts::parse("kafka_records_delivered_total 5\n"), None);
        // A name that only starts like another is not it.
        assert_eq!(
            TaskCounts::parse(&at(1, 0.0).replace("task_polls_total", "task_polls_total_x")),
            None
        );
    }
}
