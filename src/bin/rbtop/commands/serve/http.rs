//! The HTTP side of `rbtop serve` (hyper): `GET /metrics` and `GET /`,
//! read-only, each answered from the latest published pages. Bounded: at
//! most `MAX_CONNECTIONS` at once (more are closed at once), headers must
//! arrive within `HEADER_TIMEOUT`, and no connection lives longer than
//! `CONNECTION_LIFETIME`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

pub const MAX_CONNECTIONS: usize = 32;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// What is served, rendered by the probing side.
#[derive(Debug)]
pub struct Pages {
    metrics: Bytes,
    html: Bytes,
}

impl Pages {
    pub fn new(metrics: String, html: String) -> Pages {
        Pages {
            metrics: Bytes::from(metrics),
            html: Bytes::from(html),
        }
    }
}

/// Accept connections until the task is aborted.
pub async fn serve(listener: TcpListener, pages: watch::Receiver<Arc<Pages>>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "{MAX_CONNECTIONS} connections open already: closing this one");
            continue;
        };
        let pages = pages.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request: Request<Incoming>| {
                let current = pages.borrow().clone();
                async move { Ok::<_, Infallible>(answer(&request, &current)) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_LIFETIME, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, "connection ended: {e}"),
                Err(_) => tracing::debug!(%peer, "connection closed after {CONNECTION_LIFETIME:?}"),
            }
        });
    }
}

fn answer(request: &Request<Incoming>, pages: &Pages) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    let (body, content_type) = match request.uri().path() {
        "/metrics" => (pages.metrics.clone(), rbtop::export::metrics::CONTENT_TYPE),
        "/" => (pages.html.clone(), "text/html; charset=utf-8"),
        _ => return plain(StatusCode::NOT_FOUND, "not found: try /metrics or /\n"),
    };
    let mut response = Response::new(Full::new(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
