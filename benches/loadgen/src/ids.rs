//! Request identity: every request's body starts with an id that is unique to it — this
//! process's run, the connection's stream, the request's sequence number — written in place
//! into the connection's copy of the prebuilt request bytes (no allocation per request).
//! A server publishes the body as the record's value, so reading the topic back tells which
//! request each record came from: a lost record and a duplicated one no longer cancel out.
//!
//! Per stream the load generator keeps how many requests it sent and which were answered
//! 2xx (a bitmap while running, ranges in the report), so a run can be verified against
//! the topic afterwards, here or on another host.
//!
//! The id is [`ID_LEN`] ASCII bytes: `rbid`, then run (8 hex), stream (8 hex) and sequence
//! (12 hex). Bodies shorter than that carry no id.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::OnceLock;

/// Bytes an id takes at the start of a body.
pub const ID_LEN: usize = 32;
const TAG: &[u8; 4] = b"rbid";

/// One request's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId {
    pub run: u32,
    pub stream: u32,
    pub seq: u64,
}

impl RequestId {
    /// Writes the id into the first [`ID_LEN`] bytes of `out` (which must be that long).
    pub fn write(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(TAG);
        hex(u64::from(self.run), &mut out[4..12]);
        hex(u64::from(self.stream), &mut out[12..20]);
        hex(self.seq, &mut out[20..32]);
    }

    /// The id at the start of `bytes`, if there is one.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let b = bytes.get(..ID_LEN)?;
        if &b[..4] != TAG {
            return None;
        }
        let field = |r: std::ops::Range<usize>| {
            u64::from_str_radix(std::str::from_utf8(&b[r]).ok()?, 16).ok()
        };
        Some(Self {
            run: u32::try_from(field(4..12)?).ok()?,
            stream: u32::try_from(field(12..20)?).ok()?,
            seq: field(20..32)?,
        })
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut b = [0u8; ID_LEN];
        self.write(&mut b);
        f.write_str(std::str::from_utf8(&b).map_err(|_| std::fmt::Error)?)
    }
}

/// Lower-case hex of `v` into all of `out`, most significant digit first.
fn hex(mut v: u64, out: &mut [u8]) {
    for b in out.iter_mut().rev() {
        *b = b"0123456789abcdef"[(v & 0xf) as usize];
        v >>= 4;
    }
}

/// This process's run number: random, so two load generators (two hosts, two runs) writing
/// to one topic do not share ids.
pub fn run_id() -> u32 {
    static RUN: OnceLock<u32> = OnceLock::new();
    *RUN.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut x = t ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
        // splitmix64's finaliser.
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (x ^ (x >> 31)) as u32
    })
}

/// A stream number no other connection of this process has used.
pub fn next_stream() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Relaxed)
}

/// One connection's requests in one run, as they happen.
#[derive(Debug, Clone)]
pub struct StreamRecorder {
    stream: u32,
    sent: u64,
    /// Bit `seq` set: answered 2xx.
    ok: Vec<u64>,
}

impl StreamRecorder {
    pub fn new(stream: u32) -> Self {
        Self {
            stream,
            sent: 0,
            ok: Vec::new(),
        }
    }

    /// Claims the next `n` sequence numbers (before they are sent: a run cut short still
    /// counts them as sent); the first.
    pub fn send(&mut self, n: usize) -> u64 {
        let first = self.sent;
        self.sent += n as u64;
        first
    }

    /// The id of sequence number `seq`.
    pub fn id(&self, seq: u64) -> RequestId {
        RequestId {
            run: run_id(),
            stream: self.stream,
            seq,
        }
    }

    /// Request `seq` was answered 2xx.
    pub fn answered(&mut self, seq: u64) {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if self.ok.len() <= word {
            self.ok.resize(word + 1, 0);
        }
        self.ok[word] |= 1 << bit;
    }

    /// What the report keeps: how many were sent, which were answered 2xx (as ranges).
    pub fn finish(&self) -> Stream {
        let mut ok: Vec<(u64, u64)> = Vec::new();
        for seq in 0..self.sent {
            let set = self
                .ok
                .get((seq / 64) as usize)
                .is_some_and(|w| w & (1 << (seq % 64)) != 0);
            match ok.last_mut() {
                Some((_, end)) if set && *end == seq => *end = seq + 1,
                _ if set => ok.push((seq, seq + 1)),
                _ => {}
            }
        }
        Stream {
            stream: self.stream,
            sent: self.sent,
            ok,
        }
    }
}

