//! The servers' build: both servers and the probe, by one nested `cargo build`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, bail, Context, Result};

/// Cargo profile the server binaries are built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildProfile {
    Release,
    Debug,
}

static BUILT: OnceLock<Mutex<Vec<(BuildProfile, Built)>>> = OnceLock::new();

/// The binaries `cargo build` made for the harness: both servers and the probe.
#[derive(Debug, Clone)]
struct Built {
    tokio: PathBuf,
    uring: PathBuf,
    probe: PathBuf,
}

/// Paths of (server-tokio, server-uring), built with `profile` by a nested `cargo build`
/// (a no-op when up to date). Built once per process.
pub fn server_binaries(profile: BuildProfile) -> Result<(PathBuf, PathBuf)> {
    let b = build(profile)?;
    Ok((b.tokio, b.uring))
}

/// The probe's path (`benches/probe`), built with the servers: it goes to the server host
/// with them in the ssh topology.
pub fn probe_binary(profile: BuildProfile) -> Result<PathBuf> {
    Ok(build(profile)?.probe)
}

fn build(profile: BuildProfile) -> Result<Built> {
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().map_err(|_| anyhow!("build lock poisoned"))?;
    if let Some((_, b)) = built.iter().find(|(p, _)| *p == profile) {
        return Ok(b.clone());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "-p",
            "server-tokio",
            "-p",
            "server-uring",
            "-p",
            "runtime-bench-probe",
            "--bin",
            "server-tokio",
            "--bin",
            "server-uring",
            "--bin",
            "probe",
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if profile == BuildProfile::Release {
        cmd.arg("--release");
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {cargo} build for the servers"))?;
    if !out.status.success() {
        bail!(
            "building the servers failed ({}); see the compiler output above",
            out.status
        );
    }
    let mut found = (None, None, None);
    for line in out.stdout.split(|&b| b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(name), Some(exe)) = (
            msg.pointer("/target/name").and_then(|v| v.as_str()),
            msg.get("executable").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        match name {
            "server-tokio" => found.0 = Some(PathBuf::from(exe)),
            "server-uring" => found.1 = Some(PathBuf::from(exe)),
            "probe" => found.2 = Some(PathBuf::from(exe)),
            _ => {}
        }
    }
    let (Some(tokio), Some(uring), Some(probe)) = found else {
        bail!("cargo build did not report the server and probe executables");
    };
    let b = Built {
        tokio,
        uring,
        probe,
    };
    built.push((profile, b.clone()));
    Ok(b)
}
