//! Checks that span several keys of a parsed configuration (references between
//! sections, duplicates, settings that exclude each other). Each problem names the
//! key to fix, placed in the text by the [`Locator`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::error::{ConfigError, KeyPath, Locator, Step, key_path};
use super::session::NEIGHBOR_ONLY;
use super::{Config, FamilyName, SessionOptions};

/// RFC 2385 keys are at most 80 octets (TCP_MD5SIG_MAXKEYLEN).
pub const MAX_PASSWORD_LEN: usize = 80;
/// The restart time of the graceful restart capability has 12 bits.
pub const MAX_RESTART_TIME: u16 = 4095;

/// Every problem of `config`, in the order of the sections.
pub fn check(config: &Config, locator: &Locator<'_>) -> Vec<ConfigError> {
    let mut problems = Problems {
        locator,
        errors: Vec::new(),
    };
    check_bgp(config, &mut problems);
    check_sessions(config, &mut problems);
    check_policy(config, &mut problems);
    check_log(config, &mut problems);
    check_ipam(config, &mut problems);
    check_dataplane(config, &mut problems);
    let mut errors = problems.errors;
    errors.sort_by_key(|error| (error.line, error.column));
    errors
}

struct Problems<'a, 'i> {
    locator: &'a Locator<'i>,
    errors: Vec<ConfigError>,
}

impl Problems<'_, '_> {
    fn add(&mut self, path: Vec<Step>, message: impl Into<String>) {
        self.errors.push(self.locator.error_at(&path, message));
    }
}

fn check_bgp(config: &Config, problems: &mut Problems<'_, '_>) {
    let bgp = &config.bgp;
    if bgp.asn.get() == u32::from(bgp_proto::AS_TRANS) {
        problems.add(
            key_path!["bgp", "asn"],
            "AS 23456 is AS_TRANS (RFC 6793) and cannot be used",
        );
    }
    if bgp.router_id.is_unspecified() {
        problems.add(
            key_path!["bgp", "router_id"],
            "router_id is missing or 0.0.0.0 (not a valid BGP identifier); name one here or in WREN_ROUTER_ID",
        );
    }
    if bgp.cluster_id.is_some_and(|id| id.is_unspecified()) {
        problems.add(
            key_path!["bgp", "cluster_id"],
            "cluster_id 0.0.0.0 is not valid",
        );
    }
    let mut listen = BTreeSet::new();
    for (index, address) in bgp.listen.iter().enumerate() {
        if !listen.insert(address) {
            problems.add(
                key_path!["bgp", "listen", index],
                format!("{address} is listed twice"),
            );
        }
    }
    if bgp.graceful_restart.restart_time > MAX_RESTART_TIME {
        problems.add(
            key_path!["bgp", "graceful_restart", "restart_time"],
            format!("restart_time must be at most {MAX_RESTART_TIME} seconds (12 bits)"),
        );
    }
    let mut networks = BTreeMap::new();
    for (index, network) in bgp.networks.iter().enumerate() {
        let prefix = network.prefix;
        if prefix.trunc() != prefix {
            problems.add(
                key_path!["bgp", "network", index, "prefix"],
                format!(
                    "{prefix} has host bits set; did you mean {}?",
                    prefix.trunc()
                ),
            );
        }
        if let Some(first) = networks.insert(prefix, index) {
            problems.add(
                key_path!["bgp", "network", index, "prefix"],
                format!("{prefix} is already originated by bgp.network[{first}]"),
            );
        }
    }
}

