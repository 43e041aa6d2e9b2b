//! How each thread's io_uring is set up: the flags an io_uring engineer asks about first,
//! each checked against the kernel at start-up (a refused flag is a start-up error naming
//! it, never a server that says "listening" and then stalls).

use std::fmt::Write;

/// server-uring's own flags: the ring setup.
#[derive(Debug, Clone, clap::Args)]
pub struct RingArgs {
    /// Submission queue entries per ring (a power of two, 2..=32768).
    #[arg(long, default_value_t = 1024, value_parser = entries)]
    pub ring_entries: u32,

    /// A kernel thread polls the submission queue (IORING_SETUP_SQPOLL), so submitting
    /// needs no io_uring_enter; it sleeps after IDLE_MS without work (default 1000). It is a
    /// thread of this process: its CPU time counts as the server's.
    #[arg(long, value_name = "IDLE_MS", num_args = 0..=1, default_missing_value = "1000")]
    pub sqpoll: Option<u32>,

    /// Pin each ring's SQPOLL thread to this CPU (IORING_SETUP_SQ_AFF).
    #[arg(long, value_name = "CPU", requires = "sqpoll")]
    pub sqpoll_cpu: Option<u32>,

    /// IORING_SETUP_COOP_TASKRUN: completions are not run by interrupting the thread
    /// (an IPI) but when it next enters the kernel.
    #[arg(long)]
    pub coop_taskrun: bool,

    /// IORING_SETUP_SINGLE_ISSUER: only the thread that made the ring submits to it (true of
    /// every ring here), which lets the kernel skip some locking.
    #[arg(long)]
    pub single_issuer: bool,

    /// IORING_SETUP_DEFER_TASKRUN: refused, see `DEFER_TASKRUN_REFUSED`.
    #[arg(long)]
    pub defer_taskrun: bool,

    /// Register N read buffers of 16 KiB per thread (tokio-uring's FixedBufPool) and read
    /// into them with READ_FIXED; a connection that finds none free reads as usual.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub fixed_buffers: Option<u16>,
}

/// Why `--defer-taskrun` is refused: with IORING_SETUP_DEFER_TASKRUN the kernel runs
/// completions only inside io_uring_enter(GETEVENTS). tokio-uring 0.5 learns of completions
/// from the ring fd's epoll readiness and then only reads the completion queue; it enters
/// the kernel to submit, never to get events, so deferred completions are never run and
/// every connection stalls (measured: see results/README.md, "io_uring setup").
pub const DEFER_TASKRUN_REFUSED: &str = "--defer-taskrun: refused: tokio-uring 0.5 waits for completions through epoll on the ring fd and never calls io_uring_enter with GETEVENTS, which IORING_SETUP_DEFER_TASKRUN needs to run them: every connection would stall";

fn entries(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if !(2..=32_768).contains(&n) || !n.is_power_of_two() {
        return Err(format!("{n} is not a power of two between 2 and 32768"));
    }
    Ok(n)
}

impl RingArgs {
    /// The kernel builder with every requested flag.
    fn uring(&self, only: Option<&str>) -> io_uring::Builder {
        let mut b = tokio_uring::uring_builder();
        let on = |flag: &str| only.is_none_or(|o| o == flag);
        if let (Some(idle), true) = (self.sqpoll, on("--sqpoll")) {
            b.setup_sqpoll(idle);
            if let Some(cpu) = self.sqpoll_cpu {
                b.setup_sqpoll_cpu(cpu);
            }
        }
        if self.coop_taskrun && on("--coop-taskrun") {
            b.setup_coop_taskrun();
        }
        if self.single_issuer && on("--single-issuer") {
            b.setup_single_issuer();
        }
        b
    }

    /// tokio-uring's builder for one thread's ring.
    pub fn builder(&self) -> tokio_uring::Builder {
        let mut b = tokio_uring::builder();
        b.entries(self.ring_entries)
            .uring_builder(&self.uring(None));
        b
    }

