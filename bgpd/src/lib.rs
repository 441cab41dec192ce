//! bgpd: Wren's BGP speaker and its control tool `bgpctl`.
//!
//! Modules:
//! - [`decode`]: `bgpctl decode`, BGP messages from hex dumps (FRR, BIRD and Wireshark
//!   logs) to JSON with their RFC 7606 action.

pub mod decode;