fn check_sessions(config: &Config, problems: &mut Problems<'_, '_>) {
    let bgp = &config.bgp;
    let mut addresses: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for (index, neighbor) in bgp.neighbors.iter().enumerate() {
        let at = |key: &str| key_path!["bgp", "neighbor", index, key];
        let address = neighbor.address;
        if let Some(first) = addresses.insert(address, index) {
            problems.add(
                at("address"),
                format!("neighbor {address} is already configured as bgp.neighbor[{first}]"),
            );
        }
        if !usable_peer_address(address) {
            problems.add(at("address"), format!("{address} cannot be a BGP neighbor"));
        }
        if let Some(local) = neighbor.local_address
            && local.is_ipv4() != address.is_ipv4()
        {
            problems.add(
                at("local_address"),
                format!("local_address {local} is not of the family of {address}"),
            );
        }
        match (is_link_local(address), &neighbor.interface) {
            (true, None) => problems.add(
                at("address"),
                format!("link-local neighbor {address} needs interface = \"NAME\""),
            ),
            (false, Some(interface)) => problems.add(
                at("interface"),
                format!("interface {interface} is only for link-local (fe80::/10) neighbors"),
            ),
            _ => {}
        }
        if neighbor.passive && bgp.listen.is_empty() {
            problems.add(
                at("passive"),
                "a passive neighbor must connect to us, but bgp.listen is empty",
            );
        }
        if neighbor.connect_retry == 0 {
            problems.add(
                at("connect_retry"),
                "connect_retry must be at least 1 second",
            );
        }
        check_session(config, problems, &neighbor.session, address, &at);
    }
    for (index, range) in bgp.listen_ranges.iter().enumerate() {
        let at = |key: &str| key_path!["bgp", "listen_range", index, key];
        if range.prefix.trunc() != range.prefix {
            problems.add(
                at("prefix"),
                format!(
                    "{} has host bits set; did you mean {}?",
                    range.prefix,
                    range.prefix.trunc()
                ),
            );
        }
        for (other_index, other) in bgp.listen_ranges.iter().enumerate().take(index) {
            if overlap(range.prefix, other.prefix) {
                problems.add(
                    at("prefix"),
                    format!(
                        "{} overlaps bgp.listen_range[{other_index}] ({})",
                        range.prefix, other.prefix
                    ),
                );
            }
        }
        if bgp.listen.is_empty() {
            problems.add(
                at("prefix"),
                "listen ranges accept connections, but bgp.listen is empty",
            );
        }
        if range.max_neighbors == Some(0) {
            problems.add(at("max_neighbors"), "max_neighbors must be at least 1");
        }
        for key in NEIGHBOR_ONLY {
            let path = at(key);
            if problems.locator.contains(&path) {
                problems.add(
                    path,
                    format!(
                        "{key} applies to [[bgp.neighbor]] only: a listen range accepts its sessions"
                    ),
                );
            }
        }
        check_session(config, problems, &range.session, range.prefix.addr(), &at);
    }
}

/// The checks of the options every kind of session has; `address` is the peer's (a
/// listen range's prefix stands for its peers' family).
fn check_session(
    config: &Config,
    problems: &mut Problems<'_, '_>,
    session: &SessionOptions,
    address: IpAddr,
    at: &dyn Fn(&str) -> KeyPath,
) {
    if session.remote_asn.get() == u32::from(bgp_proto::AS_TRANS) {
        problems.add(
            at("remote_asn"),
            "AS 23456 is AS_TRANS (RFC 6793) and cannot be a peer",
        );
    }
    if let Some(password) = &session.password {
        if password.len() > MAX_PASSWORD_LEN {
            problems.add(
                at("password"),
                format!(
                    "password is {} bytes; TCP-MD5 keys are at most {MAX_PASSWORD_LEN}",
                    password.len()
                ),
            );
        }
        if password.is_empty() {
            problems.add(
                at("password"),
                "password is empty; remove the key for no TCP-MD5",
            );
        }
    }
    if session.ttl_security && session.multihop.is_some() {
        problems.add(
            at("ttl_security"),
            "ttl_security (GTSM) and multihop exclude each other: GTSM accepts only directly connected peers",
        );
    }
    if session.multihop == Some(0) {
        problems.add(at("multihop"), "multihop must be a TTL from 1 to 255");
    }
    let hold_time = session.hold_time.seconds();
    if let Some(keepalive) = session.keepalive {
        if hold_time == 0 && keepalive != 0 {
            problems.add(
                at("keepalive"),
                "keepalive is set but hold_time is 0 (no keepalives)",
            );
        } else if hold_time != 0 && (keepalive == 0 || keepalive >= hold_time) {
            problems.add(
                at("keepalive"),
                format!("keepalive must be between 1 and hold_time ({hold_time}) - 1 seconds"),
            );
        }
    }
    if let Some(send_hold) = session.send_hold_time
        && send_hold <= u32::from(hold_time)
    {
        problems.add(
            at("send_hold_time"),
            format!("send_hold_time must exceed hold_time ({hold_time} s)"),
        );
    }
    if let Some(families) = &session.families {
        if families.is_empty() {
            problems.add(
                at("families"),
                "families is empty; list \"ipv4\" and/or \"ipv6\"",
            );
        }
        let mut seen = BTreeSet::new();
        for family in families {
            if !seen.insert(family) {
                problems.add(at("families"), format!("{family:?} is listed twice"));
            }
        }
    }
    if session.extended_next_hop && !session.families_for(address).contains(&FamilyName::Ipv4) {
        problems.add(
            at("extended_next_hop"),
            "extended_next_hop is for IPv4 routes, but \"ipv4\" is not in families",
        );
    }
    if let Some(bfd) = &session.bfd {
        check_bfd(config, problems, bfd, at("bfd"));
    }
    for (key, name) in [("import", &session.import), ("export", &session.export)] {
        if let Some(name) = name
            && !config.policy.filters.iter().any(|f| &f.name == name)
        {
            problems.add(at(key), format!("no [[policy.filter]] is named {name:?}"));
        }
    }
}

