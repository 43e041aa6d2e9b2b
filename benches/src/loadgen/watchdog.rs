//! Server-side facts for a stall report: open fds and TCP socket states on the server's
//! port, read from /proc (Linux).

use std::collections::BTreeMap;

/// What the server looked like when progress stopped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerFacts {
    pub pid: u32,
    /// Open file descriptors (`/proc/PID/fd`); `None` if unreadable (process gone?).
    pub open_fds: Option<usize>,
    /// The fd soft limit (`/proc/PID/limits`, "Max open files").
    pub fd_limit: Option<u64>,
    /// TCP sockets with the server's port on either end, by state (ESTABLISHED, TIME_WAIT...).
    pub socket_states: BTreeMap<String, u64>,
}

pub fn server_facts(pid: u32, port: u16) -> ServerFacts {
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count());
    let fd_limit = std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        });
    let mut socket_states = BTreeMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            for (state, n) in socket_states_on_port(&text, port) {
                *socket_states.entry(state).or_default() += n;
            }
        }
    }
    ServerFacts {
        pid,
        open_fds,
        fd_limit,
        socket_states,
    }
}

/// Counts sockets whose local or remote port is `port`, by state, from /proc/net/tcp text.
pub fn socket_states_on_port(table: &str, port: u16) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let port_of = |a: &str| {
            a.rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
        };
        if port_of(f[1]) != Some(port) && port_of(f[2]) != Some(port) {
            continue;
        }
        let state = match f[3] {
            "01" => "ESTABLISHED",
            "02" => "SYN_SENT",
            "03" => "SYN_RECV",
            "04" => "FIN_WAIT1",
            "05" => "FIN_WAIT2",
            "06" => "TIME_WAIT",
            "07" => "CLOSE",
            "08" => "CLOSE_WAIT",
            "09" => "LAST_ACK",
            "0A" => "LISTEN",
            "0B" => "CLOSING",
            _ => "OTHER",
        };
        *out.entry(state.to_string()).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_states_on_the_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000\n\
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000\n\
   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000\n\
   3: 0100007F:1F90 0200007F:C351 06 00000000:00000000\n\
   4: 0100007F:0050 0100007F:C352 01 00000000:00000000\n";
        let s = socket_states_on_port(table, 8080);
        assert_eq!(s.get("LISTEN"), Some(&1));
        assert_eq!(s.get("ESTABLISHED"), Some(&2));
        assert_eq!(s.get("TIME_WAIT"), Some(&1));
        assert_eq!(s.values().sum::<u64>(), 4);
    }

    #[test]
    fn reads_own_process() {
        let f = server_facts(std::process::id(), 1);
        assert!(f.open_fds.is_some_and(|n| n >= 3));
        assert!(f.fd_limit.is_some());
    }
}
