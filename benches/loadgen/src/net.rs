//! Socket helpers for the load loop: connecting (with a source address and
//! IP_BIND_ADDRESS_NO_PORT for connection-per-request), and checking an idle keep-alive
//! connection before reuse.

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use super::RunConfig;

/// Whether an idle keep-alive connection is still open with nothing unread: a peek that
/// would block. End of stream (the server closed it) or stray bytes mean it cannot be used.
pub(super) fn idle_and_open(s: &TcpStream) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    matches!(
        socket2::SockRef::from(s).peek(&mut byte),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    )
}

/// The source address for the next connection: rotating over 127.0.0.1..=N for
/// connection-per-request to a loopback IPv4 target, none otherwise.
pub(super) fn source_addr(cfg: &RunConfig, per_request: bool, turn: &mut usize) -> Option<IpAddr> {
    match cfg.addr.ip() {
        IpAddr::V4(ip) if per_request && ip.is_loopback() && cfg.source_addrs > 1 => {
            *turn = turn.wrapping_add(1);
            let last = 1 + (*turn % usize::from(cfg.source_addrs)) as u8;
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        }
        _ => None,
    }
}

pub(super) async fn connect(
    addr: SocketAddr,
    src: Option<IpAddr>,
    within: Duration,
) -> std::io::Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = src {
        bind_address_no_port(&sock)?;
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let s = tokio::time::timeout(within, sock.connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    s.set_nodelay(true)?;
    Ok(s)
}

/// IP_BIND_ADDRESS_NO_PORT: bind only the address now and pick the port at connect time,
/// against the full 4-tuple, so each source address gets its own ~28k ports per target.
fn bind_address_no_port(sock: &TcpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket fd, a c_int option value and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::addr_of!(one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
