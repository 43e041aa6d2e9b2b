//! `perf_event_open(2)`, the part both ends use: the harness's CPU sampler
//! (`benches/src/sampling/`) and the syscall counters ([`crate::syscalls`]), which the
//! probe runs on the server host.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER5` (112 bytes): the fields the
/// harness sets (its CPU sampler, the syscall counters in [`crate::syscalls`]), the rest zero.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Attr {
    pub kind: u32,
    pub size: u32,
    pub config: u64,
    pub sample_period: u64,
    pub sample_type: u64,
    pub read_format: u64,
    /// Bit 0 `disabled`, bit 1 `inherit`, bit 6 `exclude_hv`, ...
    pub flags: u64,
    pub wakeup_events: u32,
    pub bp_type: u32,
    pub config1: u64,
    pub config2: u64,
    pub branch_sample_type: u64,
    pub sample_regs_user: u64,
    pub sample_stack_user: u32,
    pub clockid: i32,
    pub sample_regs_intr: u64,
    pub aux_watermark: u32,
    pub sample_max_stack: u16,
    pub reserved: u16,
}

pub const IOC_ENABLE: libc::c_ulong = 0x2400;
pub const IOC_DISABLE: libc::c_ulong = 0x2401;
pub const IOC_RESET: libc::c_ulong = 0x2403;
const FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// `perf_event_open(attr, pid, cpu, no group, CLOEXEC)`: pid -1 with a cpu is every task
/// on that cpu; a pid (a thread id) with cpu -1 is that thread wherever it runs.
pub fn open_event(attr: &Attr, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    let attr = Attr {
        size: std::mem::size_of::<Attr>() as u32,
        ..*attr
    };
    // SAFETY: perf_event_open reads `attr.size` bytes of a live Attr; the fd it returns
    // is owned by the OwnedFd below.
    let raw = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const Attr,
            pid,
            cpu,
            -1 as libc::c_int,
            FLAG_FD_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw as i32) })
}

#[cfg(test)]
mod tests {
    #[test]
    fn attr_is_the_kernels_size() {
        assert_eq!(
            std::mem::size_of::<super::Attr>(),
            112,
            "PERF_ATTR_SIZE_VER5"
        );
    }
}
