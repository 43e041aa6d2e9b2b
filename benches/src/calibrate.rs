//! Calibration: the unit costs the two runtimes spend differently, measured once per run
//! on the servers' cores before any server starts — a null syscall (and a slow one beside
//! it, as a yardstick), `epoll_wait` with one ready event, an io_uring NOP submitted and
//! reaped (alone and 8 at a time), a 100 B loopback TCP round trip, a 16 KiB loopback copy,
//! a thread wake-up on another core and a context switch on the same one. Interleaved:
//! every measurement takes a short turn in each of several rounds, so a slow minute of the
//! machine touches them all alike; per measurement the median over rounds and the range.
//! Recorded in env.json (`calibration`); the report relates costs to a null syscall, and
//! `report --compare` lines machines up by them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rounds per measurement, and the time one turn aims for.
const ROUNDS: usize = 7;
const TURN: Duration = Duration::from_millis(15);

/// One unit cost: ns per operation, the median over rounds and their range.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UnitCost {
    pub name: String,
    pub ns: f64,
    pub min_ns: f64,
    pub max_ns: f64,
    pub rounds: usize,
}

/// Every unit cost of a run, and what could not be measured (with why).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    /// The CPUs the measuring thread was pinned to (the servers' cores, or all).
    pub cpus: Vec<usize>,
    pub costs: Vec<UnitCost>,
    pub unavailable: Vec<String>,
    /// Wall time the whole calibration took, s.
    pub seconds: f64,
}

impl Calibration {
    pub fn get(&self, name: &str) -> Option<&UnitCost> {
        self.costs.iter().find(|c| c.name == name)
    }

    /// `name`'s cost in null syscalls.
    pub fn in_syscalls(&self, name: &str) -> Option<f64> {
        Some(self.get(name)?.ns / self.get(NULL_SYSCALL)?.ns)
    }
}

pub const NULL_SYSCALL: &str = "null syscall (getppid)";
pub const SLOW_SYSCALL: &str = "open + close /dev/null";
pub const EPOLL: &str = "epoll_wait, one ready event";
pub const URING_NOP: &str = "io_uring NOP, submit + reap";
pub const URING_NOP_BATCH: &str = "io_uring NOP, 8 per submit, per NOP";
pub const TCP_RTT: &str = "loopback TCP 100 B round trip";
pub const TCP_COPY: &str = "loopback TCP 16 KiB write + read";
pub const WAKE_UP: &str = "thread wake-up, another core";
pub const SWITCH: &str = "thread hand-off, same core";

/// One operation (or a batch of them): how many it did.
pub(crate) type Op = Box<dyn FnMut() -> std::io::Result<u64>>;

