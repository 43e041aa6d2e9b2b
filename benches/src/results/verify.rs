//! The delivery check: did every 2xx answer put its record in Kafka, with no errors, no
//! stalls and a clean server exit? One pure function, used by `cargo bench` and `soak`
//! alike, so both fail on exactly the same evidence.

use common::landed::CountMethod;

use super::ids::IdCheck;
use super::Tally;

/// How many records landed in the topic, as far as this run can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    /// Counted after the server stopped, minus what was there before the load.
    Counted(u64),
    /// The workload published nowhere (`--sink null`): nothing to count.
    NotCounted,
    /// Counting failed; the text says why.
    Unreadable(String),
}

/// How the server ended after SIGTERM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Exit status 0.
    Clean,
    /// Anything else (a status, a kill after a timeout); the text says what.
    Unclean(String),
}

/// Everything the check looks at.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// What the load generator got over every run sent to this server.
    pub tally: Tally,
    pub landed: Landed,
    pub method: CountMethod,
    pub exit: Exit,
    /// The first load failure (a stall, the time limit, a load-generator error).
    pub failure: Option<String>,
    /// The records read back and matched by request id (`None`: the requests carried no
    /// ids, or the topic was not read back).
    pub ids: Option<IdCheck>,
}

/// The delivery check after a workload.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Verification {
    /// 2xx answers the load generator got.
    pub ok: u64,
    /// Records that landed in the topic, counted by `method`; `None`: not counted (null
    /// sink, or counting failed: see `problems`).
    pub landed: Option<u64>,
    pub method: CountMethod,
    pub errors: u64,
    pub non_2xx: u64,
    pub stalls: u64,
    /// The server exited 0 after SIGTERM.
    pub clean_exit: bool,
    pub passed: bool,
    /// What differed, when not passed.
    pub problems: Vec<String>,
    /// The check by request id, beside the count (`None`: no ids to check).
    #[serde(default)]
    pub ids: Option<IdCheck>,
}

impl Verification {
    /// One line: passed or not, the count, and what the ids showed.
    pub fn summary(&self) -> String {
        let landed = self.landed.map_or("not counted".into(), |n| {
            format!("{n} landed ({:?})", self.method)
        });
        let ids = match &self.ids {
            None => "no ids checked".to_string(),
            Some(c) => format!("by id: {} read back", c.short()),
        };
        format!(
            "{}: {} answered 2xx, {landed}; {ids}",
            if self.passed { "verified" } else { "FAILED" },
            self.ok
        )
    }
}

