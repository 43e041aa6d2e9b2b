//! On-CPU sampling without a hardware PMU: `perf_event_open` with the software CPU clock,
//! one event per core (every task on it, idle included), each sample's pid, tid and call
//! chain (kernel frames unwound by the kernel, user frames by frame pointers), read from
//! the events' ring buffers while the cores run.
//!
//! Needs root or `perf_event_paranoid` ≤ 0 (a core-wide event sees every process); where
//! the kernel refuses, [`Sampler::start`] says why and the caller carries on without a
//! profile. The harness runs it here for local servers; the probe runs it on the servers'
//! host over ssh and sends the samples back (naming their frames is the harness's job).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use serde::{Deserialize, Serialize};

use crate::perf::{open_event, Attr, IOC_DISABLE, IOC_ENABLE};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
const SAMPLE_TID: u64 = 1 << 1;
const SAMPLE_CALLCHAIN: u64 = 1 << 5;
/// `disabled` (bit 0) until enabled by ioctl; `exclude_hv` (bit 6).
const FLAGS: u64 = 1 | (1 << 6);
const RECORD_LOST: u32 = 2;
const RECORD_SAMPLE: u32 = 9;
/// Call-chain entries at or above this are context markers, not addresses.
const CONTEXT_MAX: u64 = -4095i64 as u64;
const CONTEXT_KERNEL: u64 = -128i64 as u64;
const CONTEXT_USER: u64 = -512i64 as u64;
/// Data pages per ring (a power of two): 512 KiB, drained every 10 ms.
const RING_PAGES: usize = 128;

/// One sample: who was on the core and where, leaf first in each list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawSample {
    /// The process (thread group) id; 0 is the idle task.
    pub pid: u32,
    pub tid: u32,
    pub kernel: Vec<u64>,
    pub user: Vec<u64>,
}

/// What a sampling run collected.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collected {
    pub samples: Vec<RawSample>,
    /// Samples the kernel dropped because a ring was full.
    pub lost: u64,
    /// The sampling period.
    pub period: Duration,
}

/// One core's event and its mapped ring buffer.
#[derive(Debug)]
struct Ring {
    fd: OwnedFd,
    base: *mut u8,
    len: usize,
    page: usize,
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping made in `Ring::open`, unmapped once here.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

impl Ring {
    fn open(cpu: usize, period: Duration) -> io::Result<Self> {
        let attr = Attr {
            kind: PERF_TYPE_SOFTWARE,
            config: PERF_COUNT_SW_CPU_CLOCK,
            sample_period: period.as_nanos().max(10_000) as u64,
            sample_type: SAMPLE_TID | SAMPLE_CALLCHAIN,
            flags: FLAGS,
            ..Attr::default()
        };
        let fd = open_event(&attr, -1, cpu as i32)?;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let len = page * (RING_PAGES + 1);
        // SAFETY: maps the event's ring (one header page and RING_PAGES data pages), as
        // perf_event_open(2) describes; checked for failure below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            fd,
            base: base.cast(),
            len,
            page,
        })
    }

    fn ioctl(&self, request: libc::c_ulong) -> io::Result<()> {
        // SAFETY: ENABLE/DISABLE take no argument beyond 0, on our own event fd.
        if unsafe { libc::ioctl(self.fd.as_raw_fd(), request, 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads every complete record the kernel has written since the last drain.
    fn drain(&mut self, out: &mut Collected) {
        let data = self.page * RING_PAGES;
        // SAFETY: data_head (offset 1024) and data_tail (offset 1032) are u64 fields of
        // the mapped header page; the kernel writes head, we write tail.
        let (head_ptr, tail_ptr) = unsafe {
            (
                self.base.add(1024).cast::<u64>(),
                self.base.add(1032).cast::<u64>(),
            )
        };
        // SAFETY: aligned u64 reads of the mapped header page.
        let head = unsafe { head_ptr.read_volatile() };
        fence(Ordering::Acquire);
        // SAFETY: as above.
        let mut tail = unsafe { tail_ptr.read_volatile() };
        let ring = |at: u64, n: usize| -> Vec<u8> {
            (0..n)
                .map(|i| {
                    let off = (at as usize + i) % data;
                    // SAFETY: `off` < data: inside the data pages after the header page.
                    unsafe { *self.base.add(self.page + off) }
                })
                .collect()
        };
        while tail + 8 <= head {
            let h = ring(tail, 8);
            let kind = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]);
            let size = u16::from_ne_bytes([h[6], h[7]]) as usize;
            if size < 8 || tail + size as u64 > head {
                break;
            }
            let body = ring(tail + 8, size - 8);
            match kind {
                RECORD_SAMPLE => out.samples.extend(parse_sample(&body)),
                RECORD_LOST if body.len() >= 16 => {
                    out.lost += u64::from_ne_bytes(body[8..16].try_into().unwrap_or_default());
                }
                _ => {}
            }
            tail += size as u64;
        }
        fence(Ordering::Release);
        // SAFETY: an aligned u64 write to the header page's data_tail.
        unsafe { tail_ptr.write_volatile(tail) };
    }
}

