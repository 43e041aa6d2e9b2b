//! `probe`: the harness's hands on the server host (ssh topology). Started over ssh by the
//! harness, it reads requests on stdin and answers on stdout (protocol: `lib.rs`). No
//! daemon and no port: it lives exactly as long as its ssh session, and takes the
//! processes it started with it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use probe::sampler::Background;
use probe::syscalls::{self, Counter};
use probe::{readable, Answer, Host, Line, Op, Reply, Request, Stream, GRACE};

/// Writes whole lines, one writer at a time.
#[derive(Debug, Clone)]
struct Out(Arc<Mutex<std::io::Stdout>>);

impl Out {
    fn send(&self, line: &Line) {
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text.push('\n');
        if let Ok(mut out) = self.0.lock() {
            // The harness is gone if this fails; stdin's end then stops the probe.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        }
    }
}

/// The processes this probe started and has not yet reaped: child number → pid.
type Children = Arc<Mutex<HashMap<u64, u32>>>;

/// What a session has made: processes, and syscall counters on them.
#[derive(Debug)]
struct State {
    out: Out,
    children: Children,
    next_child: u64,
    counters: HashMap<u64, Counter>,
    next_counter: u64,
    samplings: HashMap<u64, Background>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut remove_on_exit = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--version" => {
                println!("probe {}", env!("CARGO_PKG_VERSION"));
                return;
            }
            "--remove-on-exit" => remove_on_exit = args.next(),
            other => {
                eprintln!("probe: unknown argument {other:?} (expected --version or --remove-on-exit DIR)");
                std::process::exit(2);
            }
        }
    }
    raise_nofile();
    let mut state = State {
        out: Out(Arc::new(Mutex::new(std::io::stdout()))),
        children: Arc::default(),
        next_child: 0,
        counters: HashMap::new(),
        next_counter: 0,
        samplings: HashMap::new(),
    };
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let (id, result) = match serde_json::from_str::<Request>(&line) {
            Ok(req) => (Some(req.id), state.serve(req.op)),
            Err(e) => (None, Reply::Error(format!("not a request: {e}"))),
        };
        state.out.send(&Line::Reply { id, result });
    }
    state.counters.clear();
    for (_, s) in state.samplings.drain() {
        let _ = s.finish();
    }
    end(&state.children);
    if let Some(dir) = remove_on_exit {
        let _ = std::fs::remove_dir_all(dir);
    }
}

impl State {
    /// The next number for a counter or a sampling (one sequence for both).
    fn number(&mut self) -> u64 {
        self.next_counter += 1;
        self.next_counter
    }

    /// The running process `child`'s pid.
    fn pid(&self, child: u64) -> Option<u32> {
        self.children.lock().ok()?.get(&child).copied()
    }

    fn serve(&mut self, op: Op) -> Reply {
        match op {
            Op::Hello => Reply::Ok(Answer::Hello(host())),
            Op::Read { paths } => Reply::Ok(Answer::Texts(
                paths
                    .iter()
                    .map(|p| {
                        readable(p)
                            .then(|| std::fs::read_to_string(p).ok())
                            .flatten()
                    })
                    .collect(),
            )),
            Op::List { path } if !readable(&path) => {
                Reply::Error(format!("{path}: not readable (only {:?})", probe::READABLE))
            }
            Op::List { path } => Reply::Ok(Answer::Names(std::fs::read_dir(&path).ok().map(|d| {
                d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                    .collect()
            }))),
            Op::Spawn {
                argv,
                cpus,
                env_remove,
            } => {
                self.next_child += 1;
                let child = self.next_child;
                match spawn(child, &argv, cpus, &env_remove, &self.out, &self.children) {
                    Ok(pid) => Reply::Ok(Answer::Spawned { child, pid }),
                    Err(e) => Reply::Error(format!("starting {argv:?}: {e}")),
                }
            }
            Op::Signal { child, signal } => {
                match self.pid(child) {
                    // SAFETY: kill(2) on a child this probe started and has not reaped.
                    Some(pid) if unsafe { libc::kill(pid as libc::pid_t, signal) } == 0 => {
                        Reply::Ok(Answer::Done)
                    }
                    Some(_) => Reply::Error(format!(
                        "signal {signal} to child {child}: {}",
                        std::io::Error::last_os_error()
                    )),
                    None => Reply::Error(format!("no running child {child}")),
                }
            }
            Op::CountSyscalls { child, events } => {
                let Some(pid) = self.pid(child) else {
                    return Reply::Error(format!("no running child {child}"));
                };
                let events: Vec<&str> = events.iter().map(String::as_str).collect();
                match syscalls::mount_tracefs().and_then(|t| Counter::attach(pid, &t, &events)) {
                    Ok(c) => {
                        let counter = self.number();
                        self.counters.insert(counter, c);
                        Reply::Ok(Answer::Counter { counter })
                    }
                    Err(why) => Reply::Error(why),
                }
            }
            Op::ReadCounter { counter } => match self.counters.get(&counter) {
                Some(c) => Reply::Ok(Answer::Counts(c.read())),
                None => Reply::Error(format!("no counter {counter}")),
            },
            Op::DropCounter { counter } => match self.counters.remove(&counter) {
                Some(_) => Reply::Ok(Answer::Done),
                None => Reply::Error(format!("no counter {counter}")),
            },
            Op::Sample {
                cpus,
                period_us,
                limit_s,
            } => {
                let period = std::time::Duration::from_micros(period_us);
                let limit = std::time::Duration::from_secs(limit_s);
                match Background::start(&cpus, period, limit) {
                    Ok(b) => {
                        let sampling = self.number();
                        self.samplings.insert(sampling, b);
                        Reply::Ok(Answer::Sampling { sampling })
                    }
                    Err(why) => Reply::Error(why),
                }
            }
            Op::StopSampling { sampling } => match self.samplings.remove(&sampling) {
                Some(b) => match b.finish() {
                    Ok(c) => Reply::Ok(Answer::Samples(c)),
                    Err(why) => Reply::Error(why),
                },
                None => Reply::Error(format!("no sampling {sampling}")),
            },
        }
    }
}

