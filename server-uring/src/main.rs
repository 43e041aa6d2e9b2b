//! server-uring: the ingest server on tokio-uring 0.5. Everything but the I/O loop lives in
//! `common`. One io_uring runtime per thread, each with its own SO_REUSEPORT listener, one
//! `tokio_uring::spawn`ed task per connection.
//!
//! tokio-uring traps handled here (ARCHITECTURE.md, "tokio-uring's traps"):
//! - `read(buf)` writes from offset 0: we read into `rbuf.slice(len..)` to append.
//! - accept errors (EMFILE...) are counted and backed off, never `unwrap`ped: one would
//!   silently kill the accept task.
//! - a timed-out read is dropped with its buffer (tokio-uring keeps it until the kernel
//!   completes), so a timeout always ends the connection.

use std::net::Shutdown;
use std::process::ExitCode;
use std::time::Instant;

use bytes::BytesMut;
use common::conn::{LINGER, READ_BUF};
use common::error::StartError;
use common::service::{Service, Worker};
use ring::RingArgs;
use tokio::time::{sleep, sleep_until, timeout};
use tokio_uring::buf::fixed::{FixedBuf, FixedBufPool};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

mod ring;

fn main() -> ExitCode {
    common::service::main("server-uring", run)
}

fn run(service: &Service, ring: &RingArgs) -> Result<(), Box<dyn std::error::Error>> {
    ring.check()?;
    let threads = service.args.threads();
    let listeners = service.bind(threads)?;
    let addr = listeners[0].local_addr()?;
    // Every ring is created (on its own thread: a runtime is !Send) before the readiness
    // line, so a kernel or container that forbids io_uring is a clear start-up error, not a
    // server that says "listening" and then serves nothing.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        for l in listeners {
            let (w, ready) = (service.worker(), ready_tx.clone());
            s.spawn(move || {
                match tokio_uring::Runtime::new(&ring.builder()) {
                    Ok(rt) => {
                        // Registered buffers belong to this thread's ring.
                        let pool = match ring.fixed_buffers {
                            Some(n) => {
                                let pool = FixedBufPool::new(
                                    (0..n).map(|_| Vec::<u8>::with_capacity(READ_BUF)),
                                );
                                match rt.block_on(async { pool.register() }) {
                                    Ok(()) => Some(pool),
                                    Err(e) => {
                                        let _ = ready.send(Err(format!(
                                            "--fixed-buffers {n}: registering them failed: {e}"
                                        )));
                                        return;
                                    }
                                }
                            }
                            None => None,
                        };
                        let _ = ready.send(Ok(()));
                        drop(ready);
                        rt.block_on(accept_loop(l, w, pool));
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                    }
                }
            });
        }
        drop(ready_tx);
        let failures: Vec<String> = ready_rx
            .iter()
            .take(threads)
            .filter_map(Result::err)
            .collect();
        match failures.first() {
            None => {
                service.announce(
                    addr,
                    &format!(
                        "tokio-uring per-core, {threads} threads, {}",
                        ring.describe()
                    ),
                );
                Ok(())
            }
            Some(e) => {
                // Stop the threads whose ring did start, then report.
                service.stop();
                Err(StartError::IoUringUnavailable(e.clone()))
            }
        }
    })?;
    Ok(())
}

/// Accepts until shutdown, then waits (bounded) for open connections to finish.
async fn accept_loop(listener: std::net::TcpListener, w: Worker, pool: Option<Pool>) {
    let listener = TcpListener::from_std(listener);
    let mut shutdown = w.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let conn = connection(stream, w.clone(), pool.clone());
                    match &w.app.tasks {
                        Some(tasks) => {
                            tokio_uring::spawn(tasks.instrument(conn));
                        }
                        None => {
                            tokio_uring::spawn(conn);
                        }
                    }
                }
                Err(e) => sleep(w.accept_error(&e)).await,
            },
        }
    }
    drop(listener);
    let _ = timeout(w.drain_timeout(), w.drained()).await;
}

/// Each thread's registered read buffers (`--fixed-buffers`).
type Pool = FixedBufPool<Vec<u8>>;

/// read -> core -> write until the core says close, the peer leaves, or a timeout fires.
async fn connection(stream: TcpStream, w: Worker, pool: Option<Pool>) {
    let _open = w.app.metrics.connection();
    let _ = stream.set_nodelay(true);
    let mut conn = w.conn();
    let mut shutdown = w.shutdown.clone();
    let mut rbuf = BytesMut::with_capacity(READ_BUF);
    // A registered buffer for this connection's reads, while the pool has one free; its
    // bytes are copied into `rbuf` (the parser's buffer) after each read.
    let mut fixed = pool.as_ref().and_then(|p| p.try_next(READ_BUF));
    let mut wbuf = BytesMut::with_capacity(4096);
    loop {
        conn.serve(Instant::now(), &mut rbuf, &mut wbuf, &w.app)
            .await;
        if !wbuf.is_empty() {
            match timeout(w.timeouts.idle, stream.write_all(wbuf)).await {
                Ok((Ok(()), mut b)) => {
                    b.clear();
                    wbuf = b;
                }
                _ => return,
            }
        }
        if conn.is_closing() || (shutdown.is_set() && conn.is_idle()) {
            break;
        }
        if rbuf.capacity() - rbuf.len() < READ_BUF / 4 {
            rbuf.reserve(READ_BUF);
        }
        let idle = conn.is_idle();
        let len = rbuf.len();
        tokio::select! {
            read = read_into(&stream, rbuf, len, &mut fixed) => {
                let (n, b) = read;
                rbuf = b;
                match n {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            _ = sleep_until(conn.deadline(Instant::now()).into()) => {
                let mut out = BytesMut::new();
                conn.timed_out(&mut out, &w.app);
                let _ = timeout(LINGER, stream.write_all(out)).await;
                break;
            }
            _ = shutdown.wait(), if idle => break,
        }
    }
    linger(&stream).await;
}

/// One read appended to `rbuf`: into its spare capacity, or through the connection's
/// registered buffer (READ_FIXED) and copied.
async fn read_into(
    stream: &TcpStream,
    mut rbuf: BytesMut,
    len: usize,
    fixed: &mut Option<FixedBuf>,
) -> (std::io::Result<usize>, BytesMut) {
    match fixed.take() {
        Some(fb) => {
            let (n, fb) = stream.read_fixed(fb).await;
            if let Ok(n) = n {
                rbuf.extend_from_slice(&fb[..n]);
            }
            *fixed = Some(fb);
            (n, rbuf)
        }
        None => {
            let (n, slice) = stream.read(rbuf.slice(len..)).await;
            (n, slice.into_inner())
        }
    }
}

/// Half-closes and drains what the client still sends (bounded), so a client that sent more
/// than was read (an oversize body, a pipelined tail) sees the answer and not a reset.
async fn linger(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = timeout(LINGER, async {
        let mut sink = vec![0u8; 4096];
        loop {
            let (n, b) = stream.read(sink).await;
            sink = b;
            if !matches!(n, Ok(n) if n > 0) {
                break;
            }
        }
    })
    .await;
}