/// A sample's body with `SAMPLE_TID | SAMPLE_CALLCHAIN`: pid, tid, nr, ips[nr].
fn parse_sample(body: &[u8]) -> Option<RawSample> {
    let u64_at = |i: usize| -> Option<u64> {
        Some(u64::from_ne_bytes(body.get(i..i + 8)?.try_into().ok()?))
    };
    let pid = u32::from_ne_bytes(body.get(0..4)?.try_into().ok()?);
    let tid = u32::from_ne_bytes(body.get(4..8)?.try_into().ok()?);
    let nr = u64_at(8)? as usize;
    let (mut kernel, mut user) = (Vec::new(), Vec::new());
    let mut in_kernel = true;
    for i in 0..nr {
        let ip = u64_at(16 + 8 * i)?;
        match ip {
            CONTEXT_KERNEL => in_kernel = true,
            CONTEXT_USER => in_kernel = false,
            ip if ip >= CONTEXT_MAX => {}
            ip if in_kernel => kernel.push(ip),
            ip => user.push(ip),
        }
    }
    Some(RawSample {
        pid,
        tid,
        kernel,
        user,
    })
}

/// Sampling on a set of cores.
#[derive(Debug)]
pub struct Sampler {
    rings: Vec<Ring>,
    period: Duration,
}

impl Sampler {
    /// Opens and enables one event per core, sampling every `period` of CPU time. The
    /// error says what the kernel refused and why that usually is.
    pub fn start(cpus: &[usize], period: Duration) -> Result<Self, String> {
        let mut rings = Vec::new();
        for &cpu in cpus {
            let ring = Ring::open(cpu, period).map_err(|e| refused(cpu, &e))?;
            rings.push(ring);
        }
        for r in &rings {
            r.ioctl(IOC_ENABLE)
                .map_err(|e| format!("enabling sampling: {e}"))?;
        }
        Ok(Self { rings, period })
    }

    /// Samples until `until` returns true or `limit` passes, draining the rings every
    /// 10 ms; then stops and returns everything.
    pub fn run(mut self, limit: Duration, until: impl Fn() -> bool) -> Collected {
        let mut out = Collected {
            period: self.period,
            ..Collected::default()
        };
        let end = Instant::now() + limit;
        while Instant::now() < end && !until() {
            std::thread::sleep(Duration::from_millis(10));
            for r in &mut self.rings {
                r.drain(&mut out);
            }
        }
        for r in &mut self.rings {
            let _ = r.ioctl(IOC_DISABLE);
            r.drain(&mut out);
        }
        out
    }
}

/// Why `perf_event_open` failed, in words a user can act on.
/// A [`Sampler`] running on a thread of its own until [`Background::finish`] (or its
/// time limit).
#[derive(Debug)]
pub struct Background {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Collected>,
}

impl Background {
    /// Starts sampling `cpus` every `period` for at most `limit`; the error says what the
    /// kernel refused. (The sampler's rings are mapped memory, so it lives on its thread.)
    pub fn start(cpus: &[usize], period: Duration, limit: Duration) -> Result<Self, String> {
        use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (started_tx, started) = std::sync::mpsc::channel();
        let (cpus, flag) = (cpus.to_vec(), stop.clone());
        let thread = std::thread::spawn(move || match Sampler::start(&cpus, period) {
            Ok(s) => {
                let _ = started_tx.send(Ok(()));
                s.run(limit, || flag.load(Relaxed))
            }
            Err(why) => {
                let _ = started_tx.send(Err(why));
                Collected::default()
            }
        });
        match started.recv() {
            Ok(Ok(())) => Ok(Self { stop, thread }),
            Ok(Err(why)) => Err(why),
            Err(_) => Err("the sampling thread ended before it started".into()),
        }
    }

    /// Stops sampling and returns what was collected.
    pub fn finish(self) -> Result<Collected, String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| "the sampling thread panicked".to_string())
    }
}

fn refused(cpu: usize, e: &io::Error) -> String {
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unreadable".into());
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "perf_event_open on cpu {cpu}: {e} (sampling a whole core needs root or kernel.perf_event_paranoid <= 0; it is {paranoid})"
        ),
        Some(libc::ENOENT) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => format!(
            "perf_event_open on cpu {cpu}: {e} (this kernel or container offers no perf events)"
        ),
        _ => format!("perf_event_open on cpu {cpu}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_body_splits_into_kernel_and_user_frames() {
        let mut body = Vec::new();
        body.extend(42u32.to_ne_bytes());
        body.extend(43u32.to_ne_bytes());
        let ips = [
            CONTEXT_KERNEL,
            0xffff_ffff_8100_0010,
            0xffff_ffff_8100_0020,
            CONTEXT_USER,
            0x5555_0000_1000,
            0x5555_0000_2000,
        ];
        body.extend((ips.len() as u64).to_ne_bytes());
        for ip in ips {
            body.extend(ip.to_ne_bytes());
        }
        let s = parse_sample(&body).expect("a whole sample");
        assert_eq!((s.pid, s.tid), (42, 43));
        assert_eq!(s.kernel, [0xffff_ffff_8100_0010, 0xffff_ffff_8100_0020]);
        assert_eq!(s.user, [0x5555_0000_1000, 0x5555_0000_2000]);
        // A body cut short is no sample, not a panic.
        assert_eq!(parse_sample(&body[..body.len() - 4]), None);
    }
}
