//! The probe's protocol, against the real binary: every request is answered, bad input
//! gets an error line, and the probe leaves nothing running when its stdin ends.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use probe::{Answer, Line, Reply, Stream};

struct Probe {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Line>,
}

impl Probe {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_probe"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("probe starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                let line = serde_json::from_str(&l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("open");
        writeln!(stdin, "{text}").expect("write");
    }

    fn next(&self) -> Line {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a line within 10 s")
    }

    /// The reply to `id`, collecting other lines on the way.
    fn reply(&self, id: Option<u64>, others: &mut Vec<Line>) -> Reply {
        loop {
            match self.next() {
                Line::Reply { id: i, result } if i == id => return result,
                l => others.push(l),
            }
        }
    }
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn every_request_is_answered_and_bad_input_gets_an_error_line() {
    let mut p = Probe::start(&[]);
    let mut others = Vec::new();
    p.send(r#"{"id":1,"op":"hello"}"#);
    let Reply::Ok(Answer::Hello(host)) = p.reply(Some(1), &mut others) else {
        panic!("hello")
    };
    assert_eq!(host.version, env!("CARGO_PKG_VERSION"));
    assert!(!host.cpus.is_empty() && !host.kernel.is_empty(), "{host:?}");
    // Its processes inherit the fd limit: raised to the hard one.
    assert!(
        host.nofile.is_some_and(|(soft, hard)| soft == hard),
        "{host:?}"
    );
    assert!(host.somaxconn.is_some_and(|m| m > 0), "{host:?}");
    p.send("this is not json");
    assert!(matches!(p.reply(None, &mut others), Reply::Error(e) if e.contains("not a request")));
    p.send(r#"{"id":2,"op":"reboot"}"#);
    assert!(matches!(p.reply(None, &mut others), Reply::Error(e) if e.contains("reboot")));
    let me = std::process::id();
    p.send(&format!(
        r#"{{"id":3,"op":"read","paths":["/proc/{me}/stat","/etc/hostname","/proc/no-such"]}}"#
    ));
    let Reply::Ok(Answer::Texts(t)) = p.reply(Some(3), &mut others) else {
        panic!("read")
    };
    assert!(
        t[0].as_deref()
            .is_some_and(|s| s.starts_with(&me.to_string())),
        "{t:?}"
    );
    assert_eq!(t[1], None, "outside /proc and /sys/devices/system/cpu");
    assert_eq!(t[2], None);
    p.send(&format!(
        r#"{{"id":4,"op":"list","path":"/proc/{me}/task"}}"#
    ));
    assert!(
        matches!(p.reply(Some(4), &mut others), Reply::Ok(Answer::Names(Some(n))) if !n.is_empty())
    );
    p.send(r#"{"id":5,"op":"list","path":"/root"}"#);
    assert!(matches!(p.reply(Some(5), &mut others), Reply::Error(e) if e.contains("not readable")));
    p.send(r#"{"id":6,"op":"spawn","argv":["/no/such/binary"]}"#);
    assert!(
        matches!(p.reply(Some(6), &mut others), Reply::Error(e) if e.contains("/no/such/binary"))
    );
    p.send(r#"{"id":7,"op":"signal","child":99,"signal":15}"#);
    assert!(
        matches!(p.reply(Some(7), &mut others), Reply::Error(e) if e.contains("no running child 99"))
    );
    assert!(others.is_empty(), "{others:?}");
    drop(p.stdin.take());
    let status = p.child.wait().expect("probe exits at the end of its input");
    assert!(status.success(), "{status}");
}

#[test]
fn started_processes_stream_output_take_signals_and_report_their_end() {
    let mut p = Probe::start(&[]);
    let mut others = Vec::new();
    p.send(r#"{"id":1,"op":"spawn","argv":["sh","-c","echo ready; echo oops >&2; exec sleep 60"],"cpus":[0]}"#);
    let Reply::Ok(Answer::Spawned { child, pid }) = p.reply(Some(1), &mut others) else {
        panic!("spawn")
    };
    let affinity = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(affinity.contains("Cpus_allowed_list:\t0\n"), "{affinity}");
    let printed = |others: &Vec<Line>, s| {
        others.iter().any(|l| {
            matches!(l, Line::Output { child: c, stream, line } if *c == child && *stream == s && !line.is_empty())
        })
    };
    while !(printed(&others, Stream::Stdout) && printed(&others, Stream::Stderr)) {
        others.push(p.next());
    }
    p.send(&format!(
        r#"{{"id":2,"op":"signal","child":{child},"signal":15}}"#
    ));
    assert_eq!(p.reply(Some(2), &mut others), Reply::Ok(Answer::Done));
    let t0 = Instant::now();
    while !others.iter().any(|l| matches!(l, Line::Exit { .. })) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no exit line: {others:?}"
        );
        others.push(p.next());
    }
    use std::os::unix::process::ExitStatusExt;
    let Some(Line::Exit { status, .. }) = others.last() else {
        panic!("the exit comes after the output: {others:?}")
    };
    assert_eq!(
        std::process::ExitStatus::from_raw(*status).signal(),
        Some(15)
    );
}

#[test]
fn the_end_of_the_session_ends_everything_it_started_and_removes_its_directory() {
    let dir = std::env::temp_dir().join(format!("probe-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut p = Probe::start(&["--remove-on-exit", dir.to_str().expect("utf-8")]);
    let mut others = Vec::new();
    // One obeys SIGTERM; one ignores it (and has a child of its own, in its group).
    p.send(r#"{"id":1,"op":"spawn","argv":["sleep","60"]}"#);
    p.send(r#"{"id":2,"op":"spawn","argv":["sh","-c","trap '' TERM; sleep 61 & wait"]}"#);
    let mut pids = Vec::new();
    for id in [1, 2] {
        let Reply::Ok(Answer::Spawned { pid, .. }) = p.reply(Some(id), &mut others) else {
            panic!("spawn")
        };
        pids.push(pid);
    }
    std::thread::sleep(Duration::from_millis(200));
    let grandchild =
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", pids[1], pids[1]))
            .expect("children")
            .trim()
            .parse::<u32>()
            .expect("sh started sleep");
    drop(p.stdin.take());
    let t0 = Instant::now();
    let status = p.child.wait().expect("exits");
    assert!(status.success(), "{status}");
    assert!(t0.elapsed() < probe::GRACE * 2 + Duration::from_secs(2));
    for pid in pids.iter().chain([&grandchild]) {
        assert!(!alive(*pid), "{pid} outlived the probe's session");
    }
    assert!(!dir.exists(), "--remove-on-exit");
}

#[test]
fn counts_the_syscalls_of_a_process_it_started_and_only_those() {
    let dir = std::env::temp_dir().join(format!("probe-count-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let go = dir.join("go");
    let mut p = Probe::start(&[]);
    let mut others = Vec::new();
    // Waits for `go`, then makes 10,000 getppid calls in a process it starts.
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.02; done; python3 -c 'import os\nfor _ in range(10000): os.getppid()'; echo counted; exec sleep 60",
        go.display()
    );
    let spawn = serde_json::json!({"id": 1, "op": "spawn", "argv": ["sh", "-c", script]});
    p.send(&spawn.to_string());
    let Reply::Ok(Answer::Spawned { child, .. }) = p.reply(Some(1), &mut others) else {
        panic!("spawn")
    };
    let events = r#"["syscalls/sys_enter_getppid","raw_syscalls/sys_enter"]"#;
    p.send(&format!(
        r#"{{"id":2,"op":"count_syscalls","child":{},"events":{events}}}"#,
        child + 1
    ));
    let Reply::Error(e) = p.reply(Some(2), &mut others) else {
        panic!("a process the probe did not start is not counted")
    };
    assert!(e.contains("no running child"), "{e}");
    p.send(&format!(
        r#"{{"id":3,"op":"count_syscalls","child":{child},"events":{events}}}"#
    ));
    let counter = match p.reply(Some(3), &mut others) {
        Reply::Ok(Answer::Counter { counter }) => counter,
        Reply::Error(why) => {
            // Not root, or no tracefs and no right to mount it: said, not hidden.
            eprintln!("SKIPPED counts_the_syscalls_of_a_process_it_started: {why}");
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        other => panic!("count_syscalls answered {other:?}"),
    };
    std::fs::write(&go, "").expect("go");
    let t0 = Instant::now();
    while !others
        .iter()
        .any(|l| matches!(l, Line::Output { line, .. } if line == "counted"))
    {
        assert!(t0.elapsed() < Duration::from_secs(30), "{others:?}");
        others.push(p.next());
    }
    p.send(&format!(
        r#"{{"id":4,"op":"read_counter","counter":{counter}}}"#
    ));
    let Reply::Ok(Answer::Counts(counts)) = p.reply(Some(4), &mut others) else {
        panic!("read_counter")
    };
    // The 10,000 calls of a process started after the counter was attached (inherited),
    // plus the few the shell and the interpreter's start-up make (48 here).
    assert!(
        (10_000..10_500).contains(&counts[0]),
        "getppid calls counted: {counts:?}"
    );
    assert!(counts[1] > counts[0], "all syscalls: {counts:?}");
    p.send(&format!(
        r#"{{"id":5,"op":"drop_counter","counter":{counter}}}"#
    ));
    assert_eq!(p.reply(Some(5), &mut others), Reply::Ok(Answer::Done));
    p.send(&format!(
        r#"{{"id":6,"op":"read_counter","counter":{counter}}}"#
    ));
    assert!(matches!(p.reply(Some(6), &mut others), Reply::Error(_)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn samples_the_cores_it_is_asked_for_and_sends_the_samples_back() {
    let mut p = Probe::start(&[]);
    let mut others = Vec::new();
    // A process spinning on core 0.
    p.send(r#"{"id":1,"op":"spawn","argv":["sh","-c","while :; do :; done"],"cpus":[0]}"#);
    let Reply::Ok(Answer::Spawned { pid, .. }) = p.reply(Some(1), &mut others) else {
        panic!("spawn")
    };
    p.send(r#"{"id":2,"op":"sample","cpus":[0],"period_us":1000,"limit_s":10}"#);
    let sampling = match p.reply(Some(2), &mut others) {
        Reply::Ok(Answer::Sampling { sampling }) => sampling,
        Reply::Error(why) => {
            // Not root (perf_event_paranoid): said, not hidden.
            eprintln!("SKIPPED samples_the_cores_it_is_asked_for: {why}");
            return;
        }
        other => panic!("sample answered {other:?}"),
    };
    std::thread::sleep(Duration::from_millis(500));
    p.send(&format!(
        r#"{{"id":3,"op":"stop_sampling","sampling":{sampling}}}"#
    ));
    let Reply::Ok(Answer::Samples(c)) = p.reply(Some(3), &mut others) else {
        panic!("stop_sampling")
    };
    // Core 0's clock ticks every 1 ms for 0.5 s: ~500 samples, many of them the spinner's
    // (it shares the core with whatever else runs here).
    let spinner = c.samples.iter().filter(|s| s.pid == pid).count();
    assert!(
        (100..=1000).contains(&c.samples.len()) && spinner * 10 > c.samples.len(),
        "{} samples, {spinner} of the spinner",
        c.samples.len()
    );
    assert!(c
        .samples
        .iter()
        .any(|s| s.pid == pid && !(s.user.is_empty() && s.kernel.is_empty())));
    p.send(&format!(
        r#"{{"id":4,"op":"stop_sampling","sampling":{sampling}}}"#
    ));
    assert!(matches!(p.reply(Some(4), &mut others), Reply::Error(_)));
}
