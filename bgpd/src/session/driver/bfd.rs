//! The session's tie to BFD: once Established with `bfd` configured, it follows the
//! BFD session to its peer (`crate::bfd_task`), and closes with Cease / BFD Down
//! (6/10, RFC 9384) when that session reports a path failure (Up to Down, not the
//! peer's AdminDown), then starts again. The BGP session never waits for BFD: a
//! subscription that fails is logged and the session goes on without it.

use std::net::IpAddr;

use bgp_proto::Notification;
use bgp_proto::notification::{cease_subcode, code};

use super::Driver;
use crate::bfd_task::{Path, Subscription};
use crate::session::addresses::canonical;

/// Waits until the followed BFD session changes (forever without one).
pub(super) async fn changed(subscription: Option<&mut Subscription>) {
    match subscription {
        Some(subscription) => subscription.changed().await,
        None => std::future::pending().await,
    }
}

impl Driver {
    /// Subscribes to the BFD session toward the peer from `local`, when configured.
    pub(super) async fn follow_bfd(&mut self, local: IpAddr) {
        let (Some(options), Some(handle)) = (self.settings.bfd, self.bfd.as_ref()) else {
            return;
        };
        let path = Path {
            peer: self.settings.address,
            local,
            multihop: self.settings.multihop.is_some_and(|ttl| ttl > 1),
        };
        match handle.subscribe(path, options.session_config()).await {
            Ok(subscription) => self.bfd_subscription = Some(subscription),
            Err(error) => {
                tracing::warn!(neighbor = %self.settings.address, "BFD not followed: {error}");
                self.set_last_error(format!("BFD not followed: {error}"));
            }
        }
    }

    /// `bfd` changed in a reload: an Established session follows BFD with the new
    /// settings at once (or stops following it).
    pub(super) async fn bfd_reconfigured(&mut self) {
        self.bfd_subscription = None;
        let local = [&self.primary]
            .into_iter()
            .chain(self.secondary.as_ref())
            .find(|slot| slot.up)
            .and_then(|slot| slot.conn.as_ref())
            .map(|conn| canonical(conn.local.ip()));
        if let Some(local) = local {
            self.follow_bfd(local).await;
        }
    }

    /// The BFD session changed: on a path failure, close with Cease / BFD Down and
    /// start over.
    pub(super) async fn bfd_changed(&mut self) {
        let Some(failed) = self
            .bfd_subscription
            .as_mut()
            .and_then(Subscription::failed)
        else {
            return;
        };
        tracing::warn!(
            neighbor = %self.settings.address,
            session = %failed.key,
            diagnostic = %failed.diagnostic,
            "BFD went down: closing the session (Cease / BFD Down)"
        );
        self.bfd_subscription = None;
        let notification = Notification::new(code::CEASE, cease_subcode::BFD_DOWN, Vec::new());
        self.stop_machines(notification).await;
        if !self.admin_down {
            self.rebuild_and_start().await;
        }
    }
}
