//! Test harness for the RIB: a [`Rib`] driven with `RibInput`s, fake sessions whose
//! outbound channels are read back and decoded with bgp-proto, and the FIB changes.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::{
    AsPath, Community, Family, FamilySet, Ipv4Prefix, Ipv6Prefix, Message, MpReach, MpUnreach,
    NextHop, Nlri, Notification, Origin, PathAttributes, SessionContext, Update,
};
use bgpd::config::Config;
use bgpd::rib::Rib;
use bgpd::tasks::{FibChange, Outbound, PeerId, PeerInfo, PeerUp, RibInput};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Our AS and router id in every test config.
pub const ASN: u32 = 64512;
pub const ROUTER_ID: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);

/// A config with our AS and router id, and `rest` appended (neighbors, policy...).
pub fn config(rest: &str) -> Arc<Config> {
    let text = format!("[bgp]\nasn = {ASN}\nrouter_id = \"{ROUTER_ID}\"\nlisten = []\n{rest}");
    Arc::new(Config::parse(&text, "test.toml").unwrap_or_else(|e| panic!("{e}")))
}

/// A neighbor as a test drives it.
#[derive(Debug)]
pub struct TestPeer {
    pub id: PeerId,
    pub info: Arc<PeerInfo>,
    pub outbound: bgpd::queue::Receiver<Box<Outbound>>,
}

/// What a neighbor received, decoded.
#[derive(Debug, Default)]
pub struct Received {
    pub updates: Vec<Update>,
    pub closes: Vec<(Notification, Option<Duration>)>,
    pub batches: usize,
    /// The longest batch, in octets.
    pub longest_batch: usize,
}

impl Received {
    /// Every announced prefix with its attributes and next hop.
    pub fn announced(&self) -> Vec<(IpNet, PathAttributes, Option<IpAddr>)> {
        let mut out = Vec::new();
        for update in &self.updates {
            for prefix in &update.nlri {
                out.push((
                    IpNet::V4(prefix.net),
                    update.attributes.clone(),
                    update.attributes.next_hop.map(IpAddr::V4),
                ));
            }
            if let Some(reach) = &update.mp_reach {
                let next_hop = match &reach.next_hop {
                    NextHop::Ipv4(a) => Some(IpAddr::V4(*a)),
                    NextHop::Ipv6 { global, .. } => Some(IpAddr::V6(*global)),
                    NextHop::Other(_) => None,
                };
                for prefix in reach.nlri.prefixes() {
                    let net = match prefix {
                        bgp_proto::Prefix::V4(p) => IpNet::V4(p.net),
                        bgp_proto::Prefix::V6(p) => IpNet::V6(p.net),
                    };
                    out.push((net, update.attributes.clone(), next_hop));
                }
            }
        }
        out
    }

    /// Every withdrawn prefix.
    pub fn withdrawn(&self) -> Vec<IpNet> {
        let mut out = Vec::new();
        for update in &self.updates {
            for (_, prefix) in update.withdrawals() {
                out.push(match prefix {
                    bgp_proto::Prefix::V4(p) => IpNet::V4(p.net),
                    bgp_proto::Prefix::V6(p) => IpNet::V6(p.net),
                });
            }
        }
        out
    }

    /// Families whose End-of-RIB was received, in order.
    pub fn end_of_ribs(&self) -> Vec<Family> {
        self.updates
            .iter()
            .filter_map(Update::end_of_rib_family)
            .collect()
    }

    /// The UPDATEs that announce something.
    pub fn announcing(&self) -> Vec<&Update> {
        self.updates
            .iter()
            .filter(|u| !u.nlri.is_empty() || u.mp_reach.is_some())
            .collect()
    }
}

/// The RIB with its fake sessions.
pub struct Harness {
    pub rib: Rib,
    pub now: Instant,
    pub peers: HashMap<PeerId, TestPeer>,
    pub fib: Vec<FibChange>,
    next_id: PeerId,
}

/// How a test session is set up.
#[derive(Clone, Debug)]
pub struct Session {
    pub address: IpAddr,
    pub local_address: IpAddr,
    pub remote_asn: u32,
    pub router_id: Ipv4Addr,
    pub families: Vec<Family>,
    pub capacity: usize,
    pub graceful_restart: bool,
    pub local_ipv6: Option<Ipv6Addr>,
}