/// Measures every unit cost on `cpus` (the first of them; `None`: wherever it runs).
pub fn run(cpus: Option<&[usize]>) -> Calibration {
    let cpus: Vec<usize> = cpus.map(<[usize]>::to_vec).unwrap_or_default();
    let started = Instant::now();
    let pinned = cpus.clone();
    let measured = std::thread::Builder::new()
        .name("calibrate".into())
        .spawn(move || {
            if let Some(&c) = pinned.first() {
                let _ = crate::layout::set_affinity(&[c]);
            }
            measure_all()
        })
        .map_err(|e| e.to_string())
        .and_then(|h| {
            h.join()
                .map_err(|_| "the calibration thread panicked".to_string())
        });
    let (costs, unavailable) = measured.unwrap_or_else(|e| (Vec::new(), vec![e]));
    Calibration {
        cpus,
        costs,
        unavailable,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn measure_all() -> (Vec<UnitCost>, Vec<String>) {
    let here = crate::layout::allowed_cpus();
    let elsewhere: Vec<usize> = crate::layout::online_cpus_list()
        .into_iter()
        .filter(|c| !here.contains(c))
        .collect();
    let setups: Vec<(&str, std::io::Result<Op>)> = vec![
        (NULL_SYSCALL, Ok(null_syscall())),
        (SLOW_SYSCALL, Ok(slow_syscall())),
        (EPOLL, epoll_ready()),
        (URING_NOP, uring_nop(1)),
        (URING_NOP_BATCH, uring_nop(8)),
        (TCP_RTT, tcp_round_trip()),
        (TCP_COPY, tcp_copy()),
        (
            WAKE_UP,
            hand_off(elsewhere.first().copied(), "no other core"),
        ),
        (SWITCH, hand_off(here.first().copied(), "no core")),
    ];
    let mut ops = Vec::new();
    let mut unavailable = Vec::new();
    for (name, s) in setups {
        match s {
            Ok(op) => ops.push((name, op, 1u64, Vec::new())),
            Err(e) => unavailable.push(format!("{name}: {e}")),
        }
    }
    // One unrecorded turn each: warms the op up and sizes its batch to a turn.
    for (name, op, batch, _) in ops.iter_mut() {
        for _ in 0..2 {
            if let Err(e) = turn(op, batch) {
                unavailable.push(format!("{name}: {e}"));
            }
        }
    }
    for _ in 0..ROUNDS {
        for (name, op, batch, samples) in ops.iter_mut() {
            match turn(op, batch) {
                Ok(ns) => samples.push(ns),
                Err(e) => unavailable.push(format!("{name}: {e}")),
            }
        }
    }
    let costs = ops
        .into_iter()
        .filter(|(_, _, _, s)| s.len() == ROUNDS)
        .map(|(name, _, _, mut s)| {
            s.sort_by(f64::total_cmp);
            UnitCost {
                name: name.to_string(),
                ns: s[s.len() / 2],
                min_ns: s[0],
                max_ns: s[s.len() - 1],
                rounds: s.len(),
            }
        })
        .collect();
    unavailable.dedup();
    (costs, unavailable)
}

/// One turn of `op`, repeated until it has run ~[`TURN`]; ns per operation. `batch`
/// carries the repetitions that fill a turn from one round to the next; a turn that runs
/// far past [`TURN`] (the op slowed down since the batch was sized) is cut short.
fn turn(op: &mut Op, batch: &mut u64) -> std::io::Result<f64> {
    let t = Instant::now();
    let (mut done, mut calls) = (0, 0u64);
    while calls < *batch {
        done += op()?;
        calls += 1;
        if calls % 64 == 0 && t.elapsed() > TURN * 20 {
            break;
        }
    }
    let took = t.elapsed();
    let per_call = took.as_secs_f64() / calls.max(1) as f64;
    *batch = ((TURN.as_secs_f64() / per_call.max(1e-9)) as u64).clamp(1, 10_000_000);
    Ok(took.as_nanos() as f64 / done.max(1) as f64)
}

fn null_syscall() -> Op {
    // SAFETY: getppid takes no arguments and cannot fail.
    Box::new(|| Ok(u64::from(unsafe { libc::syscall(libc::SYS_getppid) } >= 0)))
}

fn slow_syscall() -> Op {
    Box::new(|| {
        let f = std::fs::File::open("/dev/null")?;
        drop(f);
        Ok(1)
    })
}

fn epoll_ready() -> std::io::Result<Op> {
    let check = |rc: libc::c_int| {
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    };
    // SAFETY: plain fd-creating calls; the fds are owned by the closure below.
    let (ep, ev) = unsafe {
        (
            check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?,
            check(libc::eventfd(1, libc::EFD_CLOEXEC))?,
        )
    };
    let mut reg = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 1,
    };
    // SAFETY: both fds are valid; `reg` is initialised.
    check(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, ev, &mut reg) })?;
    let guard = Fds(vec![ep, ev]);
    Ok(Box::new(move || {
        let _ = &guard;
        let mut out = [libc::epoll_event { events: 0, u64: 0 }; 4];
        // SAFETY: `out` has room for 4 events; the eventfd stays readable (never read).
        let n = check(unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), 4, 0) })?;
        Ok(u64::from(n == 1))
    }))
}

/// Closes its fds when dropped.
struct Fds(Vec<libc::c_int>);

impl Drop for Fds {
    fn drop(&mut self) {
        for &fd in &self.0 {
            // SAFETY: fds this struct owns, closed once.
            unsafe { libc::close(fd) };
        }
    }
}

fn uring_nop(per_submit: u32) -> std::io::Result<Op> {
    let mut ring = io_uring::IoUring::new(64)?;
    Ok(Box::new(move || {
        for i in 0..per_submit {
            let nop = io_uring::opcode::Nop::new().build().user_data(u64::from(i));
            // SAFETY: a NOP refers to no memory.
            unsafe { ring.submission().push(&nop) }
                .map_err(|_| std::io::Error::other("submission queue full"))?;
        }
        ring.submit_and_wait(per_submit as usize)?;
        let reaped = ring.completion().count() as u64;
        Ok(reaped)
    }))
}

/// A connected loopback TCP pair (no Nagle); the measuring side `a` gives up on a read or
/// write after 5 s (an echo that died is an error, not a hang).
fn tcp_pair() -> std::io::Result<(TcpStream, TcpStream)> {
    tcp_pair_on(TcpListener::bind("127.0.0.1:0")?)
}

