//! Where a server's samples went: shares by part (the kernel's network stack, io_uring,
//! the rest of the kernel, the runtime, our code, the Kafka client, other user code) and
//! the functions that took the most samples themselves (leaf frames), kernel and user.

use super::stacks::{Stacks, SERVER_THREADS};

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
    /// (step of the Kafka path, samples): the same samples split by thread and by what
    /// they were doing for the publisher ([`kafka_step`]); profiles from before threads
    /// were recorded have none.
    #[serde(default)]
    pub kafka_path: Vec<(String, u64)>,
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

/// Steps of the Kafka path, in the order a record takes them ([`kafka_step`]).
pub const KAFKA_STEPS: &[&str] = &[
    PUBLISH,
    PRODUCE,
    DELIVERY_OURS,
    DELIVERY_CLIENT,
    CLIENT_USER,
    CLIENT_KERNEL,
    OTHER_THREADS,
    NOT_KAFKA,
];
const PUBLISH: &str = "server threads: our publish code";
const PRODUCE: &str = "server threads: the produce call (rdkafka, librdkafka)";
const DELIVERY_OURS: &str = "delivery thread: our callback";
const DELIVERY_CLIENT: &str = "delivery thread: librdkafka's events, waits";
const CLIENT_USER: &str = "librdkafka's threads: user (batching, protocol)";
const CLIENT_KERNEL: &str = "librdkafka's threads: kernel (broker socket, wake-ups)";
const OTHER_THREADS: &str = "other threads (health probe, signals)";
const NOT_KAFKA: &str = "server threads: the rest (HTTP, runtime, client socket)";

/// Which step of the Kafka path a chain `root;thread;frames...` is, from its thread frame
/// (`stacks::thread_frame`) and its frames (names are `crate::function`): on the
/// runtime's threads, a chain through rdkafka or librdkafka is the produce call, one
/// through our `publish` (and not the client) our publish code, the rest not Kafka's; on
/// the delivery thread, our callback (`delivery`) or the client's event handling;
/// librdkafka's own threads split into user and kernel time. A chain without a thread
/// frame (a profile from before threads were recorded) is `None`.
pub fn kafka_step(chain: &str) -> Option<&'static str> {
    let mut frames = chain.split(';').skip(1);
    let thread = frames.next()?;
    let rest: Vec<&str> = frames.collect();
    let any = |f: &dyn Fn(&str) -> bool| rest.iter().any(|x| f(x));
    let client = |x: &str| user_part(x) == Some("Kafka client");
    Some(if thread == SERVER_THREADS {
        if any(&client) {
            PRODUCE
        } else if any(&|x| x == "common::publish") {
            PUBLISH
        } else {
            NOT_KAFKA
        }
    } else if thread.starts_with("[thread: delivery") {
        if any(&|x| x == "common::delivery") {
            DELIVERY_OURS
        } else {
            DELIVERY_CLIENT
        }
    } else if thread.starts_with("[thread: rdk:") {
        if any(&|x| x.ends_with("_[k]")) {
            CLIENT_KERNEL
        } else {
            CLIENT_USER
        }
    } else if thread.starts_with("[thread: ") {
        OTHER_THREADS
    } else {
        return None;
    })
}

fn is_thread_frame(f: &str) -> bool {
    f == SERVER_THREADS || f.starts_with("[thread: ")
}

impl Breakdown {
    /// The summary of the samples under `root` (the server's).
    pub fn of(stacks: &Stacks, root: &str) -> Self {
        let mine = stacks.under(root);
        let mut parts: Vec<(String, u64)> = Vec::new();
        let mut kernel: std::collections::HashMap<String, u64> = Default::default();
        let mut user: std::collections::HashMap<String, u64> = Default::default();
        let mut kafka_path: Vec<(String, u64)> = Vec::new();
        let add = |v: &mut Vec<(String, u64)>, p: &str, n: u64| match v
            .iter_mut()
            .find(|(q, _)| q == p)
        {
            Some((_, c)) => *c += n,
            None => v.push((p.to_string(), n)),
        };
        for (chain, &n) in &mine.counts {
            add(&mut parts, part(chain), n);
            if let Some(step) = kafka_step(chain) {
                add(&mut kafka_path, step, n);
            }
            if let Some(leaf) = chain
                .rsplit(';')
                .next()
                .filter(|l| *l != root && !is_thread_frame(l))
            {
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
        kafka_path.sort_by_key(|(p, _)| KAFKA_STEPS.iter().position(|q| q == p));
        Self {
            samples: mine.total(),
            parts,
            top_kernel: top(kernel),
            top_user: top(user),
            kafka_path,
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

    #[test]
    fn the_kafka_path_splits_by_thread_and_by_what_the_chain_did() {
        let st = Stacks::parse(
            "srv;[server threads];common::handle;common::publish;rdkafka::send;librdkafka::rd_kafka_producev 4\n\
             srv;[server threads];common::handle;common::publish;__GI___libc_malloc 2\n\
             srv;[server threads];common::parse 9\n\
             srv;[thread: delivery (producer polling)];rdkafka::poll;common::delivery;tokio::sync::oneshot::send 3\n\
             srv;[thread: delivery (producer polling)];rdkafka::poll;__futex_wait_[k] 1\n\
             srv;[thread: rdk:broker1];librdkafka::rd_kafka_msgset_writer_write_msg_v2 5\n\
             srv;[thread: rdk:broker1];__libc_send;tcp_sendmsg_[k] 6\n\
             srv;[thread: kafka-health];__libc_recv 1\n\
             srv;[server threads] 1\n",
        )
        .expect("folded");
        let b = Breakdown::of(&st, "srv");
        let step = |p: &str| b.kafka_path.iter().find(|(q, _)| q == p).map(|(_, n)| *n);
        assert_eq!(step(PRODUCE), Some(4));
        assert_eq!(step(PUBLISH), Some(2));
        assert_eq!(step(NOT_KAFKA), Some(10));
        assert_eq!(step(DELIVERY_OURS), Some(3));
        assert_eq!(step(DELIVERY_CLIENT), Some(1));
        assert_eq!(step(CLIENT_USER), Some(5));
        assert_eq!(step(CLIENT_KERNEL), Some(6));
        assert_eq!(step(OTHER_THREADS), Some(1));
        assert_eq!(b.kafka_path[0].0, PUBLISH, "in the path's order");
        assert!(
            b.top_user.iter().all(|(f, _)| !f.starts_with('[')),
            "a thread frame is never a leaf function: {:?}",
            b.top_user
        );
        // Chains without a thread frame (older profiles): no Kafka path.
        let old = Stacks::parse("srv;common::parse 3\n").expect("folded");
        assert!(Breakdown::of(&old, "srv").kafka_path.is_empty());
    }
}
