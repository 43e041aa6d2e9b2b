//! Listening sockets for both servers: one plain listener, or several sharing a port with
//! SO_REUSEPORT (one per runtime thread), and never a port someone else already holds.

use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::StartError;

/// Binds `n` listeners on `addr` (see [`crate::service::Service::bind`]). Refuses a port already bound by anyone: with SO_REUSEPORT a stale
/// server on the same port would otherwise silently take a share of the connections.
pub fn bind_listeners(
    addr: SocketAddr,
    n: usize,
    backlog: u32,
) -> Result<Vec<TcpListener>, StartError> {
    let err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            StartError::PortInUse { addr }
        } else {
            StartError::Listen { addr, source }
        }
    };
    let reuseport = n > 1;
    if addr.port() != 0 && reuseport {
        // A plain bind fails if any socket, SO_REUSEPORT or not, holds the port.
        drop(socket(addr, false).map_err(err)?);
    }
    let first = listen(socket(addr, reuseport).map_err(err)?, backlog).map_err(err)?;
    let bound = first.local_addr().map_err(err)?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(listen(socket(bound, true).map_err(err)?, backlog).map_err(err)?);
    }
    Ok(all)
}

fn socket(addr: SocketAddr, reuseport: bool) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Rebinding over TIME_WAIT sockets of a previous run is fine; a live listener still
    // makes bind fail (SO_REUSEADDR does not share listening ports on Linux).
    s.set_reuse_address(true)?;
    if reuseport {
        s.set_reuse_port(true)?;
    }
    s.bind(&addr.into())?;
    Ok(s)
}

fn listen(s: Socket, backlog: u32) -> std::io::Result<TcpListener> {
    s.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_port_in_use_even_with_reuseport() {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let held = bind_listeners(any, 2, 16).expect("first bind");
        let addr = held[0].local_addr().expect("addr");
        for n in [1, 2] {
            match bind_listeners(addr, n, 16) {
                Err(StartError::PortInUse { .. }) => {}
                other => panic!("n={n}: expected PortInUse, got {other:?}"),
            }
        }
        let two = bind_listeners(any, 2, 16).expect("reuseport pair");
        assert_eq!(two[0].local_addr().ok(), two[1].local_addr().ok());
    }
}
