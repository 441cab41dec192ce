//! The BGP listening sockets (`[bgp] listen`): one accept task per address, handing
//! every connection to the supervisor, which knows the neighbors. TCP-MD5 keys of
//! the neighbors and listen ranges are set on every listener of their family, so
//! the kernel checks signatures before a connection is even accepted.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A connection a listener accepted.
#[derive(Debug)]
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
}

/// The open listeners.
#[derive(Debug, Default)]
pub struct Listeners {
    open: BTreeMap<SocketAddr, Listener>,
    /// TCP-MD5 keys in force, per peer prefix.
    keys: BTreeMap<IpNet, String>,
}

#[derive(Debug)]
struct Listener {
    socket: Arc<TcpListener>,
    task: JoinHandle<()>,
}

impl Listeners {
    /// Opens every address; the first that fails is the error (at start, fatal).
    pub fn open(
        addresses: &[SocketAddr],
        accepted: &mpsc::Sender<Accepted>,
    ) -> Result<Listeners, (SocketAddr, io::Error)> {
        let mut listeners = Listeners::default();
        for &address in addresses {
            listeners
                .add(address, accepted)
                .map_err(|error| (address, error))?;
        }
        Ok(listeners)
    }

    /// Opens the addresses that are new, closes those no longer wanted (a reload).
    /// Errors are logged: the listeners that work keep working.
    pub fn update(&mut self, addresses: &[SocketAddr], accepted: &mpsc::Sender<Accepted>) {
        let wanted: Vec<SocketAddr> = addresses.to_vec();
        let gone: Vec<SocketAddr> = self
            .open
            .keys()
            .filter(|address| !wanted.contains(address))
            .copied()
            .collect();
        for address in gone {
            if let Some(listener) = self.open.remove(&address) {
                listener.task.abort();
                tracing::info!(%address, "stopped listening");
            }
        }
        for address in wanted {
            if !self.open.contains_key(&address)
                && let Err(error) = self.add(address, accepted)
            {
                tracing::error!(%address, "cannot listen: {error}");
            }
        }
    }

    /// Makes the TCP-MD5 keys of the listeners equal to `keys` (peer prefix to key).
    pub fn set_keys(&mut self, keys: BTreeMap<IpNet, String>) {
        let removed: Vec<IpNet> = self
            .keys
            .keys()
            .filter(|prefix| !keys.contains_key(prefix))
            .copied()
            .collect();
        for prefix in removed {
            self.apply(prefix, None);
        }
        for (prefix, key) in &keys {
            if self.keys.get(prefix) != Some(key) {
                self.apply(*prefix, Some(key));
            }
        }
        self.keys = keys;
    }

    /// The addresses listened on.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.open.keys().copied().collect()
    }

    /// Stops every accept task.
    pub fn close(&mut self) {
        for (_, listener) in std::mem::take(&mut self.open) {
            listener.task.abort();
        }
    }

    fn add(&mut self, address: SocketAddr, accepted: &mpsc::Sender<Accepted>) -> io::Result<()> {
        let socket = Arc::new(crate::socket::listen(address)?);
        for (prefix, key) in &self.keys {
            if same_family(address, *prefix) {
                crate::socket::set_md5(&*socket, *prefix, Some(key.as_bytes()))?;
            }
        }
        let bound = socket.local_addr().unwrap_or(address);
        tracing::info!(address = %bound, "listening for BGP connections");
        let task = tokio::spawn(accept_loop(socket.clone(), accepted.clone()));
        self.open.insert(address, Listener { socket, task });
        Ok(())
    }

    fn apply(&self, prefix: IpNet, key: Option<&str>) {
        for (address, listener) in &self.open {
            if !same_family(*address, prefix) {
                continue;
            }
            if let Err(error) =
                crate::socket::set_md5(&*listener.socket, prefix, key.map(str::as_bytes))
            {
                tracing::error!(%address, peers = %prefix, "setting the TCP-MD5 key: {error}");
            }
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.close();
    }
}

fn same_family(address: SocketAddr, prefix: IpNet) -> bool {
    address.is_ipv4() == matches!(prefix, IpNet::V4(_))
}

async fn accept_loop(socket: Arc<TcpListener>, accepted: mpsc::Sender<Accepted>) {
    loop {
        match socket.accept().await {
            Ok((stream, peer)) => {
                if accepted.send(Accepted { stream, peer }).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::warn!("accepting a BGP connection: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