    /// Checks each requested flag against this kernel with a small ring of its own, so a
    /// refusal names the flag. Errors are the message to print.
    pub fn check(&self) -> Result<(), String> {
        if self.defer_taskrun {
            return Err(DEFER_TASKRUN_REFUSED.into());
        }
        let mut flags = Vec::new();
        if self.sqpoll.is_some() {
            flags.push("--sqpoll");
        }
        if self.coop_taskrun {
            flags.push("--coop-taskrun");
        }
        if self.single_issuer {
            flags.push("--single-issuer");
        }
        for flag in flags {
            if let Err(e) = self.uring(Some(flag)).build(2) {
                let more = if flag == "--sqpoll" && self.sqpoll_cpu.is_some() {
                    " (with --sqpoll-cpu: is that CPU online and allowed?)"
                } else {
                    ""
                };
                return Err(format!("{flag}: this kernel refused it{more}: {e}"));
            }
        }
        Ok(())
    }

    /// The ring setup, for the readiness line and reports.
    pub fn describe(&self) -> String {
        let mut o = format!("ring {} entries", self.ring_entries);
        if let Some(idle) = self.sqpoll {
            let _ = write!(o, ", sqpoll idle {idle} ms");
            if let Some(cpu) = self.sqpoll_cpu {
                let _ = write!(o, " on cpu {cpu}");
            }
        }
        for (on, name) in [
            (self.coop_taskrun, "coop-taskrun"),
            (self.single_issuer, "single-issuer"),
        ] {
            if on {
                let _ = write!(o, ", {name}");
            }
        }
        if let Some(n) = self.fixed_buffers {
            let _ = write!(o, ", {n} fixed buffers");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        ring: RingArgs,
    }

    fn parse(args: &[&str]) -> Result<RingArgs, clap::Error> {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|t| t.ring)
    }

    #[test]
    fn flags_parse_and_describe_themselves() {
        let r = parse(&[]).expect("defaults");
        assert_eq!(r.describe(), "ring 1024 entries");
        let r = parse(&["--sqpoll", "--coop-taskrun", "--single-issuer"]).expect("flags");
        assert_eq!(r.sqpoll, Some(1000));
        assert_eq!(
            r.describe(),
            "ring 1024 entries, sqpoll idle 1000 ms, coop-taskrun, single-issuer"
        );
        let r = parse(&[
            "--sqpoll",
            "50",
            "--sqpoll-cpu",
            "0",
            "--ring-entries",
            "256",
        ])
        .expect("flags");
        assert_eq!(
            (r.sqpoll, r.sqpoll_cpu, r.ring_entries),
            (Some(50), Some(0), 256)
        );
        // Bad values name the flag.
        let e = parse(&["--ring-entries", "1000"])
            .expect_err("not a power of two")
            .to_string();
        assert!(e.contains("--ring-entries"), "{e}");
        let e = parse(&["--sqpoll-cpu", "1"])
            .expect_err("needs --sqpoll")
            .to_string();
        assert!(e.contains("--sqpoll"), "{e}");
    }

    #[test]
    fn defer_taskrun_is_refused_with_the_reason() {
        let r = parse(&["--defer-taskrun", "--single-issuer"]).expect("parses");
        let e = r.check().expect_err("refused");
        assert!(
            e.starts_with("--defer-taskrun: refused") && e.contains("GETEVENTS"),
            "{e}"
        );
    }

    #[test]
    fn the_kernels_answer_names_the_flag() {
        // An SQPOLL thread pinned to a CPU that cannot exist is refused by the kernel.
        let r = parse(&["--sqpoll", "--sqpoll-cpu", "4095"]).expect("parses");
        match crate::ring::RingArgs::check(&r) {
            Err(e) => assert!(e.starts_with("--sqpoll: this kernel refused it"), "{e}"),
            Ok(()) => panic!("a ring with its SQPOLL thread on CPU 4095 was accepted"),
        }
    }
}
