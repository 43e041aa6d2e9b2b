//! A TCP relay between namespaces: it accepts on a listener made in one namespace and
//! connects out from this thread's, copying both ways; with a delay, every chunk is held
//! until its arrival time plus the delay (so the link's latency grows by the delay each
//! way, its throughput does not shrink). Used for the servers' route to the embedded
//! broker (`BENCH_KAFKA_DELAY`): the broker listens on the bench's loopback and tells its
//! clients so, which a veth link cannot carry. Its copies cost the bench's cores.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Result;

/// A running relay; [`Relay::stop`] ends its accept loop (open connections end with
/// their peers).
#[derive(Debug)]
pub struct Relay {
    stop: Arc<AtomicBool>,
}

impl Relay {
    /// Relays every connection accepted on `listener` to `to`, delayed by `delay` each way.
    pub fn start(listener: TcpListener, to: SocketAddr, delay: Duration) -> Result<Self> {
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("broker-relay".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            if let Err(e) = connect(client, to, delay) {
                                eprintln!("broker relay: {e}");
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(e) => {
                            eprintln!("broker relay: accept: {e}");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })?;
        Ok(Self { stop })
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn connect(client: TcpStream, to: SocketAddr, delay: Duration) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
    for s in [&client, &server] {
        s.set_nodelay(true)?;
    }
    let (c2, s2) = (client.try_clone()?, server.try_clone()?);
    pump(client, server, delay)?;
    pump(s2, c2, delay)?;
    Ok(())
}

/// Copies `from` to `to` on threads of its own until `from` ends, then ends `to`'s
/// sending side.
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) -> std::io::Result<()> {
    if delay.is_zero() {
        std::thread::Builder::new()
            .name("relay-copy".into())
            .spawn(move || {
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(Shutdown::Write);
            })?;
        return Ok(());
    }
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::Builder::new()
        .name("relay-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0
                    || tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                {
                    break;
                }
            }
        })?;
    std::thread::Builder::new()
        .name("relay-write".into())
        .spawn(move || {
            for (due, chunk) in rx {
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if to.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_both_ways_and_adds_its_delay() {
        // An echo server, and a relay to it with 20 ms each way.
        let echo = TcpListener::bind("127.0.0.1:0").expect("bind");
        let to = echo.local_addr().expect("addr");
        std::thread::spawn(move || {
            let (mut s, _) = echo.accept().expect("accept");
            let mut b = [0u8; 5];
            while s.read_exact(&mut b).is_ok() {
                s.write_all(&b).expect("echo");
            }
        });
        let front = TcpListener::bind("127.0.0.1:0").expect("bind");
        let at = front.local_addr().expect("addr");
        let relay = Relay::start(front, to, Duration::from_millis(20)).expect("relay");
        let mut c = TcpStream::connect(at).expect("connect");
        let t = Instant::now();
        c.write_all(b"hello").expect("write");
        let mut b = [0u8; 5];
        c.read_exact(&mut b).expect("read");
        let rtt = t.elapsed();
        assert_eq!(&b, b"hello");
        assert!(
            rtt >= Duration::from_millis(40),
            "{rtt:?}: two delays of 20 ms"
        );
        assert!(rtt < Duration::from_secs(2), "{rtt:?}");
        relay.stop();
    }
}
