//! server-tokio: the ingest server on tokio. Everything but the I/O loop lives in `common`.
//!
//! `--flavour multi-thread` (default): one work-stealing runtime, one listener.
//! `--flavour per-core`: one current-thread runtime per thread, each with its own
//! SO_REUSEPORT listener: the same layout as server-uring, so a comparison can separate
//! "io_uring vs epoll" from "thread-per-core vs work-stealing".

use std::process::ExitCode;
use std::time::Instant;

use bytes::BytesMut;
use common::config::{Flavour, NoFlags};
use common::conn::{LINGER, READ_BUF};
use common::service::{Service, Worker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, sleep_until, timeout};

fn main() -> ExitCode {
    common::service::main("server-tokio", run)
}

fn run(service: &Service, _: &NoFlags) -> Result<(), Box<dyn std::error::Error>> {
    let threads = service.args.threads();
    match service.args.flavour {
        Flavour::MultiThread => {
            let listener = service.bind(1)?.remove(0);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()?;
            service.announce(
                listener.local_addr()?,
                &format!("tokio multi-thread, {threads} threads"),
            );
            rt.block_on(accept_loop(listener, service.worker()));
        }
        Flavour::PerCore => {
            let listeners = service.bind(threads)?;
            let addr = listeners[0].local_addr()?;
            let runtimes = listeners
                .into_iter()
                .map(|l| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    Ok((rt, l))
                })
                .collect::<std::io::Result<Vec<_>>>()?;
            service.announce(addr, &format!("tokio per-core, {threads} threads"));
            std::thread::scope(|s| {
                for (rt, l) in runtimes {
                    let w = service.worker();
                    s.spawn(move || rt.block_on(accept_loop(l, w)));
                }
            });
        }
    }
    Ok(())
}

/// Accepts until shutdown, then waits (bounded) for open connections to finish.
async fn accept_loop(listener: std::net::TcpListener, w: Worker) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return eprintln!("server-tokio: listener: {e}"),
    };
    let mut shutdown = w.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match &w.app.tasks {
                    Some(tasks) => {
                        tokio::spawn(tasks.instrument(connection(stream, w.clone())));
                    }
                    None => {
                        tokio::spawn(connection(stream, w.clone()));
                    }
                },
                Err(e) => sleep(w.accept_error(&e)).await,
            },
        }
    }
    drop(listener);
    let _ = timeout(w.drain_timeout(), w.drained()).await;
}

/// read -> core -> write until the core says close, the peer leaves, or a timeout fires.
async fn connection(mut stream: TcpStream, w: Worker) {
    let _open = w.app.metrics.connection();
    let _ = stream.set_nodelay(true);
    let mut conn = w.conn();
    let mut shutdown = w.shutdown.clone();
    let mut rbuf = BytesMut::with_capacity(READ_BUF);
    let mut wbuf = BytesMut::with_capacity(4096);
    loop {
        conn.serve(Instant::now(), &mut rbuf, &mut wbuf, &w.app)
            .await;
        if !wbuf.is_empty() {
            match timeout(w.timeouts.idle, stream.write_all(&wbuf)).await {
                Ok(Ok(())) => wbuf.clear(),
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
        tokio::select! {
            read = stream.read_buf(&mut rbuf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = sleep_until(conn.deadline(Instant::now()).into()) => {
                conn.timed_out(&mut wbuf, &w.app);
                let _ = timeout(LINGER, stream.write_all(&wbuf)).await;
                break;
            }
            _ = shutdown.wait(), if idle => break,
        }
    }
    linger(&mut stream).await;
}

/// Half-closes and drains what the client still sends (bounded), so a client that sent more
/// than was read (an oversize body, a pipelined tail) sees the answer and not a reset.
async fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = timeout(LINGER, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
