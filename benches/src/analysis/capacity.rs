//! Capacity at a latency objective: from a runtime's latency curve (open-loop points at
//! rising offered rates), the highest offered rate whose p99 stays under the objective.
//!
//! Walks the points by offered rate; the first point that misses the objective (p99 above
//! it, or a point that cannot be used: the load generator fell behind its schedule, or
//! requests failed) ends the walk, and later points are not read (a curve that dips back
//! under the objective past its knee is noise, not capacity). Between the last point that
//! met the objective and the first that missed it, the rate is interpolated linearly in
//! log latency (latency grows roughly exponentially towards the knee), and labelled so.

/// One measured point, as the capacity needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Offered rate, requests/s.
    pub offered: f64,
    /// p99 latency from the intended send time, µs.
    pub p99_us: u64,
    /// The point measured the server at its offered rate (kept its schedule, no errors).
    pub usable: bool,
    /// Not usable because of the client (the load side at its limit, the load generator's
    /// own delay): says nothing about the server.
    pub client_limited: bool,
}

/// Where the objective was crossed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Capacity {
    /// Met at every measured point: at least the highest rate measured.
    AtLeast { rate: f64 },
    /// Missed at the lowest rate measured: below it.
    Below { rate: f64 },
    /// Crossed between two measured points: `rate` interpolated between them.
    Interpolated { rate: f64, met: f64, missed: f64 },
    /// Met at `met`; the next point could not be used (fell behind or failed), so the
    /// crossing lies somewhere in between.
    Between { met: f64, missed: f64 },
    /// The lowest point, at `rate`, could not be used (the client was a limit there too):
    /// nothing is known about this objective.
    Unmeasured { rate: f64 },
}

impl Capacity {
    /// The rate to compare runtimes by: the interpolated one, or the bound that is known
    /// (NaN when unmeasured).
    pub fn rate(&self) -> f64 {
        match *self {
            Self::AtLeast { rate } | Self::Below { rate } | Self::Interpolated { rate, .. } => rate,
            Self::Between { met, .. } => met,
            Self::Unmeasured { .. } => f64::NAN,
        }
    }

    /// `12.3k (interpolated)`, `≥ 20.0k (met at every point)`, ...
    pub fn text(&self, fmt: impl Fn(f64) -> String) -> String {
        match *self {
            Self::AtLeast { rate } => format!("≥ {} (met at every point)", fmt(rate)),
            Self::Below { rate } => format!("< {} (missed at the lowest point)", fmt(rate)),
            Self::Interpolated { rate, met, missed } => format!(
                "{} (interpolated between {} and {})",
                fmt(rate),
                fmt(met),
                fmt(missed)
            ),
            Self::Between { met, missed } => format!(
                "{}–{} (the point above could not be used)",
                fmt(met),
                fmt(missed)
            ),
            Self::Unmeasured { rate } => format!(
                "not measured (the lowest point, {}, could not be used)",
                fmt(rate)
            ),
        }
    }
}

/// The capacity at a p99 objective of `objective_us`; `None` without points.
pub fn capacity_at(points: &[Point], objective_us: u64) -> Option<Capacity> {
    let mut sorted: Vec<Point> = points
        .iter()
        .copied()
        .filter(|p| p.offered.is_finite() && p.offered > 0.0)
        .collect();
    sorted.sort_by(|a, b| a.offered.total_cmp(&b.offered));
    let meets = |p: &Point| p.usable && p.p99_us <= objective_us;
    let first_miss = sorted.iter().position(|p| !meets(p));
    Some(match first_miss {
        None => Capacity::AtLeast {
            rate: sorted.last()?.offered,
        },
        Some(0) if !sorted[0].usable && sorted[0].client_limited => Capacity::Unmeasured {
            rate: sorted[0].offered,
        },
        Some(0) => Capacity::Below {
            rate: sorted[0].offered,
        },
        Some(i) => {
            let (lo, hi) = (sorted[i - 1], sorted[i]);
            if !hi.usable {
                Capacity::Between {
                    met: lo.offered,
                    missed: hi.offered,
                }
            } else {
                let ln = |us: u64| (us.max(1) as f64).ln();
                let (l1, l2, obj) = (ln(lo.p99_us), ln(hi.p99_us), ln(objective_us));
                let t = if l2 > l1 {
                    ((obj - l1) / (l2 - l1)).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                Capacity::Interpolated {
                    rate: lo.offered + t * (hi.offered - lo.offered),
                    met: lo.offered,
                    missed: hi.offered,
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(offered: f64, p99_us: u64) -> Point {
        Point {
            offered,
            p99_us,
            usable: true,
            client_limited: false,
        }
    }

    #[test]
    fn met_at_every_point_is_at_least_the_highest() {
        let pts = [p(1000.0, 200), p(3000.0, 400), p(2000.0, 300)];
        assert_eq!(
            capacity_at(&pts, 1000),
            Some(Capacity::AtLeast { rate: 3000.0 })
        );
    }

    #[test]
    fn missed_at_the_lowest_point_is_below_it() {
        let pts = [p(2000.0, 5000), p(1000.0, 1500)];
        assert_eq!(
            capacity_at(&pts, 1000),
            Some(Capacity::Below { rate: 1000.0 })
        );
        assert_eq!(capacity_at(&[], 1000), None);
        // A lowest point unusable because of the client is not a miss: nothing is known.
        let unusable = Point {
            usable: false,
            client_limited: true,
            ..p(1000.0, 200)
        };
        assert_eq!(
            capacity_at(&[unusable, p(2000.0, 300)], 1000),
            Some(Capacity::Unmeasured { rate: 1000.0 })
        );
    }

    #[test]
    fn crossed_between_two_points_is_interpolated_in_log_latency() {
        // 1 ms objective; p99 500 µs at 4k, 2000 µs at 6k: ln(1000) is halfway between
        // ln(500) and ln(2000), so 5k.
        let pts = [
            p(2000.0, 300),
            p(4000.0, 500),
            p(6000.0, 2000),
            p(8000.0, 900),
        ];
        let c = capacity_at(&pts, 1000).expect("points");
        let Capacity::Interpolated { rate, met, missed } = c else {
            panic!("{c:?}")
        };
        assert!((rate - 5000.0).abs() < 1e-6, "{rate}");
        assert_eq!((met, missed), (4000.0, 6000.0));
        // The 8k point dipping under the objective past the knee is not read.
        assert_eq!(c.rate(), rate);
        // Exactly on the objective counts as met.
        assert_eq!(
            capacity_at(&[p(1000.0, 1000)], 1000),
            Some(Capacity::AtLeast { rate: 1000.0 })
        );
    }

    #[test]
    fn an_unusable_point_is_a_miss_that_cannot_be_interpolated() {
        let behind = Point {
            usable: false,
            ..p(6000.0, 300)
        };
        let c = capacity_at(&[p(4000.0, 500), behind], 1000).expect("points");
        assert_eq!(
            c,
            Capacity::Between {
                met: 4000.0,
                missed: 6000.0
            }
        );
        assert_eq!(c.rate(), 4000.0);
        assert!(c.text(|r| format!("{r}")).contains("could not be used"));
        // A fell-behind point first: below it, even with a low p99.
        assert_eq!(
            capacity_at(&[behind], 1000),
            Some(Capacity::Below { rate: 6000.0 })
        );
    }
}
