//! What the run records about the servers' host and the link to it: whether it is this
//! machine under another network, and the link's round trip.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::SshHost;

impl SshHost {
    /// Whether the host is this machine under another network (a namespace or container:
    /// the same boot id), so its CPU is shared with the load generator.
    pub fn same_machine(&self) -> bool {
        let id = "/proc/sys/kernel/random/boot_id";
        let there = self.read(&[id.to_string()]).pop().flatten();
        there.is_some() && there == std::fs::read_to_string(id).ok()
    }

    /// The link's round trip, µs: the median of 20 TCP connection attempts to a port
    /// nothing listens on there (port 1, checked in the host's socket table), each
    /// answered by that host's kernel with a reset: one network round trip through no
    /// process on either side, and nothing for sshd to count as a failed login. `None`
    /// when the host does not answer so (a firewall that drops instead).
    pub fn round_trip_us(&self) -> Option<f64> {
        const CLOSED: u16 = 1;
        let table = self.read(&["/proc/net/tcp".into(), "/proc/net/tcp6".into()]);
        let listening = format!(":{CLOSED:04X} ");
        if table.iter().flatten().any(|t| t.contains(&listening)) {
            return None;
        }
        let to = SocketAddr::new(self.listen_ip(), CLOSED);
        let mut v = Vec::new();
        for _ in 0..20 {
            let t0 = Instant::now();
            match TcpStream::connect_timeout(&to, Duration::from_secs(1)) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    v.push(t0.elapsed().as_secs_f64() * 1e6);
                }
                _ => return None,
            }
        }
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }
}