/// A `bfd` table at `path` (a session's or `[bgp] node_mesh_bfd`).
fn check_bfd(
    config: &Config,
    problems: &mut Problems<'_, '_>,
    bfd: &super::bfd::BfdOptions,
    path: KeyPath,
) {
    for (key, message) in bfd.problems(config.bgp.graceful_restart.enabled) {
        let mut at = path.clone();
        at.push(key.into());
        problems.add(at, message);
    }
}

fn check_policy(config: &Config, problems: &mut Problems<'_, '_>) {
    let policy = &config.policy;
    let mut names = BTreeMap::new();
    for (index, list) in policy.prefix_lists.iter().enumerate() {
        if let Some(first) = names.insert(list.name.as_str(), index) {
            problems.add(
                key_path!["policy", "prefix_list", index, "name"],
                format!(
                    "prefix list {:?} is already defined as policy.prefix_list[{first}]",
                    list.name
                ),
            );
        }
        for (rule_index, rule) in list.rules.iter().enumerate() {
            let at = key_path!["policy", "prefix_list", index, "rules", rule_index];
            let length = rule.prefix.prefix_len();
            let max = rule.prefix.max_prefix_len();
            let ge = rule.ge.unwrap_or(length);
            let le = rule
                .le
                .unwrap_or(if rule.ge.is_some() { max } else { length });
            if ge < length || ge > max {
                problems.add(
                    at.clone(),
                    format!("ge {ge} must be between the prefix length {length} and {max}"),
                );
            }
            if le < ge || le > max {
                problems.add(
                    at.clone(),
                    format!("le {le} must be between ge ({ge}) and {max}"),
                );
            }
            if rule.prefix.trunc() != rule.prefix {
                problems.add(
                    at,
                    format!(
                        "{} has host bits set; did you mean {}?",
                        rule.prefix,
                        rule.prefix.trunc()
                    ),
                );
            }
        }
    }
    let mut filters = BTreeMap::new();
    for (index, filter) in policy.filters.iter().enumerate() {
        if let Some(first) = filters.insert(filter.name.as_str(), index) {
            problems.add(
                key_path!["policy", "filter", index, "name"],
                format!(
                    "filter {:?} is already defined as policy.filter[{first}]",
                    filter.name
                ),
            );
        }
        for (rule_index, rule) in filter.rules.iter().enumerate() {
            if let Some(list) = &rule.prefix_list
                && !policy.prefix_lists.iter().any(|l| &l.name == list)
            {
                problems.add(
                    key_path!["policy", "filter", index, "rule", rule_index, "prefix_list"],
                    format!("no [[policy.prefix_list]] is named {list:?}"),
                );
            }
        }
    }
}

fn check_log(config: &Config, problems: &mut Problems<'_, '_>) {
    if let Some(level) = &config.log.level
        && let Err(error) = tracing_subscriber::EnvFilter::builder().parse(level)
    {
        problems.add(
            key_path!["log", "level"],
            format!("not a tracing filter such as \"info\" or \"bgpd=debug\": {error}"),
        );
    }
}

fn check_dataplane(config: &Config, problems: &mut Problems<'_, '_>) {
    use super::dataplane::{MAX_MTU, MIN_MTU};
    if let Some(mtu) = config.dataplane.as_ref().and_then(|d| d.mtu)
        && !(MIN_MTU..=MAX_MTU).contains(&mtu)
    {
        problems.add(
            key_path!["dataplane", "mtu"],
            format!("mtu must be from {MIN_MTU} to {MAX_MTU}"),
        );
    }
}

