//! Open-loop slots kept to the microsecond, one timer per load thread: a timerfd armed at
//! the thread's earliest waiting slot (absolute time on `CLOCK_MONOTONIC`, the clock
//! [`Instant`] reads on Linux) and awaited through the runtime's reactor by one driver
//! task, which wakes every connection whose slot has come each time it fires.
//!
//! Why not `tokio::time::sleep_until`: tokio's timer wheel ticks in whole milliseconds, so
//! a slot would be sent up to 1 ms late, and that delay — the load generator's, not the
//! server's — would land in every latency measured from the intended send time, which is
//! most of a sub-millisecond answer. The load threads also ask for 1 ns of timer slack
//! ([`tighten_timer_slack`]) instead of the default 50 µs.
//!
//! One timer per thread, not one per connection: a connection's own timerfd cost three
//! syscalls and a wake-up per request (arm, epoll, read); one clock per thread is re-armed
//! once per expiry, and each expiry sends every slot that has come. Measured with
//! `scripts/pacer-cost.sh` it is not cheaper overall: 4 % less CPU per request at 40k req/s,
//! 13 % more at 20k (ARCHITECTURE.md has the figures).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Instant;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// One load thread's slots: who waits for what time, and the timer set for the earliest.
pub(super) struct SlotClock {
    fd: AsyncFd<OwnedFd>,
    state: RefCell<State>,
}

struct State {
    /// Waiting slots, earliest first: (time, waiter). An entry whose wait already ended
    /// only causes one spurious wake-up.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Each waiter's latest waker (a waiter waits for one slot at a time).
    wakers: Vec<Option<Waker>>,
    /// What the timer is set to, if anything.
    armed: Option<Instant>,
    /// The timer failed: every wait returns at once with an error.
    broken: bool,
}

fn monotonic_now() -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts
}

impl SlotClock {
    /// A non-blocking timerfd registered with the current runtime's reactor, for
    /// `waiters` connections numbered from 0.
    pub fn new(waiters: usize) -> io::Result<Rc<Self>> {
        // SAFETY: plain syscall; the result is checked before use.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an OwnedFd keeps its one fd open until it is dropped with the AsyncFd.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Rc::new(Self {
            fd,
            state: RefCell::new(State {
                due: BinaryHeap::new(),
                wakers: vec![None; waiters],
                armed: None,
                broken: false,
            }),
        }))
    }

    /// Returns at `at` (at once if it has passed). `waiter`: the connection's number in
    /// this thread; the clock's [`SlotClock::drive`] must be running.
    pub async fn until(&self, waiter: usize, at: Instant) -> io::Result<()> {
        let mut queued = false;
        let mut failed = None;
        std::future::poll_fn(|cx| {
            if Instant::now() >= at {
                return Poll::Ready(());
            }
            let mut s = self.state.borrow_mut();
            if s.broken {
                failed = Some(io::Error::other("the slot clock's timer failed"));
                return Poll::Ready(());
            }
            s.wakers[waiter] = Some(cx.waker().clone());
            if !queued {
                queued = true;
                s.due.push(Reverse((at, waiter)));
                if s.armed.is_none_or(|a| at < a) {
                    s.armed = Some(at);
                    if let Err(e) = self.arm(at) {
                        failed = Some(e);
                        return Poll::Ready(());
                    }
                }
            }
            Poll::Pending
        })
        .await;
        failed.map_or(Ok(()), Err)
    }

    /// Wakes every waiter whose slot has come, each time the timer fires; runs until the
    /// thread's run ends (its task is dropped). If the timer fails, says so and lets every
    /// wait return at once (the lag that causes is recorded as the load generator's).
    pub async fn drive(self: Rc<Self>) {
        if let Err(e) = self.wake_due().await {
            eprintln!("loadgen: the slot clock's timer failed: {e}");
            let mut s = self.state.borrow_mut();
            s.broken = true;
            for w in s.wakers.iter().flatten() {
                w.wake_by_ref();
            }
        }
    }

    async fn wake_due(&self) -> io::Result<()> {
        loop {
            self.expired().await?;
            let now = Instant::now();
            let mut s = self.state.borrow_mut();
            while let Some(&Reverse((at, waiter))) = s.due.peek() {
                if at > now {
                    break;
                }
                s.due.pop();
                if let Some(w) = &s.wakers[waiter] {
                    w.wake_by_ref();
                }
            }
            s.armed = s.due.peek().map(|&Reverse((at, _))| at);
            if let Some(at) = s.armed {
                self.arm(at)?;
            }
        }
    }

    /// Sets the timer to go off at `at`.
    fn arm(&self, at: Instant) -> io::Result<()> {
        let wait = at.saturating_duration_since(Instant::now());
        let base = monotonic_now();
        let nanos = base.tv_nsec as u128 + wait.subsec_nanos() as u128;
        // A zero value would disarm the timer: a time already past is set 1 ns ahead.
        let nanos = nanos.max(1);
        let value = libc::timespec {
            tv_sec: base.tv_sec
                + wait.as_secs() as libc::time_t
                + (nanos / 1_000_000_000) as libc::time_t,
            tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: a valid fd and itimerspec; no old value asked for.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits for the timer to go off and consumes its expiry count.
    async fn expired(&self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut expirations = [0u8; 8];
            // SAFETY: reading 8 bytes into an 8-byte buffer from our own fd.
            let n = unsafe {
                libc::read(
                    guard.get_inner().as_raw_fd(),
                    expirations.as_mut_ptr().cast(),
                    expirations.len(),
                )
            };
            if n == 8 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                guard.clear_ready();
                continue;
            }
            return Err(e);
        }
    }
}

