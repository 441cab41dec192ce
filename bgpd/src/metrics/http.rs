//! The HTTP/1.1 server of the metrics listener (hyper): `GET /metrics`,
//! `GET /healthz`, `GET /readyz` (and `HEAD` of each); 404 for other paths, 405 for
//! other methods.
//!
//! - `/metrics`: every collector, in the format the `Accept` header asks for
//!   ([`super::format`]).
//! - `/healthz`: 200 while the daemon is live (the rib task answers; a task that ends
//!   stops bgpd), 503 with the reason otherwise.
//! - `/readyz`: 200 once the first convergence is done and the IPAM datastore, if
//!   any, is reachable; 503 with the reason otherwise. `bgpctl health` gives the same
//!   answer over the control socket.
//!
//! At most [`MAX_CONNECTIONS`] connections are served at once (the accept loop waits
//! for one to end), and a request head must arrive within [`HEADER_TIMEOUT`].
//!
//! The listener runs on a thread of its own (`metrics`), with a single-threaded
//! runtime, at the lowest CPU priority ([`NICE`]): a scrape's work (reading the
//! snapshots, encoding a few hundred kilobytes, writing them) yields the CPU to
//! the sessions, the rib and the FIB whenever they have work, so a scraper never
//! delays route propagation. The tasks' questions cross runtimes on their usual
//! channels. The thread ending ends the task [`spawn`] returns.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::Sources;
use super::format::Format;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// Longest a client may take to send a request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The metrics thread's nice value: the lowest priority.
pub const NICE: i32 = 19;

const PLAIN: &str = "text/plain; charset=utf-8";

/// Binds `listen` (an error names it) and serves from the metrics thread; the
/// task returned ends when the thread does (aborting it leaves the thread, which
/// ends with the process).
pub async fn spawn(listen: SocketAddr, sources: Sources) -> anyhow::Result<JoinHandle<()>> {
    let cannot = || format!("[metrics] listen = \"{listen}\": cannot listen");
    let listener = std::net::TcpListener::bind(listen).with_context(cannot)?;
    listener.set_nonblocking(true).with_context(cannot)?;
    let (ended, end) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            // Dropped when the thread ends, by return or panic.
            let _ended = ended;
            if let Err(error) = lower_priority() {
                tracing::warn!("metrics: the thread keeps its priority: {error}");
            }
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!("metrics: cannot start the thread's runtime: {error}");
                    return;
                }
            };
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => serve(listener, Arc::new(sources)).await,
                    Err(error) => tracing::error!("metrics: {listen}: {error}"),
                }
            });
        })
        .context("metrics: cannot start the metrics thread")?;
    tracing::info!(%listen, "metrics: serving /metrics, /healthz and /readyz");
    Ok(tokio::spawn(async move {
        let _ = end.await;
    }))
}

/// Sets the calling thread's nice value to [`NICE`] (on Linux, `setpriority` of a
/// thread id applies to that thread alone).
fn lower_priority() -> std::io::Result<()> {
    rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE)?;
    Ok(())
}

async fn serve(listener: TcpListener, sources: Arc<Sources>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: the next accept may work.
                tracing::warn!("metrics: accept: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let sources = sources.clone();
                async move { Ok::<_, Infallible>(answer(&sources, &request).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!("metrics: connection: {error}");
            }
            drop(slot);
        });
    }
}

/// The answer to one request.
async fn answer(sources: &Sources, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served\n".to_owned(),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match request.uri().path() {
        "/metrics" => {
            let accept = request
                .headers()
                .get(ACCEPT)
                .and_then(|value| value.to_str().ok());
            let format = Format::negotiate(accept);
            let registry = sources.registry().await;
            match format.encode(&registry) {
                Ok(body) => {
                    let mut response = Response::new(Full::new(Bytes::from(body)));
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static(format.content_type()),
                    );
                    response
                }
                Err(_) => plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the metrics could not be encoded\n".to_owned(),
                ),
            }
        }
        "/healthz" => match sources.health().await {
            Ok(_) => plain(StatusCode::OK, "live\n".to_owned()),
            Err(reason) => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not live: {reason}\n"),
            ),
        },
        "/readyz" => match sources.health().await {
            Ok(health) if health.ready() => plain(StatusCode::OK, format!("{health}\n")),
            Ok(health) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{health}\n")),
            Err(reason) => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not live: {reason}\n"),
            ),
        },
        path => plain(
            StatusCode::NOT_FOUND,
            format!("no {path} here: /metrics, /healthz and /readyz are served\n"),
        ),
    }
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PLAIN));
    response
}
