//! The control socket server: a Unix stream socket created with the configured mode,
//! owner and group (before anyone can connect: bound, set up, then listening), one
//! task per client, JSON lines (the types of `control-proto`), and credential checks
//! (SO_PEERCRED plus the caller's groups from /proc) when `group` or
//! `read_only_group` is set. `show-routes` answers are streamed: each chunk of
//! routes is written and flushed before the next is asked of the rib task. A
//! `monitor` request hands the connection to [`super::monitor`] for good.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use nix::unistd::{Group, Uid, User};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tokio_util::codec::{Framed, LinesCodec};

use control_proto::{MAX_REQUEST_LEN, Request, Response};

use super::encode;
use super::handler::Handler;
use super::routes::RouteStream;
use crate::config::ControlConfig;

/// The control socket file; dropping it removes the file (the serving task is
/// the daemon's to stop).
#[derive(Debug)]
pub struct ControlSocket {
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Who may do what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Check credentials at all (`group` or `read_only_group` set).
    pub enforced: bool,
    /// Users with every right besides root: bgpd's own user and the socket's owner.
    pub full_users: Vec<u32>,
    pub full_group: Option<u32>,
    pub read_only_group: Option<u32>,
}

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Full,
    ReadOnly,
}

impl AccessPolicy {
    /// The rights of a caller with `uid` and `groups` (primary and supplementary).
    pub fn access(&self, uid: u32, groups: &[u32]) -> Option<Access> {
        if !self.enforced || uid == 0 || self.full_users.contains(&uid) {
            return Some(Access::Full);
        }
        if self.full_group.is_some_and(|gid| groups.contains(&gid)) {
            return Some(Access::Full);
        }
        if self
            .read_only_group
            .is_some_and(|gid| groups.contains(&gid))
        {
            return Some(Access::ReadOnly);
        }
        None
    }
}

/// Creates the socket and starts serving; the task never ends by itself.
pub fn spawn(
    config: &ControlConfig,
    handler: Arc<Handler>,
) -> anyhow::Result<(ControlSocket, JoinHandle<()>)> {
    let path = config.socket.clone();
    let owner = config.owner.as_deref().map(user_id).transpose()?;
    let group = config.group.as_deref().map(group_id).transpose()?;
    let read_only_group = config
        .read_only_group
        .as_deref()
        .map(group_id)
        .transpose()?;
    let listener = bind(&path, config.mode.bits(), owner, group)
        .map_err(|error| anyhow::anyhow!("control socket {}: {error}", path.display()))?;
    let mut full_users = vec![Uid::current().as_raw()];
    full_users.extend(owner);
    let policy = Arc::new(AccessPolicy {
        enforced: group.is_some() || read_only_group.is_some(),
        full_users,
        full_group: group,
        read_only_group,
    });
    tracing::info!(socket = %path.display(), mode = %config.mode, "control socket ready");
    let task = tokio::spawn(serve(listener, handler, policy));
    Ok((ControlSocket { path }, task))
}

