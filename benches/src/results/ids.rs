//! The delivery check by id: every record read back from the topic is matched to the
//! request it came from (`loadgen::ids`). Pure: the load generator's ids and the records'
//! values in, counts and examples out; [`super::verify`] turns them into problems.

use loadgen::ids::{Ids, RequestId, Stream};
use std::collections::HashMap;

/// Examples kept per kind of discrepancy.
const EXAMPLES: usize = 3;

/// How much of the topic the ids were checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdScope {
    /// Every record the topic ever got was read back: missing ids are counted too.
    Everything,
    /// Only what the broker still holds (the embedded mock cluster keeps ~5 MiB per
    /// partition, the latest records): duplicates and strangers are counted over those,
    /// missing ones cannot be (the count check covers them).
    Retained,
}

/// What reading the topic back by id found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdCheck {
    pub scope: IdScope,
    /// Ids the load generator sent, and how many of them were answered 2xx.
    pub sent: u64,
    pub answered_2xx: u64,
    /// Records read back and matched.
    pub checked: u64,
    /// Answered 2xx, never landed (counted only over [`IdScope::Everything`]).
    pub missing: Option<u64>,
    /// Landed more than once (each extra copy counts).
    pub duplicated: u64,
    /// Landed, but their request was not answered 2xx (a 503, or no answer at all).
    pub without_2xx: u64,
    /// Landed with no id of this run (another writer, or a corrupted body).
    pub unknown: u64,
    /// A few ids of each kind, `kind: id`.
    pub examples: Vec<String>,
}

impl IdCheck {
    /// `exact over all 1234 records` / `MISMATCH over the retained 800 records`.
    pub fn short(&self) -> String {
        let scope = match self.scope {
            IdScope::Everything => "all",
            IdScope::Retained => "the retained",
        };
        let outcome = if self.exact() { "exact" } else { "MISMATCH" };
        format!("{outcome} over {scope} {} records", self.checked)
    }

    /// Nothing missing, duplicated, unanswered or unknown.
    pub fn exact(&self) -> bool {
        self.missing.unwrap_or(0) == 0
            && self.duplicated == 0
            && self.without_2xx == 0
            && self.unknown == 0
    }
}

/// Matches records against `ids` as they are read ([`IdChecker::see`]), then counts.
#[derive(Debug)]
pub struct IdChecker<'a> {
    streams: HashMap<(u32, u32), (&'a Stream, Vec<u8>)>,
    sent: u64,
    answered_2xx: u64,
    checked: u64,
    duplicated: u64,
    without_2xx: u64,
    unknown: u64,
    examples: Vec<String>,
    kinds: HashMap<&'static str, usize>,
}

impl<'a> IdChecker<'a> {
    pub fn new(ids: &'a Ids) -> Self {
        Self {
            streams: (ids.index().into_iter())
                .map(|(k, s)| (k, (s, vec![0u8; s.sent as usize])))
                .collect(),
            sent: ids.sent(),
            answered_2xx: ids.answered_2xx(),
            checked: 0,
            duplicated: 0,
            without_2xx: 0,
            unknown: 0,
            examples: Vec::new(),
            kinds: HashMap::new(),
        }
    }

    fn example(&mut self, kind: &'static str, what: String) {
        let n = self.kinds.entry(kind).or_default();
        if *n < EXAMPLES {
            *n += 1;
            self.examples.push(format!("{kind}: {what}"));
        }
    }

    /// One record's value.
    pub fn see(&mut self, value: &[u8]) {
        self.checked += 1;
        let Some(id) = RequestId::parse(value) else {
            self.unknown += 1;
            let shown = String::from_utf8_lossy(&value[..value.len().min(32)]).into_owned();
            return self.example("unknown", format!("{shown:?}"));
        };
        let Some((stream, seen)) = self.streams.get_mut(&(id.run, id.stream)) else {
            self.unknown += 1;
            return self.example("unknown", id.to_string());
        };
        let Some(count) = seen.get_mut(id.seq as usize) else {
            self.unknown += 1;
            return self.example("unknown", format!("{id} (never sent)"));
        };
        *count = count.saturating_add(1);
        let (first, ok) = (*count == 1, stream.is_ok(id.seq));
        if !first {
            self.duplicated += 1;
            self.example("duplicated", id.to_string());
        }
        if first && !ok {
            self.without_2xx += 1;
            self.example("landed without a 2xx", id.to_string());
        }
    }

