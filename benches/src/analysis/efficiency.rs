//! The efficiency verdict's wording.
//!
//! Both runtimes are paced (open loop) at one offered rate, a share of the lower runtime's
//! capacity, so the load side has headroom and the verdict does not depend on the
//! client's limits. The figure is the server's cores' busy time per request (whole cores:
//! [`crate::cores`]), the figure operators size machines by. It is decided by the same
//! blocks, A/A control and rules as throughput ([`super::verdict`]), on requests per busy
//! core-second (higher is better, like a rate); this module words the result as CPU per
//! request: r times the requests per core-second is 1 − 1/r less CPU per request.

use super::verdict::Verdict;

/// `pct` % more requests per core-second, as % less CPU per request.
fn less_cpu(pct: f64) -> f64 {
    (1.0 - 1.0 / (1.0 + pct / 100.0)) * 100.0
}

impl Verdict {
    /// One line for an efficiency verdict, e.g. `tokio-uring uses 10.7 % less CPU per
    /// request [7.0, 13.8]`.
    pub fn efficiency_text(&self) -> String {
        match self {
            Self::UringFaster {
                pct,
                lo_pct,
                hi_pct,
            } => format!(
                "tokio-uring uses {:.1} % less CPU per request [{:.1}, {:.1}]",
                less_cpu(*pct),
                less_cpu(*lo_pct),
                less_cpu(*hi_pct)
            ),
            Self::TokioFaster {
                pct,
                lo_pct,
                hi_pct,
            } => format!(
                "tokio uses {:.1} % less CPU per request [{:.1}, {:.1}]",
                less_cpu(*pct),
                less_cpu(*lo_pct),
                less_cpu(*hi_pct)
            ),
            Self::Equivalent { band_pct } => {
                format!("equal CPU per request within ±{band_pct:.0} %")
            }
            Self::Undecided { reason, .. } => format!("undecided: {reason}"),
        }
    }

    /// A few words for a chart: `tokio-uring −10.7 % CPU`, `tokio −4.0 % CPU`.
    pub fn efficiency_short(&self) -> String {
        match self {
            Self::UringFaster { pct, .. } => format!("tokio-uring −{:.1} % CPU", less_cpu(*pct)),
            Self::TokioFaster { pct, .. } => format!("tokio −{:.1} % CPU", less_cpu(*pct)),
            other => other.short(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_requests_per_core_second_as_less_cpu_per_request() {
        // 25 % more requests per core-second is 20 % less CPU per request.
        let v = Verdict::UringFaster {
            pct: 25.0,
            lo_pct: 11.1111111,
            hi_pct: 42.8571429,
        };
        assert_eq!(
            v.efficiency_text(),
            "tokio-uring uses 20.0 % less CPU per request [10.0, 30.0]"
        );
        assert_eq!(v.efficiency_short(), "tokio-uring −20.0 % CPU");
        let t = Verdict::TokioFaster {
            pct: 100.0,
            lo_pct: 100.0,
            hi_pct: 100.0,
        };
        assert!(t
            .efficiency_text()
            .starts_with("tokio uses 50.0 % less CPU"));
        assert_eq!(
            Verdict::Equivalent { band_pct: 3.0 }.efficiency_text(),
            "equal CPU per request within ±3 %"
        );
    }
}
