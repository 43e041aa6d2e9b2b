//! A ratio from interleaved rounds: one ratio per round (two measurements taken back to
//! back), their median, and a distribution-free interval for the median.

/// tokio-uring / tokio from interleaved rounds: one ratio per round (each runtime's rate
/// in that round, measured back to back), their median, and a distribution-free interval
/// for the median from the ratios' order statistics (a sign-test interval: it assumes only
/// that rounds are independent, not that the noise is normal).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Paired {
    /// Per round, in round order.
    pub ratios: Vec<f64>,
    pub median: f64,
    pub lower: f64,
    pub upper: f64,
    /// The interval's confidence: at least 0.95 from 6 rounds up; fewer rounds cannot reach
    /// 0.95 and get the widest interval (min to max) with its lower confidence.
    pub confidence: f64,
}

impl Paired {
    /// `a[i] / b[i]` for each round both have; `None` without any.
    pub fn from_rounds(a: &[f64], b: &[f64]) -> Option<Self> {
        let ratios: Vec<f64> = a
            .iter()
            .zip(b)
            .filter(|(x, y)| **y > 0.0 && x.is_finite())
            .map(|(x, y)| x / y)
            .collect();
        let n = ratios.len();
        if n == 0 {
            return None;
        }
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let median = median(&sorted)?;
        // [x(k), x(n+1-k)] covers the median with probability 1 - 2 P(Bin(n, 1/2) < k):
        // the largest k that keeps that at 0.95 or more, else k = 1.
        let tail =
            |k: usize| -> f64 { (0..k).map(|i| binomial(n, i)).sum::<f64>() / 2f64.powi(n as i32) };
        let mut k = 1;
        while k < n.div_ceil(2) && 1.0 - 2.0 * tail(k + 1) >= 0.95 {
            k += 1;
        }
        Some(Self {
            median,
            lower: sorted[k - 1],
            upper: sorted[n - k],
            confidence: 1.0 - 2.0 * tail(k),
            ratios,
        })
    }

    /// `1.234 [1.100, 1.400]`, with the confidence when it is below 95%.
    pub fn fmt_ratio(&self) -> String {
        let conf = if self.confidence < 0.95 {
            format!(" ({:.0}% interval)", self.confidence * 100.0)
        } else {
            String::new()
        };
        format!(
            "{:.3} [{:.3}, {:.3}]{conf}",
            self.median, self.lower, self.upper
        )
    }
}

/// The median of the finite values (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_rounds_give_a_median_and_a_sign_test_interval() {
        // Ten rounds, both runtimes drifting together (the machine slows down by half):
        // every round's ratio is about 1.2 although the absolute rates fall.
        let tokio: Vec<f64> = (0..10).map(|i| 100.0 - 5.0 * f64::from(i)).collect();
        let noise = [1.0, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97, 1.0, 1.04, 0.96];
        let uring: Vec<f64> = tokio.iter().zip(noise).map(|(t, e)| t * 1.2 * e).collect();
        let p = Paired::from_rounds(&uring, &tokio).expect("paired");
        assert_eq!(p.ratios.len(), 10);
        assert!((p.median - 1.2).abs() < 1e-9, "{p:?}");
        // n = 10: the interval is [x(2), x(9)], confidence 1 - 2 * 11/1024.
        assert!((p.lower - 1.2 * 0.97).abs() < 1e-9, "{p:?}");
        assert!((p.upper - 1.2 * 1.03).abs() < 1e-9, "{p:?}");
        assert!((p.confidence - (1.0 - 22.0 / 1024.0)).abs() < 1e-12);
        assert_eq!(p.fmt_ratio(), "1.200 [1.164, 1.236]");

        // Four rounds cannot give 95%: min..max, at 1 - 2/16 = 87.5%, and it says so.
        let p = Paired::from_rounds(&[2.0, 3.0, 4.0, 5.0], &[2.0, 2.0, 2.0, 2.0]).expect("p");
        assert_eq!((p.lower, p.median, p.upper), (1.0, 1.75, 2.5));
        assert!((p.confidence - 0.875).abs() < 1e-12);
        assert!(
            p.fmt_ratio().ends_with("(88% interval)"),
            "{}",
            p.fmt_ratio()
        );
        assert!(Paired::from_rounds(&[], &[]).is_none());
        // Six rounds is the least that reaches 95%: still min..max (1 - 2/64).
        let p = Paired::from_rounds(&[1.0; 6], &[1.0; 6]).expect("p");
        assert!(p.confidence >= 0.95);
    }
}