fn check_ipam(config: &Config, problems: &mut Problems<'_, '_>) {
    if let Some(bfd) = &config.bgp.node_mesh_bfd {
        if config.node_mesh() {
            check_bfd(config, problems, bfd, key_path!["bgp", "node_mesh_bfd"]);
        } else {
            problems.add(
                key_path!["bgp", "node_mesh_bfd"],
                "node_mesh_bfd is for the node mesh, which is off (node_mesh = false or no [ipam]); remove it",
            );
        }
    }
    let Some(ipam) = &config.ipam else {
        if config.bgp.node_mesh == Some(true) {
            problems.add(
                key_path!["bgp", "node_mesh"],
                "node_mesh follows the node registry of [ipam]; configure [ipam] or remove node_mesh",
            );
        }
        return;
    };
    if let Some(node) = &ipam.node
        && let Err(error) = ipam::keys::validate_node(node)
    {
        problems.add(key_path!["ipam", "node"], error.to_string());
    }
    if let Err(error) = ipam::store::validate_url(&ipam.datastore) {
        problems.add(key_path!["ipam", "datastore"], error.to_string());
    }
    let mut addresses = BTreeSet::new();
    for (index, address) in ipam.node_addresses.iter().enumerate() {
        if !usable_peer_address(*address) || address.is_loopback() {
            problems.add(
                key_path!["ipam", "node_addresses", index],
                format!("{address} cannot be a node's peering address"),
            );
        }
        if !addresses.insert(address) {
            problems.add(
                key_path!["ipam", "node_addresses", index],
                format!("{address} is listed twice"),
            );
        }
    }
    if let Some(detection) = &ipam.address_detection {
        if !ipam.node_addresses.is_empty() {
            problems.add(
                key_path!["ipam", "address_detection"],
                "give node_addresses or address_detection, not both",
            );
        }
        if *detection == cluster::address::Detection::KubernetesInternalIp
            && config.kubernetes.is_none()
        {
            problems.add(
                key_path!["ipam", "address_detection"],
                "kubernetes-internal-ip reads the Node's addresses from the API server: add a [kubernetes] section, or use another method or node_addresses",
            );
        }
    }
    for key in ipam.node_labels.keys() {
        if key.is_empty() {
            problems.add(key_path!["ipam", "node_labels"], "a label name is empty");
        }
    }
    if ipam.resync_interval == 0 {
        problems.add(
            key_path!["ipam", "resync_interval"],
            "resync_interval must be at least 1 second",
        );
    }
    for (index, pool) in ipam.pools.iter().enumerate() {
        let at = |key: &str| key_path!["ipam", "pool", index, key];
        if pool.ipip_mode.is_some() {
            problems.add(at("ipip_mode"), control_proto::ipam::IPIP_REFUSED);
        }
        let stored = ipam::Pool::from_settings(pool);
        if !(1..=ipam::pool::MAX_VXLAN_VNI).contains(&stored.vxlan_vni) {
            problems.add(
                at("vxlan_vni"),
                format!(
                    "{} is outside 1-{} (24 bits)",
                    stored.vxlan_vni,
                    ipam::pool::MAX_VXLAN_VNI
                ),
            );
        } else if stored.vxlan_port == 0 {
            problems.add(at("vxlan_port"), "0 is not a UDP port");
        } else if let Err(error) = stored.validate() {
            let key = if pool.cidr.trunc() == pool.cidr {
                "block_size"
            } else {
                "cidr"
            };
            problems.add(at(key), error.to_string());
        }
        if pool.node_selector.keys().any(String::is_empty) {
            problems.add(at("node_selector"), "a label name is empty");
        }
        for (other_index, other) in ipam.pools.iter().enumerate().take(index) {
            let theirs = ipam::Pool::from_settings(other);
            if stored.vxlan_mode.encapsulates()
                && theirs.vxlan_mode.encapsulates()
                && stored.family() == theirs.family()
            {
                for (key, ours, their) in [
                    ("vxlan_vni", stored.vxlan_vni, theirs.vxlan_vni),
                    (
                        "vxlan_port",
                        u32::from(stored.vxlan_port),
                        u32::from(theirs.vxlan_port),
                    ),
                ] {
                    if ours != their {
                        problems.add(
                            at(key),
                            format!(
                                "{ours} differs from ipam.pool[{other_index}]'s {their}: one VXLAN device serves every {} pool",
                                stored.family()
                            ),
                        );
                    }
                }
            }
            if overlap(pool.cidr, other.cidr) {
                problems.add(
                    at("cidr"),
                    format!(
                        "{} overlaps ipam.pool[{other_index}] ({})",
                        pool.cidr, other.cidr
                    ),
                );
            }
        }
    }
}

/// Unicast addresses a TCP session can reach.
fn usable_peer_address(address: IpAddr) -> bool {
    !(address.is_unspecified() || address.is_multicast() || is_broadcast(address))
}

fn is_link_local(address: IpAddr) -> bool {
    matches!(address, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

fn is_broadcast(address: IpAddr) -> bool {
    matches!(address, IpAddr::V4(v4) if v4.is_broadcast())
}

fn overlap(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}
