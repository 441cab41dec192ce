//! The session's tie to BFD: with `bfd` configured, it follows the BFD session to
//! its peer (`crate::bfd_task`) from the time it knows its local address (a
//! configured `local_address` at once, else its first Established connection's)
//! until `bfd` is reconfigured or the neighbor goes, Established or not (RFC 5882:
//! BFD runs before and between BGP sessions). When the BFD session reports a path
//! failure (Up to Down, not the peer's AdminDown) while BGP is Established, the
//! session closes with Cease / BFD Down (6/10, RFC 9384) and starts again; with
//! `on_down = "graceful"` the peer's routes stay as stale ones, as graceful restart
//! keeps them, until its End-of-RIB or its restart time (BIRD's `bfd graceful`).
//! The BGP session never waits for BFD: a subscription that fails is logged and the
//! session goes on without it.

use std::net::IpAddr;

use bgp_proto::Notification;
use bgp_proto::notification::{cease_subcode, code};

use super::Driver;
use crate::bfd_task::{Path, Subscription};
use crate::config::bfd::OnDown;
use crate::session::addresses::canonical;

/// Waits until the followed BFD session changes (forever without one).
pub(super) async fn changed(subscription: Option<&mut Subscription>) {
    match subscription {
        Some(subscription) => subscription.changed().await,
        None => std::future::pending().await,
    }
}

impl Driver {
    /// Follows the BFD session toward the peer from `local`, when configured: the
    /// subscription already held when it is the same path (its past failures
    /// forgotten, so that a flap cannot replay an old one), else a new one.
    pub(super) async fn follow_bfd(&mut self, local: IpAddr) {
        let (Some(options), Some(handle)) = (self.settings.bfd, self.bfd.as_ref()) else {
            return;
        };
        let path = Path {
            peer: self.settings.address,
            local,
            multihop: self.settings.multihop.is_some_and(|ttl| ttl > 1),
        };
        if let Some(subscription) = self.bfd_subscription.as_mut()
            && *subscription.path() == path
        {
            subscription.forget_failures();
            return;
        }
        self.bfd_subscription = None;
        match handle.subscribe(path, options.session_config()).await {
            Ok(subscription) => self.bfd_subscription = Some(subscription),
            Err(error) => {
                tracing::warn!(neighbor = %self.settings.address, "BFD not followed: {error}");
                self.set_last_error(format!("BFD not followed: {error}"));
            }
        }
    }

    /// At the start and after a reload: follows BFD from the configured
    /// `local_address` before any BGP connection, or from the Established
    /// connection's local address.
    pub(super) async fn follow_bfd_now(&mut self) {
        let established = [&self.primary]
            .into_iter()
            .chain(self.secondary.as_deref())
            .find(|slot| slot.up)
            .and_then(|slot| slot.conn.as_ref())
            .map(|conn| canonical(conn.local.ip()));
        if let Some(local) = established.or(self.settings.local_address) {
            self.follow_bfd(local).await;
        }
    }

    /// `bfd` changed in a reload: the session follows BFD with the new settings at
    /// once (or stops following it), without a BGP reset.
    pub(super) async fn bfd_reconfigured(&mut self) {
        self.bfd_subscription = None;
        self.follow_bfd_now().await;
    }

    /// The BFD session changed: on a path failure while Established, close with
    /// Cease / BFD Down and start over (keeping the routes stale with `graceful`). A
    /// failure while BGP is not Established is only seen (BGP is already down).
    pub(super) async fn bfd_changed(&mut self) {
        let Some(failed) = self
            .bfd_subscription
            .as_mut()
            .and_then(Subscription::failed)
        else {
            return;
        };
        if self.up.is_none() {
            return;
        }
        let graceful = self
            .settings
            .bfd
            .is_some_and(|options| options.on_down == OnDown::Graceful);
        tracing::warn!(
            neighbor = %self.settings.address,
            session = %failed.key,
            diagnostic = %failed.diagnostic,
            graceful,
            "BFD went down: closing the session (Cease / BFD Down)"
        );
        self.bfd_graceful_close = graceful;
        let notification = Notification::new(code::CEASE, cease_subcode::BFD_DOWN, Vec::new());
        self.stop_machines(notification).await;
        self.bfd_graceful_close = false;
        if !self.admin_down {
            self.rebuild_and_start().await;
        }
    }
}