async fn serve(listener: UnixListener, handler: Arc<Handler>, policy: Arc<AccessPolicy>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let handler = handler.clone();
                let policy = policy.clone();
                tokio::spawn(async move {
                    if let Err(error) = client(stream, handler, &policy).await {
                        tracing::debug!("control client: {error}");
                    }
                });
            }
            Err(error) => {
                tracing::warn!("control socket accept: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

async fn client(
    stream: UnixStream,
    handler: Arc<Handler>,
    policy: &AccessPolicy,
) -> anyhow::Result<()> {
    let credentials = stream.peer_cred()?;
    let uid = credentials.uid();
    let groups = caller_groups(credentials.gid(), credentials.pid());
    let access = policy.access(uid, &groups);
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(MAX_REQUEST_LEN));
    while let Some(line) = lines.next().await {
        let line = line?;
        let response = match serde_json::from_str::<Request>(&line) {
            Err(error) => Response::Error(format!("bad request: {error}")),
            Ok(request) => match access {
                None => Response::Error(format!(
                    "permission denied: user {uid} is not in the control socket's groups"
                )),
                Some(Access::ReadOnly) if !request.is_read_only() => Response::Error(format!(
                    "permission denied: user {uid} has read-only access (show commands only)"
                )),
                Some(_) => match request {
                    Request::ShowRoutes {
                        query,
                        after,
                        limit,
                    } => match handler.routes(query, after, limit).await {
                        Ok(stream) => {
                            send_routes(&mut lines, stream).await?;
                            continue;
                        }
                        Err(message) => Response::Error(message),
                    },
                    Request::Monitor { topics } if topics.is_empty() => {
                        Response::Error("monitor: no topic asked for".to_owned())
                    }
                    Request::Monitor { topics } => {
                        let events = handler.events.subscribe();
                        return super::monitor::serve(lines, events, topics).await;
                    }
                    request => handler.handle(request).await,
                },
            },
        };
        lines.send(encode(&response)).await?;
    }
    Ok(())
}

/// Writes a `show-routes` answer chunk by chunk: a chunk is flushed to the client
/// before the next one is asked of the rib task.
async fn send_routes(
    lines: &mut Framed<UnixStream, LinesCodec>,
    mut stream: RouteStream,
) -> anyhow::Result<()> {
    loop {
        match stream.next_chunk().await {
            Ok(Some(routes)) => {
                for route in routes {
                    lines.feed(encode(&Response::Route(route))).await?;
                }
                SinkExt::<String>::flush(lines).await?;
            }
            Ok(None) => break,
            Err(message) => {
                lines.send(encode(&Response::Error(message))).await?;
                return Ok(());
            }
        }
    }
    lines.send(encode(&Response::End(stream.end()))).await?;
    Ok(())
}

/// The caller's primary group and supplementary groups (from /proc/PID/status).
fn caller_groups(gid: u32, pid: Option<i32>) -> Vec<u32> {
    let mut groups = vec![gid];
    if let Some(pid) = pid
        && let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
        && let Some(line) = status.lines().find(|line| line.starts_with("Groups:"))
    {
        groups.extend(
            line["Groups:".len()..]
                .split_whitespace()
                .filter_map(|group| group.parse::<u32>().ok()),
        );
    }
    groups
}

/// Binds the socket, sets mode and ownership, then listens: no one can connect
/// before the permissions are right.
fn bind(
    path: &Path,
    mode: u32,
    owner: Option<u32>,
    group: Option<u32>,
) -> io::Result<UnixListener> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        std::fs::create_dir_all(parent)?;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))?;
    }
    remove_stale(path)?;
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    socket.bind(&socket2::SockAddr::unix(path)?)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if owner.is_some() || group.is_some() {
        std::os::unix::fs::chown(path, owner, group)?;
    }
    socket.listen(128)?;
    socket.set_nonblocking(true)?;
    UnixListener::from_std(std::os::unix::net::UnixListener::from(
        std::os::fd::OwnedFd::from(socket),
    ))
}

/// Removes a socket file left by a bgpd that is gone; refuses when one still answers.
fn remove_stale(path: &Path) -> io::Result<()> {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a socket",
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another bgpd is listening on it",
        ));
    }
    std::fs::remove_file(path)
}

fn user_id(name: &str) -> anyhow::Result<u32> {
    if let Ok(uid) = name.parse::<u32>() {
        return Ok(uid);
    }
    match User::from_name(name) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        Ok(None) => anyhow::bail!("[control] owner: no user {name:?}"),
        Err(error) => anyhow::bail!("[control] owner: looking up {name:?}: {error}"),
    }
}

fn group_id(name: &str) -> anyhow::Result<u32> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    match Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => anyhow::bail!("[control] no group {name:?}"),
        Err(error) => anyhow::bail!("[control] looking up group {name:?}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_follows_users_and_groups() {
        let open = AccessPolicy {
            enforced: false,
            full_users: vec![],
            full_group: None,
            read_only_group: None,
        };
        assert_eq!(open.access(1000, &[1000]), Some(Access::Full));
        let policy = AccessPolicy {
            enforced: true,
            full_users: vec![998],
            full_group: Some(500),
            read_only_group: Some(600),
        };
        assert_eq!(policy.access(0, &[0]), Some(Access::Full));
        assert_eq!(policy.access(998, &[998]), Some(Access::Full));
        assert_eq!(policy.access(1000, &[1000, 500]), Some(Access::Full));
        assert_eq!(policy.access(1001, &[1001, 600]), Some(Access::ReadOnly));
        assert_eq!(policy.access(1002, &[1002]), None);
    }

    #[test]
    fn groups_include_supplementary_ones() {
        let pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
        let groups = caller_groups(12345, Some(pid));
        assert_eq!(groups[0], 12345);
        let ours = nix::unistd::getgroups().unwrap_or_default();
        for group in ours {
            assert!(
                groups.contains(&group.as_raw()),
                "{group} missing from {groups:?}"
            );
        }
    }
}