/// Decides the check. Passed only if nothing failed, no answer was an error or non-2xx,
/// no run stalled, the records counted equal the 2xx answers exactly, and the server
/// exited cleanly.
pub fn verify(e: Evidence) -> Verification {
    let t = e.tally;
    let mut problems: Vec<String> = e.failure.into_iter().collect();
    if t.stalls > 0 && problems.is_empty() {
        problems.push(format!("{} run(s) stalled", t.stalls));
    }
    if t.errors > 0 {
        problems.push(format!("{} requests failed without an answer", t.errors));
    }
    if t.non_2xx > 0 {
        let mut p = format!("{} answers were not 2xx", t.non_2xx);
        if t.refused > 0 {
            p.push_str(&format!(
                " ({} of them 503: the server's producer queue was full, so the broker took \
                 records slower than the server received them; while it did, the rates were \
                 the broker's, not the runtime's)",
                t.refused
            ));
        }
        problems.push(p);
    }
    let landed = match e.landed {
        Landed::Counted(n) => {
            if n != t.ok {
                problems.push(format!(
                    "{n} records landed in Kafka but {} requests were answered 2xx",
                    t.ok
                ));
            }
            Some(n)
        }
        Landed::NotCounted => None,
        Landed::Unreadable(why) => {
            problems.push(format!("counting the records in Kafka: {why}"));
            None
        }
    };
    if let Some(c) = e.ids.as_ref().filter(|c| !c.exact()) {
        let mut what = Vec::new();
        if let Some(n) = c.missing.filter(|&n| n > 0) {
            what.push(format!("{n} answered 2xx but never landed"));
        }
        if c.duplicated > 0 {
            what.push(format!("{} landed more than once", c.duplicated));
        }
        if c.without_2xx > 0 {
            what.push(format!("{} landed without a 2xx answer", c.without_2xx));
        }
        if c.unknown > 0 {
            what.push(format!("{} landed with no id this run sent", c.unknown));
        }
        problems.push(format!(
            "by request id, of {} records read back: {} (e.g. {})",
            c.checked,
            what.join(", "),
            c.examples.join("; ")
        ));
    }
    let clean_exit = e.exit == Exit::Clean;
    if let Exit::Unclean(why) = e.exit {
        problems.push(why);
    }
    Verification {
        ok: t.ok,
        landed,
        method: e.method,
        errors: t.errors,
        non_2xx: t.non_2xx,
        stalls: t.stalls,
        clean_exit,
        passed: problems.is_empty(),
        problems,
        ids: e.ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Evidence {
        Evidence {
            tally: Tally {
                runs: 3,
                answered: 1000,
                ok: 1000,
                ..Tally::default()
            },
            landed: Landed::Counted(1000),
            method: CountMethod::Watermarks,
            exit: Exit::Clean,
            failure: None,
            ids: None,
        }
    }

    fn fails_with(e: Evidence, needle: &str) {
        let v = verify(e);
        assert!(!v.passed, "{v:?}");
        assert!(
            v.problems.iter().any(|p| p.contains(needle)),
            "no problem containing {needle:?} in {:?}",
            v.problems
        );
    }

    #[test]
    fn a_lost_and_a_duplicated_record_fail_by_id_though_the_counts_agree() {
        use crate::results::ids::{IdChecker, IdScope};
        use loadgen::ids::{Ids, StreamRecorder};
        let mut r = StreamRecorder::new(loadgen::ids::next_stream());
        r.send(1000);
        let bodies: Vec<Vec<u8>> = (0..1000)
            .map(|seq| {
                r.answered(seq);
                let mut b = vec![0u8; 100];
                r.id(seq).write(&mut b);
                b
            })
            .collect();
        let ids = Ids::of(vec![r.finish()]);
        let mut c = IdChecker::new(&ids);
        // 1000 landed for 1000 answered 2xx, but #17 twice and #42 never.
        for seq in (0..1000).map(|s| if s == 42 { 17 } else { s }) {
            c.see(&bodies[seq]);
        }
        let e = Evidence {
            ids: Some(c.finish(IdScope::Everything)),
            ..good()
        };
        let v = verify(e);
        assert!(!v.passed);
        let p = v.problems.join("\n");
        assert!(p.contains("1 answered 2xx but never landed"), "{p}");
        assert!(p.contains("1 landed more than once"), "{p}");
        assert!(p.contains(&format!("missing: {}", r.id(42))), "{p}");
        assert!(p.contains(&format!("duplicated: {}", r.id(17))), "{p}");
    }

    #[test]
    fn exact_delivery_passes() {
        let v = verify(good());
        assert!(v.passed, "{v:?}");
        assert_eq!((v.ok, v.landed), (1000, Some(1000)));
        assert!(v.clean_exit && v.problems.is_empty());
    }

    #[test]
    fn every_failing_case_fails_and_says_why() {
        // Fewer landed than answered 2xx: lost records.
        fails_with(
            Evidence {
                landed: Landed::Counted(999),
                ..good()
            },
            "999 records landed",
        );
        // More landed than answered 2xx: duplicates or records answered with an error.
        fails_with(
            Evidence {
                landed: Landed::Counted(1001),
                ..good()
            },
            "1001 records landed",
        );
        let mut errors = good();
        errors.tally.errors = 2;
        fails_with(errors, "2 requests failed");
        let mut non_2xx = good();
        non_2xx.tally.non_2xx = 5;
        fails_with(non_2xx, "5 answers were not 2xx");
        let mut refused = good();
        (refused.tally.non_2xx, refused.tally.refused) = (5, 3);
        fails_with(
            refused,
            "5 answers were not 2xx (3 of them 503: the server's producer queue was full",
        );
        let mut stalled = good();
        stalled.tally.stalls = 1;
        fails_with(stalled, "stalled");
        fails_with(
            Evidence {
                failure: Some("stalled at 3.0 s with 12 outstanding".into()),
                ..good()
            },
            "stalled at 3.0 s",
        );
        fails_with(
            Evidence {
                exit: Exit::Unclean("server exited with status 1 after SIGTERM".into()),
                ..good()
            },
            "status 1",
        );
        fails_with(
            Evidence {
                landed: Landed::Unreadable("broker gone".into()),
                ..good()
            },
            "broker gone",
        );
        assert!(
            !verify(Evidence {
                exit: Exit::Unclean("x".into()),
                ..good()
            })
            .clean_exit
        );
    }

    #[test]
    fn a_null_sink_is_not_counted_and_not_copied() {
        let v = verify(Evidence {
            landed: Landed::NotCounted,
            ..good()
        });
        assert!(v.passed, "{v:?}");
        assert_eq!(
            v.landed, None,
            "the 2xx count must not stand in for what landed"
        );
    }
}
