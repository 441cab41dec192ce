//! The control socket: the server in bgpd ([`server`], [`handler`]), the client in
//! bgpctl ([`client`]), the JSON-lines [`protocol`] between them, and the tables
//! bgpctl prints ([`render`]).

pub mod cli;
pub mod client;
pub mod handler;
pub mod protocol;
pub mod render;
pub mod server;
