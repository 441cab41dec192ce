//! A Prometheus scraper's load on Wren's `/metrics` (issue 16): GETs over HTTP/1.1 from
//! the generator namespace (pinned to the generator CPU, as a scraper on another machine
//! would not share the daemon's), each timed from the connect to the last octet, with the
//! body's size. [`Scraper`] repeats it at an interval on a thread of its own until
//! stopped; [`scrape`] does it once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::system;

/// The port Wren's metrics listener gets in the benchmark.
pub const PORT: u16 = 9180;

/// The most a scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

/// One scrape.
#[derive(Clone, Copy, Debug)]
pub struct Scrape {
    pub took: Duration,
    /// The body's octets.
    pub bytes: usize,
}

/// GET `/metrics` from `address` once, asking for OpenMetrics as a Prometheus server
/// does; an answer other than 200 is an error.
pub fn scrape(address: SocketAddr) -> Result<Scrape> {
    let start = Instant::now();
    let mut stream = TcpStream::connect_timeout(&address, SCRAPE_TIMEOUT)
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(SCRAPE_TIMEOUT))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .with_context(|| format!("reading the answer of {address}"))?;
    let took = start.elapsed();
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("{address}: no HTTP head in {} octets", answer.len()))?;
    let head = String::from_utf8_lossy(&answer[..head_end]);
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        bail!("{address}/metrics answered {status:?}");
    }
    Ok(Scrape {
        took,
        bytes: answer.len() - head_end - 4,
    })
}

/// Scrapes at an interval until stopped.
#[derive(Debug)]
pub struct Scraper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Vec<Scrape>>>>,
}

impl Scraper {
    /// Starts scraping `address` every `every`, from a thread in `netns` (the generator's).
    pub fn start(netns: &lab::Netns, address: SocketAddr, every: Duration) -> Result<Scraper> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = netns.enter(move || {
            std::thread::Builder::new().name("scraper".into()).spawn(
                move || -> Result<Vec<Scrape>> {
                    system::pin_current_thread(system::cpus().generator)?;
                    let mut scrapes = Vec::new();
                    let mut next = Instant::now();
                    while !flag.load(Ordering::Relaxed) {
                        scrapes.push(scrape(address)?);
                        next += every;
                        while !flag.load(Ordering::Relaxed) && Instant::now() < next {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                    Ok(scrapes)
                },
            )
        })??;
        Ok(Scraper {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops and returns every scrape; the first failed scrape is the error.
    pub fn finish(mut self) -> Result<Vec<Scrape>> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => bail!("the scraper thread panicked"),
            None => Ok(Vec::new()),
        }
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
