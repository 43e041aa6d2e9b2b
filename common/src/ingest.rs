//! Routing and the handler: `POST /ingest` -> a Kafka record, `GET /healthz`, `GET /metrics`
//! (both also answer HEAD), `OPTIONS *` (the server's methods).

use std::sync::Arc;

use bytes::Bytes;

use crate::http::{HttpError, Method, Request, Response, Status};
use crate::kafka::{Ack, AckMode, Delivery, PublishError, Publisher};
use crate::metrics::Metrics;

/// The application both servers run: one per process, shared by every connection.
#[derive(Debug)]
pub struct App {
    pub publisher: Publisher,
    pub metrics: Arc<Metrics>,
    pub ack: AckMode,
    /// Connection tasks' poll and scheduling metrics (`None`: `--task-metrics false`).
    pub tasks: Option<crate::tasks::Tasks>,
}

/// A handler's answer: ready now, or once the broker reports delivery.
#[derive(Debug)]
pub enum Reply {
    Ready(Response),
    Pending(Delivery),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Ingest,
    Healthz,
    Metrics,
    /// `OPTIONS *`: the server as a whole (the parser lets `*` through only with OPTIONS).
    Server,
}

/// Every method some path of this server takes.
const SERVER_ALLOWS: &str = "GET, HEAD, POST, OPTIONS";

fn route(method: Method, target: &[u8]) -> Result<Route, HttpError> {
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let (route, allow) = match path {
        b"/ingest" => (Route::Ingest, "POST"),
        b"/healthz" => (Route::Healthz, "GET, HEAD"),
        b"/metrics" => (Route::Metrics, "GET, HEAD"),
        b"*" => (Route::Server, "OPTIONS"),
        _ => return Err(HttpError::NotFound),
    };
    let ok = match route {
        Route::Ingest => method == Method::Post,
        // HEAD is GET without the body (the connection state drops it).
        Route::Healthz | Route::Metrics => matches!(method, Method::Get | Method::Head),
        Route::Server => method == Method::Options,
    };
    if ok {
        Ok(route)
    } else {
        Err(HttpError::MethodNotAllowed { allow })
    }
}

impl App {
    /// Whether a request head would be served: checked before answering `100 Continue`, so
    /// a client is not invited to upload a body that will be refused.
    pub fn check(&self, method: Method, target: &[u8]) -> Result<(), HttpError> {
        route(method, target).map(|_| ())
    }

    pub fn handle(&self, req: &Request) -> Reply {
        match route(req.method, &req.path) {
            Err(e) => Reply::Ready(e.to_response()),
            Ok(Route::Healthz) => Reply::Ready(if self.publisher.is_ready() {
                Response::text(Status::Ok, "ready")
            } else {
                Response::text(Status::ServiceUnavailable, "not ready: broker unreachable")
            }),
            Ok(Route::Server) => {
                let mut r = Response::empty(Status::Ok);
                r.allow = Some(SERVER_ALLOWS);
                Reply::Ready(r)
            }
            Ok(Route::Metrics) => {
                // Brings the delivered count up to date where it is not reported per record.
                self.publisher.delivered();
                let mut text = self.metrics.render();
                if let Some(t) = &self.tasks {
                    t.render(&mut text);
                }
                let mut r = Response::text(Status::Ok, text);
                r.content_type = Some("text/plain; version=0.0.4; charset=utf-8");
                Reply::Ready(r)
            }
            Ok(Route::Ingest) => {
                match self
                    .publisher
                    .publish(req.key.as_deref(), &req.body, self.ack)
                {
                    Ok(Ack::Done) => Reply::Ready(self.success()),
                    Ok(Ack::Pending(d)) => Reply::Pending(d),
                    Err(e) => Reply::Ready(publish_error(&e)),
                }
            }
        }
    }

    /// The answer once a pending delivery resolved.
    pub fn delivered(&self, outcome: Result<(), PublishError>) -> Response {
        match outcome {
            Ok(()) => self.success(),
            Err(e) => publish_error(&e),
        }
    }

    fn success(&self) -> Response {
        match self.ack {
            AckMode::Enqueued => Response::empty(Status::Accepted),
            AckMode::Delivered => Response::empty(Status::Ok),
        }
    }
}

fn publish_error(e: &PublishError) -> Response {
    let status = match e {
        PublishError::QueueFull | PublishError::Delivery(_) | PublishError::Closed => {
            Status::ServiceUnavailable
        }
        PublishError::Enqueue(_) => Status::InternalServerError,
    };
    let mut r = Response::text(status, Bytes::from(e.to_string()));
    if *e == PublishError::QueueFull {
        r.retry_after = Some(1);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(Method::Post, b"/ingest"), Ok(Route::Ingest));
        assert_eq!(route(Method::Post, b"/ingest?x=1"), Ok(Route::Ingest));
        assert_eq!(route(Method::Get, b"/healthz"), Ok(Route::Healthz));
        assert_eq!(route(Method::Get, b"/metrics"), Ok(Route::Metrics));
        assert_eq!(route(Method::Get, b"/nope"), Err(HttpError::NotFound));
        assert_eq!(route(Method::Post, b"/ingestx"), Err(HttpError::NotFound));
        assert_eq!(
            route(Method::Get, b"/ingest"),
            Err(HttpError::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            route(Method::Post, b"/healthz"),
            Err(HttpError::MethodNotAllowed { allow: "GET, HEAD" })
        );
        assert_eq!(route(Method::Head, b"/metrics"), Ok(Route::Metrics));
        assert_eq!(route(Method::Options, b"*"), Ok(Route::Server));
        assert_eq!(
            route(Method::Head, b"/ingest"),
            Err(HttpError::MethodNotAllowed { allow: "POST" })
        );
    }

    #[test]
    fn publish_errors_map_to_documented_statuses() {
        let r = publish_error(&PublishError::QueueFull);
        assert_eq!(
            (r.status, r.retry_after),
            (Status::ServiceUnavailable, Some(1))
        );
        let r = publish_error(&PublishError::Delivery("timed out".into()));
        assert_eq!(
            (r.status, r.retry_after),
            (Status::ServiceUnavailable, None)
        );
        assert!(String::from_utf8_lossy(&r.body).contains("timed out"));
    }
}