impl Session {
    /// An IPv4 session with `address` in AS `remote_asn`; our end is 10.0.0.1.
    pub fn v4(address: &str, remote_asn: u32) -> Session {
        let address: IpAddr = address.parse().unwrap();
        let router_id = match address {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => Ipv4Addr::new(10, 9, 9, 9),
        };
        Session {
            address,
            local_address: "10.0.0.1".parse().unwrap(),
            remote_asn,
            router_id,
            families: vec![Family::IPV4_UNICAST],
            capacity: 1024,
            graceful_restart: false,
            local_ipv6: None,
        }
    }

    pub fn router_id(mut self, id: &str) -> Session {
        self.router_id = id.parse().unwrap();
        self
    }

    pub fn capacity(mut self, capacity: usize) -> Session {
        self.capacity = capacity;
        self
    }

    pub fn families(mut self, families: &[Family]) -> Session {
        self.families = families.to_vec();
        self
    }

    pub fn graceful_restart(mut self) -> Session {
        self.graceful_restart = true;
        self
    }

    pub fn local_ipv6(mut self, address: &str) -> Session {
        self.local_ipv6 = Some(address.parse().unwrap());
        self
    }

    /// What the session task tells the rib about this session when it comes up.
    pub fn info(&self) -> Arc<PeerInfo> {
        let ibgp = self.remote_asn == ASN;
        let families: FamilySet = self.families.iter().copied().collect();
        let context = SessionContext {
            ibgp,
            families,
            ..SessionContext::default()
        };
        let graceful_restart = self.graceful_restart.then(|| bgp_proto::GracefulRestart {
            flags: 0,
            restart_time: 120,
            families: self
                .families
                .iter()
                .map(|&family| bgp_proto::GracefulRestartFamily {
                    family,
                    flags: bgp_proto::GracefulRestartFamily::FORWARDING_STATE,
                })
                .collect(),
        });
        Arc::new(PeerInfo {
            address: self.address,
            local_address: self.local_address,
            local_ipv4: match self.local_address {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            },
            local_ipv6: self.local_ipv6,
            local_link_local: None,
            local_asn: ASN,
            remote_asn: self.remote_asn,
            remote_router_id: self.router_id,
            context,
            graceful_restart,
        })
    }
}

impl Harness {
    /// A RIB for `config`; what it sends the FIB at start (configured networks,
    /// `Converged` without neighbors) is in `startup`.
    pub fn new(config: Arc<Config>) -> Harness {
        let mut harness = Harness::with_startup(config);
        harness.fib.clear();
        harness
    }

    /// Like [`Harness::new`], keeping the FIB changes made at start.
    pub fn with_startup(config: Arc<Config>) -> Harness {
        let now = Instant::now();
        let mut harness = Harness {
            rib: Rib::new(config, true, now),
            now,
            peers: HashMap::new(),
            fib: Vec::new(),
            next_id: 1,
        };
        harness.sync();
        harness
    }

    /// Handles one input, then flushes peers and collects FIB changes.
    pub fn input(&mut self, input: RibInput) {
        self.rib.handle(input, self.now);
        self.sync();
    }

    /// Flushes peers and collects FIB changes.
    pub fn sync(&mut self) {
        self.rib.on_timer(self.now);
        self.rib.flush();
        self.fib.extend(self.rib.take_fib());
    }

    /// Lets `by` pass and runs the timers.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.sync();
    }

    /// Brings a session up; returns its id.
    pub fn up(&mut self, session: Session) -> PeerId {
        let id = self.next_id;
        self.next_id += 1;
        self.up_as(id, session);
        id
    }

    /// Brings a session up under a given id (a returning peer).
    pub fn up_as(&mut self, id: PeerId, session: Session) {
        let info = session.info();
        let (sender, receiver) = bgpd::queue::channel(session.capacity);
        self.peers.insert(
            id,
            TestPeer {
                id,
                info: info.clone(),
                outbound: receiver,
            },
        );
        self.input(RibInput::PeerUp(PeerUp {
            peer: id,
            info,
            outbound: sender,
        }));
    }

    pub fn down(&mut self, id: PeerId, stale_for: Option<Duration>) {
        self.input(RibInput::PeerDown {
            peer: id,
            stale_for,
        });
    }

    pub fn update(&mut self, id: PeerId, update: Update) {
        self.input(RibInput::Update {
            peer: id,
            update: Box::new(update),
            treat_as_withdraw: false,
        });
    }

    pub fn end_of_rib(&mut self, id: PeerId, family: Family) {
        self.input(RibInput::EndOfRib { peer: id, family });
    }

    /// Everything queued for `id` so far, decoded. Does not send `Drained`.
    pub fn received(&mut self, id: PeerId) -> Received {
        let peer = self.peers.get_mut(&id).expect("no such test peer");
        let ctx = peer.info.context;
        let mut received = Received::default();
        while let Ok(outbound) = peer.outbound.try_recv() {
            match *outbound {
                Outbound::Updates(bytes) => {
                    received.batches += 1;
                    received.longest_batch = received.longest_batch.max(bytes.len());
                    received.updates.extend(decode_updates(&bytes, &ctx));
                }
                Outbound::Close {
                    notification,
                    idle_for,
                } => received.closes.push((notification, idle_for)),
            }
        }
        received
    }

    /// Takes the FIB changes collected so far.
    pub fn take_fib(&mut self) -> Vec<FibChange> {
        std::mem::take(&mut self.fib)
    }
}

