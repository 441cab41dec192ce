//! `show routes` as a stream. The rib task never builds a whole-table answer:
//!
//! 1. the prefixes are listed in turns of [`PREFIX_SCAN`](crate::tasks::PREFIX_SCAN) slots
//!    ([`RibQuery::Prefixes`], only those after `after`), then sorted here, off the
//!    rib task (on a blocking thread): one copy of the prefixes, 18 octets each;
//! 2. their paths are asked for [`ROUTE_CHUNK`] prefixes at a time
//!    ([`RibQuery::RouteChunk`]); the server writes each chunk to the client before
//!    it asks for the next, so the rib task handles other input between chunks and a
//!    slow reader holds only its own connection.
//!
//! Order: prefix order (IPv4 before IPv6, then address, then length), each prefix's
//! best path first. `limit` counts prefixes that have paths in the view asked for. A
//! prefix added during a dump is missed if it sorts before the chunk being sent, a
//! prefix withdrawn is skipped: each chunk is as the RIB is when it is built.

use control_proto::{RouteLine, RouteQuery, RoutesEnd};
use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};

use crate::tasks::{PrefixCursor, ROUTE_CHUNK, RibInput, RibQuery};

/// A `show routes` answer being sent.
#[derive(Debug)]
pub struct RouteStream {
    rib: mpsc::Sender<RibInput>,
    query: RouteQuery,
    /// The prefixes to answer for, sorted; `position` is the next one.
    prefixes: Vec<IpNet>,
    position: usize,
    /// The paths of a one-prefix query, sent as the only chunk.
    single: Option<Vec<RouteLine>>,
    /// Prefixes still allowed by the limit.
    remaining: Option<u64>,
    end: RoutesEnd,
    last: Option<IpNet>,
}

impl RouteStream {
    /// Lists and sorts the prefixes `query` may answer for (or, with a prefix in the
    /// query, looks that one up).
    pub async fn start(
        rib: mpsc::Sender<RibInput>,
        query: RouteQuery,
        after: Option<IpNet>,
        limit: Option<u64>,
    ) -> Result<RouteStream, String> {
        let mut stream = RouteStream {
            rib,
            query,
            prefixes: Vec::new(),
            position: 0,
            single: None,
            remaining: limit,
            end: RoutesEnd::default(),
            last: None,
        };
        if stream.query.prefix.is_some() {
            let query = stream.query.clone();
            stream.single =
                Some(ask(&stream.rib, |reply| RibQuery::Routes { query, reply }).await?);
            return Ok(stream);
        }
        let mut from = Some(PrefixCursor::default());
        while let Some(cursor) = from {
            let family = stream.query.family;
            let chunk = ask(&stream.rib, |reply| RibQuery::Prefixes {
                family,
                after,
                from: cursor,
                reply,
            })
            .await?;
            stream.prefixes.extend(chunk.prefixes);
            from = chunk.next;
        }
        let mut prefixes = std::mem::take(&mut stream.prefixes);
        stream.prefixes = tokio::task::spawn_blocking(move || {
            prefixes.sort_unstable();
            prefixes
        })
        .await
        .map_err(|error| format!("sorting the prefixes failed: {error}"))?;
        Ok(stream)
    }

    /// The next chunk of paths (never empty), or `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<RouteLine>>, String> {
        if let Some(routes) = self.single.take() {
            self.count(&routes);
            return Ok((!routes.is_empty()).then_some(routes));
        }
        while self.position < self.prefixes.len() && self.remaining != Some(0) {
            let want = self.remaining.map_or(ROUTE_CHUNK, |left| {
                ROUTE_CHUNK.min(usize::try_from(left).unwrap_or(ROUTE_CHUNK))
            });
            let end = (self.position + want).min(self.prefixes.len());
            let prefixes = self.prefixes[self.position..end].to_vec();
            self.position = end;
            let query = self.query.clone();
            let routes = ask(&self.rib, |reply| RibQuery::RouteChunk {
                prefixes,
                query,
                reply,
            })
            .await?;
            if !routes.is_empty() {
                self.count(&routes);
                return Ok(Some(routes));
            }
        }
        Ok(None)
    }

    /// How the answer ends: counts, and the last prefix when the limit cut it short.
    pub fn end(&self) -> RoutesEnd {
        let cut = self.remaining == Some(0) && self.position < self.prefixes.len();
        RoutesEnd {
            next: if cut { self.last } else { None },
            ..self.end.clone()
        }
    }

    fn count(&mut self, routes: &[RouteLine]) {
        for route in routes {
            if self.last != Some(route.prefix) {
                self.last = Some(route.prefix);
                self.end.prefixes += 1;
                if let Some(left) = &mut self.remaining {
                    *left = left.saturating_sub(1);
                }
            }
            self.end.paths += 1;
        }
    }
}

/// Asks the rib task one question and waits for the answer.
async fn ask<T>(
    rib: &mpsc::Sender<RibInput>,
    question: impl FnOnce(oneshot::Sender<T>) -> RibQuery,
) -> Result<T, String> {
    let (reply, answer) = oneshot::channel();
    rib.send(RibInput::Query(question(reply)))
        .await
        .map_err(|_| "the rib task is gone".to_owned())?;
    answer
        .await
        .map_err(|_| "the rib task did not answer".to_owned())
}
