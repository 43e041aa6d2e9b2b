//! Where a server's samples went: shares by part (the kernel's network stack, io_uring,
//! the rest of the kernel, the runtime, our code, the Kafka client, other user code) and
//! the functions that took the most samples themselves (leaf frames), kernel and user.

use super::stacks::Stacks;

/// A profile's summary for the report.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Breakdown {
    /// The server's samples.
    pub samples: u64,
    /// (part, samples), largest first.
    pub parts: Vec<(String, u64)>,
    /// (function, samples as the leaf frame), largest first, at most [`TOP`].
    pub top_kernel: Vec<(String, u64)>,
    pub top_user: Vec<(String, u64)>,
}

/// Functions listed per side.
pub const TOP: usize = 8;

const NETWORK: &[&str] = &[
    "tcp_",
    "ip_",
    "ip6_",
    "inet_",
    "sock_",
    "skb",
    "sk_",
    "__sys_send",
    "__sys_recv",
    "net_rx",
    "napi",
    "loopback",
    "__dev_queue_xmit",
    "dev_hard_start_xmit",
    "__netif",
    "netif_",
    "process_backlog",
    "__tcp",
    "udp_",
    "do_softirq",
    "__local_bh_enable",
];

/// The part a kernel frame belongs to, if a specific one.
fn kernel_part(frame: &str) -> Option<&'static str> {
    let f = frame.trim_end_matches("_[k]");
    if NETWORK.iter().any(|p| f.starts_with(p)) {
        Some("kernel: network stack")
    } else if f.contains("io_uring") || f.starts_with("io_") {
        Some("kernel: io_uring")
    } else {
        None
    }
}

/// The part a user frame belongs to, if a specific one (frames are crate-qualified by
/// `symbols::frame_name`; librdkafka's C functions are `rd_kafka_*`/`rd_*`).
fn user_part(frame: &str) -> Option<&'static str> {
    let f = frame.trim_start_matches('<');
    let starts = |ps: &[&str]| ps.iter().any(|p| f.starts_with(p));
    if starts(&["rdkafka", "librdkafka::", "rd_"]) {
        Some("Kafka client")
    } else if starts(&["common::", "server_tokio::", "server_uring::"]) {
        Some("our code (HTTP, publish)")
    } else if starts(&["tokio::", "tokio_uring::", "mio::", "io_uring::"]) {
        Some("runtime (tokio, tokio-uring, mio)")
    } else {
        None
    }
}

/// The part a chain's samples count for: any kernel frame makes it the kernel's (the
/// network stack before io_uring before the rest); else the user frame nearest the leaf
/// that belongs to a known part.
fn part(chain: &str) -> &'static str {
    let frames: Vec<&str> = chain.split(';').skip(1).collect();
    let kernel: Vec<&str> = frames
        .iter()
        .copied()
        .filter(|f| f.ends_with("_[k]"))
        .collect();
    if !kernel.is_empty() {
        let parts: Vec<&str> = kernel.iter().filter_map(|f| kernel_part(f)).collect();
        return ["kernel: network stack", "kernel: io_uring"]
            .into_iter()
            .find(|p| parts.contains(p))
            .unwrap_or("kernel: other (scheduling, epoll, timers)");
    }
    frames
        .iter()
        .rev()
        .find_map(|f| user_part(f))
        .unwrap_or("other user code (std, libc, allocator)")
}

impl Breakdown {
    /// The summary of the samples under `root` (the server's).
    pub fn of(stacks: &Stacks, root: &str) -> Self {
        let mine = stacks.under(root);
        let mut parts: Vec<(String, u64)> = Vec::new();
        let mut kernel: std::collections::HashMap<String, u64> = Default::default();
        let mut user: std::collections::HashMap<String, u64> = Default::default();
        for (chain, &n) in &mine.counts {
            let p = part(chain);
            match parts.iter_mut().find(|(q, _)| q == p) {
                Some((_, c)) => *c += n,
                None => parts.push((p.to_string(), n)),
            }
            if let Some(leaf) = chain.rsplit(';').next().filter(|l| *l != root) {
                let side = if leaf.ends_with("_[k]") {
                    &mut kernel
                } else {
                    &mut user
                };
                *side
                    .entry(leaf.trim_end_matches("_[k]").to_string())
                    .or_insert(0) += n;
            }
        }
        let top = |m: std::collections::HashMap<String, u64>| {
            let mut v: Vec<(String, u64)> = m.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(TOP);
            v
        };
        parts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Self {
            samples: mine.total(),
            parts,
            top_kernel: top(kernel),
            top_user: top(user),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_count_for_the_part_nearest_their_leaf() {
        let st = Stacks::parse(
            "srv;tokio::runtime::run;common::http::parse 5\n\
             srv;tokio::runtime::run;common::service::publish;rd_kafka_producev 3\n\
             srv;tokio::runtime::run;common::service::respond;__send;__x64_sys_sendto_[k];tcp_sendmsg_[k] 7\n\
             srv;tokio_uring::driver::submit;__x64_sys_io_uring_enter_[k];io_submit_sqes_[k] 2\n\
             srv;tokio::runtime::park;memcpy 1\n\
             srv;main;memcpy 1\n\
             [idle];default_idle_[k] 50\n",
        )
        .expect("folded");
        let b = Breakdown::of(&st, "srv");
        assert_eq!(
            b.samples, 19,
            "the idle task's samples are not the server's"
        );
        let part = |p: &str| b.parts.iter().find(|(q, _)| q == p).map(|(_, n)| *n);
        assert_eq!(part("kernel: network stack"), Some(7));
        assert_eq!(part("our code (HTTP, publish)"), Some(5));
        assert_eq!(part("Kafka client"), Some(3));
        assert_eq!(part("kernel: io_uring"), Some(2));
        assert_eq!(part("runtime (tokio, tokio-uring, mio)"), Some(1));
        assert_eq!(part("other user code (std, libc, allocator)"), Some(1));
        assert_eq!(b.parts[0].0, "kernel: network stack", "largest first");
        assert_eq!(b.top_kernel[0], ("tcp_sendmsg".to_string(), 7));
        assert_eq!(b.top_user[0], ("common::http::parse".to_string(), 5));
    }
}
