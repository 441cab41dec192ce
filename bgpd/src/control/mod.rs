//! The control socket's server: [`server`] (the socket, credentials, one task per
//! client, JSON lines), [`handler`] (the answers, typed by `control-proto`),
//! [`routes`] (`show routes` streamed: the rib task hands routes over in bounded
//! chunks, each asked for after the previous one was written) and [`monitor`]
//! (`bgpctl monitor`: the event stream, cut off for a client that cannot keep up).

pub mod handler;
pub mod monitor;
pub mod routes;
pub mod server;

/// One answer line.
pub fn encode(response: &control_proto::Response) -> String {
    serde_json::to_string(response)
        .unwrap_or_else(|error| format!("{{\"error\":\"cannot encode the answer: {error}\"}}"))
}
