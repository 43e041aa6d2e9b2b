//! The harness's end of a probe session: requests out, replies matched to them by id,
//! each started process's output and end routed to it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{ChildStdin, ChildStdout, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use probe::{Answer, Line, Op, Reply, Request, Stream};

/// How long a request may wait for its reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a started process does, as the probe reports it.
#[derive(Debug)]
pub enum Event {
    Line(Stream, String),
}

#[derive(Debug, Default)]
struct Routes {
    replies: HashMap<u64, Sender<Reply>>,
    /// Per process: where its lines go, the receiving end until someone takes it, and its
    /// end once reported.
    children: HashMap<u64, Child>,
    /// The session has ended (its stdout closed).
    ended: bool,
}

#[derive(Debug)]
struct Child {
    tx: Option<Sender<Event>>,
    rx: Option<Receiver<Event>>,
    exit: Option<ExitStatus>,
}

impl Routes {
    fn child(&mut self, n: u64) -> &mut Child {
        self.children.entry(n).or_insert_with(|| {
            let (tx, rx) = mpsc::channel();
            Child {
                tx: Some(tx),
                rx: Some(rx),
                exit: None,
            }
        })
    }
}

/// One probe session (its stdin and stdout; the process carrying it is the caller's).
pub struct Client {
    /// `None` once closed.
    stdin: Mutex<Option<ChildStdin>>,
    routes: Arc<Mutex<Routes>>,
    next_id: AtomicU64,
    /// What ended the session (ssh's last words), asked when an error is reported: ssh's
    /// stderr may arrive after its stdout closed.
    why_ended: Box<dyn Fn() -> String + Send + Sync>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("routes", &self.routes)
            .finish()
    }
}

impl Client {
    /// Starts routing `stdout`; `why_ended` says, when the stream ends, what ended it.
    pub fn new(
        stdin: ChildStdin,
        stdout: ChildStdout,
        why_ended: impl Fn() -> String + Send + Sync + 'static,
    ) -> Self {
        let routes = Arc::new(Mutex::new(Routes::default()));
        let r = routes.clone();
        std::thread::spawn(move || {
            for text in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(line) = serde_json::from_str::<Line>(&text) else {
                    continue;
                };
                let Ok(mut routes) = r.lock() else { return };
                match line {
                    Line::Reply {
                        id: Some(id),
                        result,
                    } => {
                        if let Some(tx) = routes.replies.remove(&id) {
                            let _ = tx.send(result);
                        }
                    }
                    Line::Reply { id: None, .. } => {}
                    Line::Output {
                        child,
                        stream,
                        line,
                    } => {
                        if let Some(tx) = &routes.child(child).tx {
                            let _ = tx.send(Event::Line(stream, line));
                        }
                    }
                    Line::Exit { child, status } => {
                        let c = routes.child(child);
                        c.exit = Some(ExitStatus::from_raw(status));
                        c.tx = None;
                    }
                }
            }
            if let Ok(mut routes) = r.lock() {
                routes.ended = true;
                routes.replies.clear();
                for c in routes.children.values_mut() {
                    c.tx = None;
                }
            }
        });
        Self {
            stdin: Mutex::new(Some(stdin)),
            routes,
            next_id: AtomicU64::new(1),
            why_ended: Box::new(why_ended),
        }
    }

    /// Sends `op` and waits for its answer.
    pub fn call(&self, op: Op) -> Result<Answer> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        {
            let mut routes = self
                .routes
                .lock()
                .map_err(|_| anyhow!("probe routes poisoned"))?;
            if routes.ended {
                bail!("the probe's session has ended: {}", self.why_ended());
            }
            routes.replies.insert(id, tx);
        }
        let mut text = serde_json::to_string(&Request { id, op })?;
        text.push('\n');
        {
            let mut stdin = self
                .stdin
                .lock()
                .map_err(|_| anyhow!("probe stdin poisoned"))?;
            let stdin = stdin.as_mut().context("the probe's session was closed")?;
            stdin
                .write_all(text.as_bytes())
                .and_then(|()| stdin.flush())
                .map_err(|e| anyhow!("writing to the probe: {e}; {}", self.why_ended()))?;
        }
        match rx.recv_timeout(REPLY_TIMEOUT) {
            Ok(Reply::Ok(a)) => Ok(a),
            Ok(Reply::Error(e)) => bail!("the probe refused: {e}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("the probe did not answer within {REPLY_TIMEOUT:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("the probe's session has ended: {}", self.why_ended())
            }
        }
    }

    fn why_ended(&self) -> String {
        // ssh prints its reason and exits; give its stderr a moment to be read.
        std::thread::sleep(Duration::from_millis(100));
        (self.why_ended)()
    }

    /// Ends the session's input: the probe then ends what it started and exits.
    pub fn close(&self) {
        if let Ok(mut s) = self.stdin.lock() {
            s.take();
        }
    }

    /// Process `child`'s lines (once: the first caller gets them).
    pub fn events(&self, child: u64) -> Option<Receiver<Event>> {
        self.routes.lock().ok()?.child(child).rx.take()
    }

    /// Process `child`'s end: `Ok(None)` while it runs; an error once the session is over
    /// without it having ended.
    pub fn exit(&self, child: u64) -> Result<Option<ExitStatus>> {
        let mut routes = self
            .routes
            .lock()
            .map_err(|_| anyhow!("probe routes poisoned"))?;
        if let Some(st) = routes.child(child).exit {
            return Ok(Some(st));
        }
        if routes.ended {
            drop(routes);
            bail!(
                "the probe's session ended while the process ran: {}",
                self.why_ended()
            );
        }
        Ok(None)
    }
}