fn spawn(
    child_no: u64,
    argv: &[String],
    cpus: Option<Vec<usize>>,
    env_remove: &[String],
    out: &Out,
    children: &Children,
) -> std::io::Result<u32> {
    let (bin, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty argv"))?;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in env_remove {
        cmd.env_remove(v);
    }
    // SAFETY: prctl and sched_setaffinity are async-signal-safe; `cpus` was allocated
    // before the fork and is only read.
    unsafe {
        cmd.pre_exec(move || {
            // If the probe dies without its clean-up (SIGKILL), its processes still end.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A group of its own: the end of the session signals whatever it started too.
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(cpus) = &cpus {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                for &c in cpus {
                    libc::CPU_SET(c, &mut set);
                }
                if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pid = child.id();
    if let Ok(mut c) = children.lock() {
        c.insert(child_no, pid);
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let readers = [
        child
            .stdout
            .take()
            .map(|s| (Stream::Stdout, Box::new(s) as Box<dyn Read + Send>)),
        child
            .stderr
            .take()
            .map(|s| (Stream::Stderr, Box::new(s) as Box<dyn Read + Send>)),
    ]
    .into_iter()
    .flatten()
    .map(|(stream, pipe)| {
        let (out, done) = (out.clone(), done_tx.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                out.send(&Line::Output {
                    child: child_no,
                    stream,
                    line,
                });
            }
            let _ = done.send(());
        })
    })
    .count();
    drop(done_tx);
    let (out, children) = (out.clone(), children.clone());
    std::thread::spawn(move || {
        let status = child.wait().map_or(-1, |s| s.into_raw());
        // Its last lines before its end, unless something it started still holds the pipes.
        let until = Instant::now() + std::time::Duration::from_secs(1);
        for _ in 0..readers {
            let left = until.saturating_duration_since(Instant::now());
            if done_rx.recv_timeout(left).is_err() {
                break;
            }
        }
        if let Ok(mut c) = children.lock() {
            c.remove(&child_no);
        }
        out.send(&Line::Exit {
            child: child_no,
            status,
        });
    });
    Ok(pid)
}

/// The session is over: SIGTERM to every process still running, SIGKILL to any left
/// after [`GRACE`]; returns once all are reaped (or a second grace has passed).
fn end(children: &Children) {
    // Each child leads its own process group (see `spawn`): signal the group.
    let signal_all = |sig| {
        if let Ok(c) = children.lock() {
            for &pid in c.values() {
                // SAFETY: kill(2) on the process groups of our own unreaped children.
                unsafe {
                    libc::kill(-(pid as libc::pid_t), sig);
                }
            }
        }
    };
    let running = || children.lock().map_or(0, |c| c.len());
    signal_all(libc::SIGTERM);
    let t0 = Instant::now();
    while running() > 0 && t0.elapsed() < GRACE {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if running() > 0 {
        eprintln!(
            "probe: {} process(es) still running {GRACE:?} after SIGTERM; killing",
            running()
        );
        signal_all(libc::SIGKILL);
        while running() > 0 && t0.elapsed() < 2 * GRACE {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

fn host() -> Host {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu_model = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Host {
        version: env!("CARGO_PKG_VERSION").into(),
        hostname: read("/proc/sys/kernel/hostname").trim().into(),
        kernel: read("/proc/sys/kernel/osrelease").trim().into(),
        cpu_model,
        cpus: own_cpus(),
        io_uring: io_uring(),
        // SAFETY: sysconf has no preconditions.
        clock_ticks: u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100),
        nofile: nofile(),
        somaxconn: read("/proc/sys/net/core/somaxconn").trim().parse().ok(),
    }
}

/// The servers it starts inherit its fd limit: an ssh session's soft limit (often 1024)
/// would cap their connections, so it goes to the hard limit.
fn raise_nofile() {
    if let Some((soft, hard)) = nofile() {
        if soft < hard {
            let l = libc::rlimit {
                rlim_cur: hard,
                rlim_max: hard,
            };
            // SAFETY: setrlimit with a valid struct; failure leaves the limit as it was.
            unsafe {
                libc::setrlimit(libc::RLIMIT_NOFILE, &l);
            }
        }
    }
}

fn nofile() -> Option<(u64, u64)> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills a valid struct.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } == 0)
        .then_some((l.rlim_cur, l.rlim_max))
}

fn own_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Whether this host lets a process set up an io_uring (kernel, seccomp, sysctl).
fn io_uring() -> String {
    // struct io_uring_params is 120 bytes; zeroed asks for defaults.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup(2) with a valid params buffer; the fd is closed at once.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd < 0 {
        return format!(
            "unavailable: io_uring_setup failed: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: a descriptor we just got.
    unsafe {
        libc::close(fd as libc::c_int);
    }
    "available".into()
}