/// A pair as [`tcp_pair`] through `l`, wherever it listens (another network namespace's
/// address: `topology::netns` measures its link so).
fn tcp_pair_on(l: TcpListener) -> std::io::Result<(TcpStream, TcpStream)> {
    let a = TcpStream::connect(l.local_addr()?)?;
    let (b, _) = l.accept()?;
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    a.set_read_timeout(Some(Duration::from_secs(5)))?;
    a.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok((a, b))
}

fn tcp_round_trip() -> std::io::Result<Op> {
    tcp_round_trip_on(TcpListener::bind("127.0.0.1:0")?)
}

/// One 100 B round trip per call, to an echo thread, through a pair made on `l`.
pub(crate) fn tcp_round_trip_on(l: TcpListener) -> std::io::Result<Op> {
    let (mut a, mut b) = tcp_pair_on(l)?;
    // The echo side: a thread of its own (on this core set), until the pair closes.
    std::thread::Builder::new()
        .name("calibrate-echo".into())
        .spawn(move || {
            let mut buf = [0u8; 100];
            while b.read_exact(&mut buf).is_ok() && b.write_all(&buf).is_ok() {}
        })?;
    let mut buf = [7u8; 100];
    Ok(Box::new(move || {
        a.write_all(&buf)?;
        a.read_exact(&mut buf)?;
        Ok(1)
    }))
}

fn tcp_copy() -> std::io::Result<Op> {
    let (mut a, mut b) = tcp_pair()?;
    b.set_read_timeout(Some(Duration::from_secs(5)))?;
    let out = vec![7u8; 16 << 10];
    let mut back = vec![0u8; 16 << 10];
    Ok(Box::new(move || {
        a.write_all(&out)?;
        b.read_exact(&mut back)?;
        Ok(1)
    }))
}

/// Hands a turn back and forth with a thread pinned to `partner` (park/unpark: a futex);
/// ns per one-way hand-off.
fn hand_off(partner: Option<usize>, missing: &str) -> std::io::Result<Op> {
    let cpu = partner.ok_or_else(|| std::io::Error::other(missing.to_string()))?;
    // 0: the measuring thread's turn, 1: the partner's.
    let turn = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let me = std::thread::current();
    let partner = {
        let (turn, stop) = (turn.clone(), stop.clone());
        std::thread::Builder::new()
            .name("calibrate-peer".into())
            .spawn(move || {
                let _ = crate::layout::set_affinity(&[cpu]);
                while !stop.load(Ordering::Acquire) {
                    if turn.load(Ordering::Acquire) == 1 {
                        turn.store(0, Ordering::Release);
                        me.unpark();
                    } else {
                        std::thread::park_timeout(Duration::from_millis(50));
                    }
                }
            })?
    };
    let guard = Stopper(stop, Some(partner));
    Ok(Box::new(move || {
        turn.store(1, Ordering::Release);
        if let Some(p) = &guard.1 {
            p.thread().unpark();
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        while turn.load(Ordering::Acquire) != 0 {
            std::thread::park_timeout(Duration::from_millis(50));
            if Instant::now() > deadline {
                return Err(std::io::Error::other("the partner thread did not answer"));
            }
        }
        // One round trip is two hand-offs.
        Ok(2)
    }))
}

/// Stops and joins the partner thread when the measurement is dropped.
struct Stopper(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Drop for Stopper {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
        if let Some(h) = self.1.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_cost_is_measured_and_sane() {
        let c = run(None);
        for cost in &c.costs {
            assert!(
                cost.ns.is_finite()
                    && cost.ns > 0.0
                    && cost.min_ns <= cost.ns
                    && cost.ns <= cost.max_ns,
                "{cost:?}"
            );
            assert_eq!(cost.rounds, ROUNDS);
        }
        for name in [NULL_SYSCALL, SLOW_SYSCALL, EPOLL, TCP_RTT, TCP_COPY, SWITCH] {
            assert!(c.get(name).is_some(), "{name} missing: {:?}", c.unavailable);
        }
        // The yardstick: two syscalls that open a file cost more than one that does nothing.
        let ratio = c.in_syscalls(SLOW_SYSCALL).expect("both measured");
        assert!(ratio > 1.0, "open+close /dev/null = {ratio} null syscalls");
        let json = serde_json::to_string(&c).expect("json");
        let back: Calibration = serde_json::from_str(&json).expect("back");
        assert_eq!(
            (back.costs.len(), &back.unavailable),
            (c.costs.len(), &c.unavailable)
        );
        for (x, y) in back.costs.iter().zip(&c.costs) {
            assert!(
                x.name == y.name && (x.ns - y.ns).abs() <= 1e-9 * y.ns,
                "{x:?} vs {y:?}"
            );
        }
    }
}
