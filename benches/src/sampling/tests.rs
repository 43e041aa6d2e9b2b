//! The profiler on child processes whose answer is known: one spins in a named function,
//! one loops on a syscall. The children are this test binary again, running an ignored
//! test that does the work when `RUNTIME_BENCH_CHILD` asks for it.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::*;

const CHILD: &str = "RUNTIME_BENCH_CHILD";

#[inline(never)]
fn runtime_bench_spin_here(until: Instant) -> u64 {
    let mut x = 0u64;
    while Instant::now() < until {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
    x
}

#[inline(never)]
fn runtime_bench_syscall_loop(until: Instant) {
    while Instant::now() < until {
        // SAFETY: getppid has no preconditions; a real syscall every time.
        std::hint::black_box(unsafe { libc::getppid() });
    }
}

/// Not a test of its own: the child's body, run by [`child`].
#[test]
#[ignore = "the profiler tests' child process; does nothing on its own"]
fn child_work() {
    let until = Instant::now() + Duration::from_secs(4);
    match std::env::var(CHILD).as_deref() {
        Ok("spin") => {
            runtime_bench_spin_here(until);
        }
        Ok("syscall") => runtime_bench_syscall_loop(until),
        _ => {}
    }
}

/// Starts this binary as a child doing `work` for 4 s.
fn child(work: &str) -> Child {
    let exe = std::env::current_exe().expect("test binary");
    Command::new(exe)
        .args([
            "--exact",
            "sampling::tests::child_work",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD, work)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("child")
}

/// Profiles `work` in a child for 0.8 s (after 0.3 s for it to start), on every core.
fn profile(work: &str) -> Stacks {
    let mut c = child(work);
    std::thread::sleep(Duration::from_millis(300));
    let cpus = crate::layout::online_cpus_list();
    let (captured, ()) = capture(&Transport::Local, &cpus, c.id(), "child", || {
        std::thread::sleep(Duration::from_millis(800))
    });
    let _ = c.kill();
    let _ = c.wait();
    captured
        .expect("sampling (the tests run as root, as CI does)")
        .stacks
        .under("child")
}

fn share(st: &Stacks, f: impl Fn(&str) -> bool) -> f64 {
    let hit: u64 = st
        .counts
        .iter()
        .filter(|(k, _)| f(k))
        .map(|(_, n)| *n)
        .sum();
    hit as f64 / st.total().max(1) as f64
}

#[test]
fn a_spinning_function_dominates_its_profile() {
    let st = profile("spin");
    assert!(st.total() >= 100, "too few samples: {}", st.total());
    let spin = share(&st, |k| k.contains("runtime_bench_spin_here"));
    assert!(
        spin >= 0.5,
        "runtime_bench_spin_here in {:.0} % of the child's samples:\n{}",
        spin * 100.0,
        st.to_folded()
    );
}

#[test]
fn a_syscall_loop_shows_kernel_frames() {
    let st = profile("syscall");
    assert!(st.total() >= 100, "too few samples: {}", st.total());
    let kernel = share(&st, |k| k.ends_with("_[k]"));
    assert!(
        kernel >= 0.2,
        "kernel frames in {:.0} % of the child's samples:\n{}",
        kernel * 100.0,
        st.to_folded()
    );
    assert!(
        st.counts.keys().any(|k| k.contains("getppid_[k]")),
        "the syscall itself is named:\n{}",
        st.to_folded()
    );
    // User frames above the C library are unwound too. glibc's getppid keeps no frame
    // pointer, so the chain skips its immediate caller (the loop) and goes on from the
    // loop's caller: the frame-pointer unwinder's known blind spot, said in the report.
    assert!(
        share(&st, |k| k.contains("child_work") && k.contains("getppid")) >= 0.3,
        "{}",
        st.to_folded()
    );
}
