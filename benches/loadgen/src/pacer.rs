//! Open-loop slots kept to the microsecond: a timerfd per connection, armed at the slot's
//! absolute time on `CLOCK_MONOTONIC` (the clock [`Instant`] reads on Linux) and awaited
//! through the runtime's reactor.
//!
//! Why not `tokio::time::sleep_until`: tokio's timer wheel ticks in whole milliseconds, so
//! a slot would be sent up to 1 ms late, and that delay — the load generator's, not the
//! server's — would land in every latency measured from the intended send time, which is
//! most of a sub-millisecond answer. The load threads also ask for 1 ns of timer slack
//! ([`tighten_timer_slack`]) instead of the default 50 µs.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// One connection's timer.
pub(super) struct Pacer {
    fd: AsyncFd<OwnedFd>,
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

impl Pacer {
    /// A non-blocking timerfd registered with the current runtime's reactor.
    pub fn new() -> io::Result<Self> {
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
        Ok(Self { fd })
    }

    /// Returns at `at` (at once if it has passed).
    pub async fn until(&mut self, at: Instant) -> io::Result<()> {
        let now = Instant::now();
        let Some(wait) = at.checked_duration_since(now).filter(|w| !w.is_zero()) else {
            return Ok(());
        };
        let base = monotonic_now();
        let nanos = base.tv_nsec as u128 + wait.subsec_nanos() as u128;
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

    #[test]
    fn wakes_at_its_slot_never_before() {
        // How late it wakes is a measurement (each curve point reports the load
        // generator's own delay), not a timed unit test.
        tighten_timer_slack();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut p = Pacer::new().expect("timerfd");
            for i in 0..50u64 {
                // Slots off the millisecond grid: 1.25 ms, 1.5 ms, ...
                let at = Instant::now() + Duration::from_micros(1000 + 250 * (i % 4));
                p.until(at).await.expect("wait");
                assert!(Instant::now() >= at, "woke before the slot");
            }
            // A slot already past returns at once, without arming the timer.
            p.until(Instant::now() - Duration::from_millis(1))
                .await
                .expect("past");
        });
    }
}
