//! Who was the limit in a turn, named honestly.
//!
//! On a box where the server has its cores and the load generator and the embedded broker
//! have theirs, a closed loop at saturation often keeps *both* sides busy. A throughput
//! ratio then measures the load side as much as the server (a runtime that costs the
//! client more per request is served less), so it is a verdict only when the server alone
//! was the limit. Each side's figure is the busy share of its whole cores (every task,
//! softirq and irq on them: [`crate::cores`]), or its processes' CPU share where the
//! cores are not its own (the shared layout).

/// A side at or above this share of its cores is at its limit.
pub const AT_LIMIT: f64 = 0.9;

/// Who limited one turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Limit {
    /// The server's cores were at their limit, the load side's were not.
    Server,
    /// The load side's cores were at their limit, the server's were not.
    Load,
    /// Both sides at their limit: the rate measures both.
    Co,
    /// Neither side near its limit: latency (the broker's acknowledgement, the number of
    /// connections) set the rate.
    Neither,
}

impl Limit {
    pub fn classify(server_busy: f64, load_busy: f64) -> Self {
        match (server_busy >= AT_LIMIT, load_busy >= AT_LIMIT) {
            (true, false) => Self::Server,
            (false, true) => Self::Load,
            (true, true) => Self::Co,
            (false, false) => Self::Neither,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Server => "server-limited",
            Self::Load => "load-limited",
            Self::Co => "co-limited",
            Self::Neither => "neither-limited",
        }
    }

    /// What the label means, for a reader.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Server => "the server's cores were at their limit and the load side's were not",
            Self::Load => "the load generator's cores were the limit, not the server's",
            Self::Co => "the server's and the load side's cores were both at 90 % or more: the rate measures both",
            Self::Neither => "neither side was near its limit: latency, not CPU, set the rate",
        }
    }
}

/// How many turns each limit named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub server: usize,
    pub load: usize,
    pub co: usize,
    pub neither: usize,
}

impl Limits {
    pub fn count(limits: impl IntoIterator<Item = Limit>) -> Self {
        let mut n = Self::default();
        for l in limits {
            match l {
                Limit::Server => n.server += 1,
                Limit::Load => n.load += 1,
                Limit::Co => n.co += 1,
                Limit::Neither => n.neither += 1,
            }
        }
        n
    }

    /// The turns `limit` named.
    pub fn of(&self, limit: Limit) -> usize {
        match limit {
            Limit::Server => self.server,
            Limit::Load => self.load,
            Limit::Co => self.co,
            Limit::Neither => self.neither,
        }
    }

    pub fn turns(&self) -> usize {
        self.server + self.load + self.co + self.neither
    }

    /// The limit most turns had (ties: the order server, co, load, neither).
    pub fn dominant(&self) -> Option<Limit> {
        if self.turns() == 0 {
            return None;
        }
        [Limit::Server, Limit::Co, Limit::Load, Limit::Neither]
            .into_iter()
            .rev()
            .max_by_key(|&l| self.of(l))
    }

    /// Why a throughput verdict is withheld: fewer than half the turns were server-limited.
    /// `None` when the server was the limit in most turns (or nothing was classified: no
    /// CPU figures, as in files written before turns were classified).
    pub fn withholds_throughput(&self) -> Option<String> {
        let n = self.turns();
        if n == 0 || self.server * 2 > n {
            return None;
        }
        let l = self.dominant()?;
        let k = self.of(l);
        Some(format!(
            "{} in {k} of {n} turns ({}); server-limited in {}: a throughput ratio would not be the servers' alone, see the efficiency verdict",
            l.label(),
            l.meaning(),
            self.server
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_side_at_ninety_percent() {
        assert_eq!(Limit::classify(0.97, 0.60), Limit::Server);
        assert_eq!(Limit::classify(0.60, 0.97), Limit::Load);
        assert_eq!(Limit::classify(0.93, 0.97), Limit::Co);
        assert_eq!(Limit::classify(0.12, 0.09), Limit::Neither);
        assert_eq!(Limit::classify(0.90, 0.8999), Limit::Server);
    }

    #[test]
    fn withholds_throughput_unless_most_turns_were_server_limited() {
        use Limit::*;
        let mostly_server = Limits::count([Server, Server, Co]);
        assert_eq!(mostly_server.withholds_throughput(), None);
        let co = Limits::count([Server, Co, Co, Load]);
        assert_eq!(co.dominant(), Some(Co));
        let why = co.withholds_throughput().expect("withheld");
        assert!(why.starts_with("co-limited in 2 of 4 turns"), "{why}");
        assert!(why.contains("server-limited in 1"), "{why}");
        // Half is not most.
        assert!(Limits::count([Server, Neither])
            .withholds_throughput()
            .is_some());
        assert_eq!(
            Limits::count([Neither, Neither, Server]).dominant(),
            Some(Neither)
        );
        // Nothing classified (no CPU figures): nothing to withhold on.
        assert_eq!(Limits::default().withholds_throughput(), None);
    }
}
