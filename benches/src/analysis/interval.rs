//! An interval in req/s (criterion's estimates) and the conservative ratio of two.

/// A 95% interval in requests per second.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    pub lower: f64,
    pub estimate: f64,
    pub upper: f64,
}

impl Interval {
    /// Half-width relative to the estimate.
    pub fn rel_half_width(&self) -> f64 {
        (self.upper - self.lower) / 2.0 / self.estimate
    }

    /// `self / other` with the widest bounds the two intervals allow.
    pub fn ratio(&self, other: &Interval) -> Interval {
        Interval {
            lower: self.lower / other.upper,
            estimate: self.estimate / other.estimate,
            upper: self.upper / other.lower,
        }
    }

    /// `1.234 [1.100, 1.400]`: a ratio with its bounds.
    pub fn fmt_ratio(&self) -> String {
        format!(
            "{:.3} [{:.3}, {:.3}]",
            self.estimate, self.lower, self.upper
        )
    }

    pub fn overlaps(&self, other: &Interval) -> bool {
        self.lower <= other.upper && other.lower <= self.upper
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_bounds_are_conservative() {
        let a = Interval {
            lower: 90.0,
            estimate: 100.0,
            upper: 110.0,
        };
        let b = Interval {
            lower: 45.0,
            estimate: 50.0,
            upper: 55.0,
        };
        let r = a.ratio(&b);
        assert!((r.estimate - 2.0).abs() < 1e-9);
        assert!((r.lower - 90.0 / 55.0).abs() < 1e-9);
        assert!((r.upper - 110.0 / 45.0).abs() < 1e-9);
        assert!(!a.overlaps(&b));
        assert!((a.rel_half_width() - 0.1).abs() < 1e-9);
    }
}
