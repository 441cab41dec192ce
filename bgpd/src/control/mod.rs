//! The control socket's server: [`server`] (the socket, credentials, one task per
//! client, JSON lines), [`handler`] (the answers, typed by `control-proto`) and
//! [`routes`] (`show routes` streamed: the rib task hands routes over in bounded
//! chunks, each asked for after the previous one was written).

pub mod handler;
pub mod routes;
pub mod server;
