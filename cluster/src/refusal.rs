//! Why a custom resource (or a Node's Wren annotation) is refused: each refusal is
//! one variant, whose name is the `reason` of the Kubernetes Event that reports it
//! ([`crate::events`]) and whose text is the Event's one-line note and the log line.

/// Why `BGPConfiguration`, a `BGPPeer`, or a Node's Wren setting is refused (whole, or
/// for one node). [`Refusal::reason`] is the variant's name, in CamelCase.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    // A BGPConfiguration or BGPPeer spec, the same on every node.
    #[error("asNumber {0} is not a usable AS number")]
    UnusableAsNumber(u32),
    #[error("listenPort 0 is not a port")]
    InvalidListenPort,
    #[error("communities: {0:?} is not AS:VALUE (each 0-65535)")]
    InvalidCommunity(String),
    #[error("node and nodeSelector exclude each other")]
    BothNodeAndNodeSelector,
    #[error("node {node:?} {reason}")]
    InvalidNodeName { node: String, reason: String },
    #[error("{field}: {reason}")]
    InvalidSelector { field: &'static str, reason: String },
    #[error("peerIP and peerSelector exclude each other")]
    BothPeerIPAndPeerSelector,
    #[error("needs peerIP or peerSelector")]
    NoPeerIPOrPeerSelector,
    #[error("peerIP {0:?} is not an IP address")]
    InvalidPeerIP(String),
    #[error("asNumber is required with peerIP")]
    MissingAsNumber,
    #[error("holdTime {0}: 0 or 3 to 65535 seconds")]
    InvalidHoldTime(u32),
    #[error("families: {0:?} is not ipv4 or ipv6")]
    InvalidFamily(String),
    #[error("sourceAddress {0:?} is not UseNodeIP or None")]
    InvalidSourceAddress(String),
    #[error("bfd.{field} {value:?} is not {expected}")]
    InvalidBfd {
        field: &'static str,
        value: String,
        expected: &'static str,
    },

    // What one node finds when it applies resources that are fine in themselves.
    #[error("node {node}: {key} {value:?} is not {expected}")]
    InvalidNodeSetting {
        node: String,
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("Secret {secret} has no key {key:?}: not peering")]
    SecretKeyNotFound { secret: String, key: String },
    #[error("{address} is already a peer of {owner}: skipped")]
    AddressAlreadyPeered {
        address: std::net::IpAddr,
        owner: String,
    },
    #[error("node {0} has no AS number (no wren.io/asn, no asNumber): not peering")]
    PeerNodeWithoutAsNumber(String),
}

impl Refusal {
    /// The Event reason: the variant's name.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::UnusableAsNumber(_) => "UnusableAsNumber",
            Refusal::InvalidListenPort => "InvalidListenPort",
            Refusal::InvalidCommunity(_) => "InvalidCommunity",
            Refusal::BothNodeAndNodeSelector => "BothNodeAndNodeSelector",
            Refusal::InvalidNodeName { .. } => "InvalidNodeName",
            Refusal::InvalidSelector { .. } => "InvalidSelector",
            Refusal::BothPeerIPAndPeerSelector => "BothPeerIPAndPeerSelector",
            Refusal::NoPeerIPOrPeerSelector => "NoPeerIPOrPeerSelector",
            Refusal::InvalidPeerIP(_) => "InvalidPeerIP",
            Refusal::MissingAsNumber => "MissingAsNumber",
            Refusal::InvalidHoldTime(_) => "InvalidHoldTime",
            Refusal::InvalidFamily(_) => "InvalidFamily",
            Refusal::InvalidSourceAddress(_) => "InvalidSourceAddress",
            Refusal::InvalidBfd { .. } => "InvalidBfd",
            Refusal::InvalidNodeSetting { .. } => "InvalidNodeSetting",
            Refusal::SecretKeyNotFound { .. } => "SecretKeyNotFound",
            Refusal::AddressAlreadyPeered { .. } => "AddressAlreadyPeered",
            Refusal::PeerNodeWithoutAsNumber(_) => "PeerNodeWithoutAsNumber",
        }
    }
}

/// The object a node-specific problem is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    /// A Node (its own Wren annotations or labels).
    Node(String),
    /// A `BGPPeer` that is fine in itself.
    BgpPeer(String),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Node(name) => write!(f, "Node {name}"),
            Subject::BgpPeer(name) => write!(f, "BGPPeer {name}"),
        }
    }
}

/// A problem one node has with a resource: that resource is left out for this node
/// alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub subject: Subject,
    pub refusal: Refusal,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.subject, self.refusal)
    }
}
