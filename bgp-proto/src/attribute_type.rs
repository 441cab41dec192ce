//! Path attribute type codes (IANA "BGP Path Attributes") and their names: the one
//! set of these numbers, used by the attribute codec, by error messages and by test
//! peers. A module of its own (also reachable as `attribute::attribute_type`) so that
//! `error` can name an attribute without depending on the attribute codec.

/// ORIGIN.
pub const ORIGIN: u8 = 1;
/// AS_PATH.
pub const AS_PATH: u8 = 2;
/// NEXT_HOP.
pub const NEXT_HOP: u8 = 3;
/// MULTI_EXIT_DISC.
pub const MULTI_EXIT_DISC: u8 = 4;
/// LOCAL_PREF.
pub const LOCAL_PREF: u8 = 5;
/// ATOMIC_AGGREGATE.
pub const ATOMIC_AGGREGATE: u8 = 6;
/// AGGREGATOR.
pub const AGGREGATOR: u8 = 7;
/// COMMUNITIES (RFC 1997).
pub const COMMUNITIES: u8 = 8;
/// ORIGINATOR_ID (RFC 4456).
pub const ORIGINATOR_ID: u8 = 9;
/// CLUSTER_LIST (RFC 4456).
pub const CLUSTER_LIST: u8 = 10;
/// MP_REACH_NLRI (RFC 4760).
pub const MP_REACH_NLRI: u8 = 14;
/// MP_UNREACH_NLRI (RFC 4760).
pub const MP_UNREACH_NLRI: u8 = 15;
/// EXTENDED COMMUNITIES (RFC 4360).
pub const EXTENDED_COMMUNITIES: u8 = 16;
/// AS4_PATH (RFC 6793).
pub const AS4_PATH: u8 = 17;
/// AS4_AGGREGATOR (RFC 6793).
pub const AS4_AGGREGATOR: u8 = 18;
/// Tunnel Encapsulation (RFC 9012); kept as unknown.
pub const TUNNEL_ENCAPSULATION: u8 = 23;
/// LARGE_COMMUNITY (RFC 8092).
pub const LARGE_COMMUNITY: u8 = 32;
/// Only to Customer (RFC 9234).
pub const OTC: u8 = 35;
/// BGP Prefix-SID (RFC 8669); kept as unknown.
pub const PREFIX_SID: u8 = 40;

/// The name of an attribute type code, for messages.
pub fn type_name(code: u8) -> &'static str {
    match code {
        ORIGIN => "ORIGIN",
        AS_PATH => "AS_PATH",
        NEXT_HOP => "NEXT_HOP",
        MULTI_EXIT_DISC => "MULTI_EXIT_DISC",
        LOCAL_PREF => "LOCAL_PREF",
        ATOMIC_AGGREGATE => "ATOMIC_AGGREGATE",
        AGGREGATOR => "AGGREGATOR",
        COMMUNITIES => "COMMUNITIES",
        ORIGINATOR_ID => "ORIGINATOR_ID",
        CLUSTER_LIST => "CLUSTER_LIST",
        MP_REACH_NLRI => "MP_REACH_NLRI",
        MP_UNREACH_NLRI => "MP_UNREACH_NLRI",
        EXTENDED_COMMUNITIES => "EXTENDED_COMMUNITIES",
        AS4_PATH => "AS4_PATH",
        AS4_AGGREGATOR => "AS4_AGGREGATOR",
        TUNNEL_ENCAPSULATION => "TUNNEL_ENCAPSULATION",
        LARGE_COMMUNITY => "LARGE_COMMUNITY",
        OTC => "OTC",
        PREFIX_SID => "PREFIX_SID",
        _ => "attribute",
    }
}
