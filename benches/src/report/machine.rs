//! Machine facts beyond the CPU's name that change what a syscall, a wake-up or a context
//! switch costs (env.json's `machine`): the CPU's signature and microcode, the hypervisor,
//! the kernel's mitigations and command line, the clock source, the idle states and
//! transparent huge pages. Read once per run; `None` where this machine does not say.

use crate::host::proc as read;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    /// `vendor family/model/stepping`, e.g. `AuthenticAMD 25/1/1`.
    pub signature: Option<String>,
    pub microcode: Option<String>,
    /// `KVM`, `Xen`, ... (from the DMI vendor or /sys/hypervisor), or `none` on bare metal.
    pub hypervisor: Option<String>,
    /// Each vulnerability the kernel mitigates, `name: state`, those not "Not affected".
    pub mitigations: Option<String>,
    pub cmdline: Option<String>,
    pub clocksource: Option<String>,
    /// The cpuidle driver and governor, e.g. `haltpoll/haltpoll`.
    pub cpuidle: Option<String>,
    /// Transparent huge pages, the selected mode (`always`, `madvise`, `never`).
    pub thp: Option<String>,
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
        };
        let signature = match (field("vendor_id"), field("cpu family"), field("model")) {
            (Some(v), Some(f), Some(m)) => Some(format!(
                "{v} {f}/{m}/{}",
                field("stepping").unwrap_or_else(|| "?".into())
            )),
            _ => None,
        };
        let flagged = field("flags").is_some_and(|f| f.split(' ').any(|x| x == "hypervisor"));
        let hypervisor = read("/sys/hypervisor/type")
            .or_else(|| read("/sys/class/dmi/id/sys_vendor").filter(|_| flagged))
            .or_else(|| flagged.then(|| "yes (unnamed)".into()))
            .or_else(|| Some("none".into()));
        let sys = "/sys/devices/system";
        Self {
            signature,
            microcode: field("microcode"),
            hypervisor,
            mitigations: mitigations(&format!("{sys}/cpu/vulnerabilities")),
            cmdline: read("/proc/cmdline"),
            clocksource: read(&format!(
                "{sys}/clocksource/clocksource0/current_clocksource"
            )),
            cpuidle: read(&format!("{sys}/cpu/cpuidle/current_driver")).map(|d| {
                let g = read(&format!("{sys}/cpu/cpuidle/current_governor"))
                    .or_else(|| read(&format!("{sys}/cpu/cpuidle/current_governor_ro")));
                format!("{d}/{}", g.as_deref().unwrap_or("?"))
            }),
            thp: read("/sys/kernel/mm/transparent_hugepage/enabled").and_then(|s| {
                let (_, rest) = s.split_once('[')?;
                Some(rest.split_once(']')?.0.to_string())
            }),
        }
    }
}

/// `name: state` for each file in `dir` whose state is not "Not affected", sorted.
fn mitigations(dir: &str) -> Option<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let state = read(e.path().to_str()?)?;
            (state != "Not affected")
                .then(|| format!("{}: {state}", e.file_name().to_string_lossy()))
        })
        .collect();
    out.sort();
    Some(if out.is_empty() {
        "none needed".into()
    } else {
        out.join("; ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        let m = Machine::read();
        // Every Linux machine says which clock it keeps time with and what CPU it has.
        assert!(
            m.clocksource.as_deref().is_some_and(|c| !c.is_empty()),
            "{m:?}"
        );
        assert!(
            m.signature.as_deref().is_some_and(|s| s.contains('/')),
            "{m:?}"
        );
        assert!(m.hypervisor.is_some());
    }

    #[test]
    fn unknown_mitigation_folders_say_nothing() {
        assert_eq!(mitigations("/nonexistent"), None);
    }
}