/// One stream's requests: `sent` sequence numbers from 0, those answered 2xx as
/// `[start, end)` ranges.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stream {
    pub stream: u32,
    pub sent: u64,
    pub ok: Vec<(u64, u64)>,
}

impl Stream {
    pub fn answered_2xx(&self) -> u64 {
        self.ok.iter().map(|(a, b)| b - a).sum()
    }

    pub fn is_ok(&self, seq: u64) -> bool {
        let i = self.ok.partition_point(|&(_, end)| end <= seq);
        self.ok.get(i).is_some_and(|&(start, _)| start <= seq)
    }
}

/// Every id one or more runs sent, and which were answered 2xx.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ids {
    /// Run number → its streams (several runs: several load-generator processes).
    pub runs: std::collections::BTreeMap<u32, Vec<Stream>>,
}

impl Ids {
    /// This process's streams.
    pub fn of(streams: Vec<Stream>) -> Self {
        let mut runs = std::collections::BTreeMap::new();
        if !streams.is_empty() {
            runs.insert(run_id(), streams);
        }
        Self { runs }
    }

    pub fn merge(&mut self, other: &Ids) {
        for (run, streams) in &other.runs {
            self.runs
                .entry(*run)
                .or_default()
                .extend(streams.iter().cloned());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    pub fn sent(&self) -> u64 {
        self.streams().map(|s| s.sent).sum()
    }

    pub fn answered_2xx(&self) -> u64 {
        self.streams().map(Stream::answered_2xx).sum()
    }

    fn streams(&self) -> impl Iterator<Item = &Stream> {
        self.runs.values().flatten()
    }

    /// Every stream by (run, stream): where a landed id belongs.
    pub fn index(&self) -> std::collections::HashMap<(u32, u32), &Stream> {
        (self.runs.iter())
            .flat_map(|(run, streams)| streams.iter().map(move |s| ((*run, s.stream), s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_other_bytes_are_not_ids() {
        let id = RequestId {
            run: 0xdead_beef,
            stream: 7,
            seq: 0x1234_5678_9abc,
        };
        let mut body = vec![b'x'; 100];
        id.write(&mut body);
        assert_eq!(&body[..ID_LEN], b"rbiddeadbeef00000007123456789abc");
        assert_eq!(RequestId::parse(&body), Some(id));
        assert_eq!(id.to_string().as_bytes(), &body[..ID_LEN]);
        assert_eq!(RequestId::parse(&body[..ID_LEN - 1]), None);
        assert_eq!(RequestId::parse(&[b'x'; 40]), None);
        body[20] = b'g';
        assert_eq!(RequestId::parse(&body), None);
    }

    #[test]
    fn a_recorder_keeps_sent_and_answered_as_ranges() {
        let mut r = StreamRecorder::new(3);
        assert_eq!(r.send(4), 0);
        assert_eq!(r.send(200), 4);
        for seq in (0..3).chain(5..130).chain([199]) {
            r.answered(seq);
        }
        let s = r.finish();
        assert_eq!(s.sent, 204);
        assert_eq!(s.ok, [(0, 3), (5, 130), (199, 200)]);
        assert_eq!(s.answered_2xx(), 3 + 125 + 1);
        assert!(s.is_ok(0) && s.is_ok(129) && s.is_ok(199));
        assert!(!s.is_ok(3) && !s.is_ok(130) && !s.is_ok(203));
        assert_eq!(r.id(9).stream, 3);
    }

    #[test]
    fn streams_are_unique_and_ids_merge() {
        let (a, b) = (next_stream(), next_stream());
        assert_ne!(a, b);
        let mut ids = Ids::of(vec![StreamRecorder::new(a).finish()]);
        ids.merge(&Ids::of(vec![StreamRecorder::new(b).finish()]));
        assert_eq!(ids.runs[&run_id()].len(), 2);
        let id = StreamRecorder::new(b).id(0);
        assert!(ids.index().contains_key(&(id.run, id.stream)));
        assert!(Ids::of(Vec::new()).is_empty());
    }
}
