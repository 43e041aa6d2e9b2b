//! "Unit costs on this machine": the calibration (`crate::calibrate`) as a table, each cost
//! also in null syscalls, so the "why" figures (syscalls, io_uring_enter, context switches
//! per request) can be read against what each costs here.

use super::document::{Document, Table};
use super::Summary;
use crate::calibrate::{self, NULL_SYSCALL};

pub fn section(s: &Summary, d: &mut Document) {
    let Some(c) = &s.env.calibration else {
        return;
    };
    d.heading("Unit costs on this machine (calibration)");
    let servers_elsewhere = s
        .env
        .topology
        .as_ref()
        .and_then(|t| t.server_host.as_ref())
        .map(|h| h.hostname.clone());
    let on = match (&servers_elsewhere, c.cpus.is_empty()) {
        (Some(host), _) => format!(
            "on this host's CPU {:?} (the servers ran on another host, {host}, where nothing was calibrated)",
            c.cpus
        ),
        (None, true) => "unpinned (shared layout)".to_string(),
        (None, false) => format!("on the servers' cores (CPUs {:?})", c.cpus),
    };
    let mut p = format!(
        "Measured once before the run {on}, interleaved: {} rounds of each, the median and the range over rounds, in {:.1} s.",
        c.costs.first().map_or(0, |u| u.rounds),
        c.seconds
    );
    if let (Some(one), Some(batch), Some(epoll)) = (
        c.in_syscalls(calibrate::URING_NOP),
        c.in_syscalls(calibrate::URING_NOP_BATCH),
        c.in_syscalls(calibrate::EPOLL),
    ) {
        p.push_str(&format!(
            " Here an io_uring submit + reap costs {one:.1} null syscalls ({batch:.1} each when 8 go in one submit), an epoll_wait with a ready event {epoll:.1}: the currencies tokio-uring and tokio pay per request in the \"why\" table's io_uring_enter and epoll_wait columns."
        ));
    }
    d.para(p);
    let mut t = Table::new(["unit", "ns (median)", "range over rounds", "null syscalls"]);
    for u in &c.costs {
        t.row([
            u.name.clone(),
            format!("{:.0}", u.ns),
            format!("{:.0}–{:.0}", u.min_ns, u.max_ns),
            match (u.name.as_str(), c.in_syscalls(&u.name)) {
                (NULL_SYSCALL, _) | (_, None) => "1".to_string(),
                (_, Some(x)) => format!("{x:.1}"),
            },
        ]);
    }
    d.table(t);
    if !c.unavailable.is_empty() {
        d.para(format!("Not measured: {}.", c.unavailable.join("; ")));
    }
}
