//! `loadgen`: the load generator's CLI, for runs outside `cargo bench` (e.g. against a server
//! on another VM). The same engine the criterion suite uses.
//!
//! Exit codes: 0 ok; 1 stall, time limit or I/O error; 2 bad flags.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use loadgen::units::{parse_duration, parse_size};
use loadgen::{LoadError, Mode, RunConfig, Workload};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    /// Keep-alive, next request when the last was answered.
    Closed,
    /// Keep-alive, --depth requests per write.
    Pipelined,
    /// Connect, write, read, close for every request.
    ConnPerRequest,
    /// Keep-alive at --rate requests/s (the same as closed with --rate).
    Open,
}

/// HTTP/1.1 load generator: closed, pipelined, connection-per-request or open-loop load with
/// HdrHistogram latency, error accounting, a per-second timeline and a stall watchdog.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Target: http://host:port/path or host:port (path then from --path).
    target: String,
    #[arg(short, long, value_enum, default_value_t = ModeArg::Closed)]
    mode: ModeArg,
    /// Connections in total.
    #[arg(short, long, default_value_t = 64)]
    connections: usize,
    /// Threads (one current-thread runtime each); default: available cores.
    #[arg(short, long)]
    threads: Option<usize>,
    /// Measured requests to send (after warm-up).
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Measured duration (after warm-up), e.g. 10s; default 10s unless --requests is given.
    #[arg(short, long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Load before measuring starts, not recorded.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    warmup: Duration,
    /// Open loop: requests per second in total, sent on schedule whether or not earlier
    /// answers came back; latency from each request's intended send time (corrected for
    /// coordinated omission) beside the uncorrected service time. Any mode: pipelined
    /// sends a window of --depth requests per slot.
    #[arg(long)]
    rate: Option<f64>,
    /// Requests per write (--mode pipelined).
    #[arg(long, default_value_t = 16)]
    depth: usize,
    #[arg(long, default_value = "POST")]
    method: String,
    #[arg(long, default_value = "/ingest")]
    path: String,
    /// Body size, e.g. 100, 16KiB (seeded random bytes).
    #[arg(long, default_value = "100", value_parser = parse_size)]
    body_size: usize,
    /// Body from a file instead of random bytes.
    #[arg(long)]
    body_file: Option<std::path::PathBuf>,
    /// Seed for the random body.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Extra header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// No answer for this long with requests outstanding ends the run as a stall.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    stall_timeout: Duration,
    /// One request's answer must arrive within this.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Hard bound on the whole run.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    time_limit: Duration,
    /// Server PID: its fd count and socket states go into a stall report.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Connection-per-request on loopback: source addresses 127.0.0.1..=N.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u8).range(1..))]
    source_addrs: u8,
    /// Print the report as JSON (schema runtime-bench/loadgen/v1) instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the per-second timeline as CSV to this file.
    #[arg(long)]
    csv: Option<std::path::PathBuf>,
    /// Also write the latency histogram as HdrHistogram's percentile distribution (ms) to
    /// FILE, and the whole histogram (base64 V2, µs) as an interval log to FILE.hlog.
    /// Open loop: FILE has the corrected latency; FILE.uncorrected.hgrm the service time
    /// (both are in the .hlog, tagged).
    #[arg(long, value_name = "FILE")]
    hgrm: Option<std::path::PathBuf>,
    /// No progress line even on a terminal.
    #[arg(long)]
    no_progress: bool,
    /// Send the body exactly as given. By default each body's first 32 bytes are replaced
    /// by the request's unique id (`rbid` + run, stream, sequence in hex), and the report
    /// (`--json`: `ids`) lists which ids were answered 2xx, so the topic can be checked
    /// record by record afterwards. Bodies under 32 bytes never carry an id.
    #[arg(long)]
    no_ids: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match config(&args) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("loadgen: {msg}");
            return ExitCode::from(2);
        }
    };
    let findings = loadgen::preflight::run(
        cfg.connections,
        cfg.mode == Mode::ConnPerRequest,
        u32::from(cfg.source_addrs),
    );
    for f in findings {
        if f.level != loadgen::preflight::Level::Ok || !args.json {
            eprintln!("preflight: {f}");
        }
    }
    let (report, code) = match loadgen::run(&cfg) {
        Ok(r) => (r, ExitCode::SUCCESS),
        Err(LoadError::Config(msg)) => {
            eprintln!("loadgen: {msg}");
            return ExitCode::from(2);
        }
        Err(LoadError::Stalled(r)) => {
            eprintln!("loadgen: {}", r.stall_summary());
            (*r, ExitCode::FAILURE)
        }
        Err(LoadError::TimeLimit { limit, report }) => {
            eprintln!("loadgen: run exceeded --time-limit {limit:?}");
            (*report, ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let printed = if args.json {
        report.write_json(&mut out)
    } else {
        report.write_text(&mut out)
    };
    let _ = out.flush();
    if let Err(e) = printed {
        eprintln!("loadgen: writing the report: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(path) = &args.csv {
        let written = std::fs::File::create(path).and_then(|mut f| report.write_csv(&mut f));
        if let Err(e) = written {
            eprintln!("loadgen: --csv {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = &args.hgrm {
        if let Err(e) = write_histograms(&report, path) {
            eprintln!("loadgen: --hgrm {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    code
}

/// `--hgrm FILE`: FILE (and FILE.uncorrected.hgrm in an open loop) and FILE.hlog.
fn write_histograms(report: &loadgen::LoadReport, path: &std::path::Path) -> std::io::Result<()> {
    let Some(h) = &report.histograms else {
        return Err(std::io::Error::other("no histogram in the report"));
    };
    let with_suffix = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    let create = |p: &std::path::Path| {
        std::fs::File::create(p)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))
    };
    let open_loop = report.config.rate.is_some();
    loadgen::hdr::write_hgrm(&h.latency, &mut create(path)?)?;
    let mut tagged = vec![(if open_loop { "corrected" } else { "latency" }, &h.latency)];
    if open_loop {
        loadgen::hdr::write_hgrm(&h.service, &mut create(&with_suffix(".uncorrected.hgrm"))?)?;
        tagged.push(("uncorrected", &h.service));
    }
    let comment = format!(
        "loadgen {} {} connections{}",
        report.config.target,
        report.config.connections,
        report
            .config
            .rate
            .map_or(String::new(), |r| format!(", open loop at {r} req/s"))
    );
    loadgen::hdr::write_hlog(
        &tagged,
        Duration::from_secs_f64(report.elapsed_s.max(0.0)),
        &comment,
        &mut create(&with_suffix(".hlog"))?,
    )
}

fn config(a: &Args) -> Result<RunConfig, String> {
    let (hostport, path) = match a.target.strip_prefix("http://") {
        Some(rest) => match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, a.path.clone()),
        },
        None if a.target.contains("://") => {
            return Err(format!("target {}: only http:// is supported", a.target))
        }
        None => (a.target.as_str(), a.path.clone()),
    };
    let addr: SocketAddr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("target {}: {e}", a.target))?
        .next()
        .ok_or_else(|| format!("target {}: no address", a.target))?;
    let body = match &a.body_file {
        Some(p) => std::fs::read(p).map_err(|e| format!("--body-file {}: {e}", p.display()))?,
        None => loadgen::seeded_bytes(a.body_size, a.seed),
    };
    let mut workload = Workload::with_body(&path, body);
    workload.method = a.method.to_ascii_uppercase();
    workload.host = hostport.to_string();
    for h in &a.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("--header {h:?}: expected \"Name: value\""))?;
        workload
            .headers
            .push((k.trim().to_string(), v.trim().to_string()));
    }
    let mode = match a.mode {
        ModeArg::Open if a.rate.is_none() => return Err("--mode open needs --rate".into()),
        ModeArg::Closed | ModeArg::Open => Mode::Closed,
        ModeArg::Pipelined => Mode::Pipelined { depth: a.depth },
        ModeArg::ConnPerRequest => Mode::ConnPerRequest,
    };
    let mut cfg = RunConfig::new(addr, workload);
    cfg.mode = mode;
    cfg.rate = a.rate;
    cfg.connections = a.connections;
    if let Some(t) = a.threads {
        cfg.threads = t;
    }
    cfg.threads = cfg.threads.min(cfg.connections.max(1));
    cfg.requests = a.requests;
    cfg.duration = match (a.duration, a.requests) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    cfg.warmup = a.warmup;
    cfg.stall_timeout = a.stall_timeout;
    cfg.request_timeout = a.timeout;
    cfg.time_limit = a.time_limit;
    cfg.server_pid = a.server_pid;
    cfg.source_addrs = a.source_addrs;
    cfg.progress = !a.no_progress && !a.json;
    cfg.ids = !a.no_ids;
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}