    /// The counts, over `scope`.
    pub fn finish(mut self, scope: IdScope) -> IdCheck {
        let missing = (scope == IdScope::Everything).then(|| {
            let mut missing = 0;
            let mut found = Vec::new();
            for ((run, stream), (s, seen)) in &self.streams {
                for &(start, end) in &s.ok {
                    for seq in start..end {
                        if seen[seq as usize] == 0 {
                            missing += 1;
                            if found.len() < EXAMPLES {
                                found.push(RequestId {
                                    run: *run,
                                    stream: *stream,
                                    seq,
                                });
                            }
                        }
                    }
                }
            }
            found.sort();
            for id in found {
                self.example("missing", id.to_string());
            }
            missing
        });
        IdCheck {
            scope,
            sent: self.sent,
            answered_2xx: self.answered_2xx,
            checked: self.checked,
            missing,
            duplicated: self.duplicated,
            without_2xx: self.without_2xx,
            unknown: self.unknown,
            examples: self.examples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgen::ids::StreamRecorder;

    /// A stream of `sent` requests, all answered 2xx but `not_ok`; its bodies.
    fn stream(sent: usize, not_ok: &[u64]) -> (Ids, Vec<Vec<u8>>) {
        let mut r = StreamRecorder::new(loadgen::ids::next_stream());
        let first = r.send(sent);
        let bodies = (0..sent as u64)
            .map(|i| {
                let mut b = vec![b'.'; 100];
                r.id(first + i).write(&mut b);
                b
            })
            .collect();
        for seq in (0..sent as u64).filter(|s| !not_ok.contains(s)) {
            r.answered(seq);
        }
        (Ids::of(vec![r.finish()]), bodies)
    }

    fn check(ids: &Ids, landed: &[&Vec<u8>], scope: IdScope) -> IdCheck {
        let mut c = IdChecker::new(ids);
        for v in landed {
            c.see(v);
        }
        c.finish(scope)
    }

    #[test]
    fn exact_delivery_is_exact() {
        let (ids, bodies) = stream(10, &[]);
        let c = check(
            &ids,
            &bodies.iter().collect::<Vec<_>>(),
            IdScope::Everything,
        );
        assert!(c.exact(), "{c:?}");
        assert_eq!((c.checked, c.answered_2xx, c.missing), (10, 10, Some(0)));
    }

    #[test]
    fn a_lost_and_a_duplicated_record_do_not_cancel_out() {
        // The counts agree (10 landed, 10 answered 2xx): only the ids tell.
        let (ids, bodies) = stream(10, &[]);
        let mut landed: Vec<&Vec<u8>> = bodies.iter().collect();
        landed[4] = &bodies[7];
        let c = check(&ids, &landed, IdScope::Everything);
        assert_eq!(c.checked, 10);
        assert!(!c.exact());
        assert_eq!((c.missing, c.duplicated), (Some(1), 1));
        let missing = format!("missing: {}", StreamRecorder::new(0).id(0)).len();
        assert!(c
            .examples
            .iter()
            .any(|e| e.starts_with("missing: rbid") && e.len() == missing));
        assert!(
            c.examples.iter().any(|e| e.starts_with("duplicated: rbid")),
            "{:?}",
            c.examples
        );
    }

    #[test]
    fn unanswered_and_foreign_records_are_named() {
        let (ids, bodies) = stream(5, &[2]);
        let stranger = vec![b'z'; 100];
        let (other, other_bodies) = stream(1, &[]);
        let c = check(
            &ids,
            &[
                &bodies[0],
                &bodies[1],
                &bodies[2],
                &bodies[3],
                &bodies[4],
                &stranger,
                &other_bodies[0],
            ],
            IdScope::Everything,
        );
        assert_eq!((c.without_2xx, c.unknown, c.missing), (1, 2, Some(0)));
        assert!(!other.is_empty());
        // Over the retained records only, missing ones are not counted.
        let c = check(&ids, &[&bodies[4]], IdScope::Retained);
        assert_eq!(c.missing, None);
        assert!(c.exact());
    }
}