/// Asks the kernel to wake this thread's timers within 1 ns of their time (the default
/// slack is 50 µs). Best effort: a refusal only makes slots a little later.
pub(super) fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only this thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn local_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn wakes_each_waiter_at_its_slot_never_before() {
        // How late it wakes is a measurement (each curve point reports the load
        // generator's own delay), not a timed unit test.
        tighten_timer_slack();
        let rt = local_runtime();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let clock = SlotClock::new(4).expect("timerfd");
            tokio::task::spawn_local(clock.clone().drive());
            let start = Instant::now();
            // Four waiters on interleaved slots off the millisecond grid, each 20 slots.
            let waiters: Vec<_> = (0..4usize)
                .map(|w| {
                    let clock = clock.clone();
                    tokio::task::spawn_local(async move {
                        for i in 0..20u64 {
                            let at = start + Duration::from_micros(250 * (4 * i + w as u64) + 300);
                            clock.until(w, at).await.expect("wait");
                            assert!(Instant::now() >= at, "waiter {w} woke before its slot {i}");
                        }
                        // A slot already past returns at once.
                        clock
                            .until(w, Instant::now() - Duration::from_millis(1))
                            .await
                            .expect("past");
                    })
                })
                .collect();
            for w in waiters {
                w.await.expect("waiter");
            }
        });
    }

    #[test]
    fn a_later_slot_waits_for_an_earlier_one_to_be_set() {
        // Waiter 0 asks for a slot 30 ms away, then waiter 1 for one 2 ms away: the clock
        // must re-arm for the earlier one, not sleep until the first.
        let rt = local_runtime();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let clock = SlotClock::new(2).expect("timerfd");
            tokio::task::spawn_local(clock.clone().drive());
            let t0 = Instant::now();
            let far = {
                let clock = clock.clone();
                tokio::task::spawn_local(async move {
                    clock
                        .until(0, t0 + Duration::from_millis(30))
                        .await
                        .expect("far");
                    Instant::now()
                })
            };
            tokio::task::yield_now().await;
            clock
                .until(1, t0 + Duration::from_millis(2))
                .await
                .expect("near");
            assert!(!far.is_finished(), "the far waiter woke with the near one");
            let woke = far.await.expect("far waiter");
            assert!(woke >= t0 + Duration::from_millis(30));
        });
    }
}