/// Splits back-to-back messages and decodes each as an UPDATE.
pub fn decode_updates(bytes: &[u8], ctx: &SessionContext) -> Vec<Update> {
    let mut updates = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = bgp_proto::frame_length(rest, ctx.max_message_len())
            .expect("framing")
            .expect("a whole message");
        let decoded = bgp_proto::decode_message(&rest[..len], ctx).expect("well-formed");
        assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
        match decoded.message {
            Message::Update(update) => updates.push(update),
            other => panic!("not an UPDATE: {other:?}"),
        }
        rest = &rest[len..];
    }
    updates
}

/// Path attributes as an eBGP neighbor in `asns` sends them (next hop set).
pub fn attrs(asns: &[u32], next_hop: &str) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence(asns)),
        next_hop: Some(next_hop.parse().unwrap()),
        ..Default::default()
    }
}

/// An UPDATE announcing IPv4 `prefixes` with `attributes`.
pub fn announce(prefixes: &[&str], attributes: PathAttributes) -> Update {
    Update {
        nlri: prefixes.iter().map(|p| v4(p)).collect(),
        attributes,
        ..Default::default()
    }
}

/// An UPDATE announcing IPv6 `prefixes` with a next hop.
pub fn announce_v6(prefixes: &[&str], mut attributes: PathAttributes, next_hop: &str) -> Update {
    attributes.next_hop = None;
    Update {
        attributes,
        mp_reach: Some(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: NextHop::Ipv6 {
                global: next_hop.parse().unwrap(),
                link_local: None,
            },
            nlri: Nlri::Ipv6(prefixes.iter().map(|p| v6(p)).collect()),
        }),
        ..Default::default()
    }
}

/// An UPDATE withdrawing IPv4 `prefixes`.
pub fn withdraw(prefixes: &[&str]) -> Update {
    Update {
        withdrawn: prefixes.iter().map(|p| v4(p)).collect(),
        ..Default::default()
    }
}

/// An UPDATE withdrawing IPv6 `prefixes`.
pub fn withdraw_v6(prefixes: &[&str]) -> Update {
    Update {
        mp_unreach: Some(MpUnreach {
            family: Family::IPV6_UNICAST,
            withdrawn: Nlri::Ipv6(prefixes.iter().map(|p| v6(p)).collect()),
        }),
        ..Default::default()
    }
}

pub fn v4(prefix: &str) -> Ipv4Prefix {
    Ipv4Prefix::new(prefix.parse::<Ipv4Net>().unwrap())
}

pub fn v6(prefix: &str) -> Ipv6Prefix {
    Ipv6Prefix::new(prefix.parse::<Ipv6Net>().unwrap())
}

pub fn net(prefix: &str) -> IpNet {
    prefix.parse().unwrap()
}

pub fn ip(address: &str) -> IpAddr {
    address.parse().unwrap()
}

pub fn community(text: &str) -> Community {
    let (a, b) = text.split_once(':').unwrap();
    Community::new(a.parse().unwrap(), b.parse().unwrap())
}

/// `FibChange::Install` with these next hops.
pub fn install(prefix: &str, hops: &[&str]) -> FibChange {
    FibChange::Install {
        prefix: net(prefix),
        next_hops: hops.iter().map(|h| ip(h)).collect(),
    }
}

/// `n` distinct IPv4 prefixes of length `len` from 10.0.0.0 upward.
pub fn prefixes(n: u32, len: u8) -> Vec<String> {
    (0..n)
        .map(|i| {
            let base = 0x0a00_0000u32 + (i << (32 - u32::from(len)));
            format!("{}/{len}", Ipv4Addr::from(base))
        })
        .collect()
}
