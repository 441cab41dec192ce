//! Entering a pod's network namespace. `setns` changes the namespace of the calling
//! thread only, so the pod's side of the work runs on a thread of its own that enters
//! the namespace, opens its own netlink socket there, runs one single-threaded tokio
//! runtime and ends (a thread that entered a pod's namespace never serves anything
//! else). The plugin's main thread stays in the host's namespace.

use std::fs::File;
use std::future::Future;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

use crate::error::{Error, Result};
use crate::kernel::Kernel;

/// An opened network namespace file (`CNI_NETNS`).
#[derive(Debug)]
pub struct Netns {
    path: PathBuf,
    file: File,
}

impl Netns {
    /// Opens `path`; a path that does not exist is [`Error::Netns`].
    pub fn open(path: &Path) -> Result<Netns> {
        let file = File::open(path).map_err(|e| Error::Netns {
            path: path.to_owned(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                String::from("does not exist")
            } else {
                e.to_string()
            },
        })?;
        Ok(Netns {
            path: path.to_owned(),
            file,
        })
    }

    /// Opens `path`, `None` when it does not exist (DEL: a pod already gone).
    pub fn open_if_present(path: &Path) -> Result<Option<Netns>> {
        match Netns::open(path) {
            Ok(netns) => Ok(Some(netns)),
            Err(Error::Netns { reason, .. }) if reason == "does not exist" => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// True while `path` still names the namespace this file was opened from (a pod whose
    /// namespace was deleted meanwhile fails this).
    pub fn still_there(&self) -> bool {
        let (Ok(now), Ok(opened)) = (std::fs::metadata(&self.path), self.file.metadata()) else {
            return false;
        };
        use std::os::unix::fs::MetadataExt;
        now.dev() == opened.dev() && now.ino() == opened.ino()
    }

    /// Runs `work` on a new thread inside this namespace, with a netlink connection
    /// opened there, and returns its outcome.
    pub fn run<T, F, Fut>(&self, work: F) -> Result<T>
    where
        T: Send,
        F: FnOnce(Kernel) -> Fut + Send,
        Fut: Future<Output = Result<T>>,
    {
        let fd = self.file.as_fd();
        let path = &self.path;
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name(String::from("wren-netns"))
                .spawn_scoped(scope, move || {
                    nix::sched::setns(fd, CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netns {
                        path: path.clone(),
                        reason: format!("entering it: {e}"),
                    })?;
                    block_on(async move { work(Kernel::open()?).await })
                })
                .map_err(|e| Error::kernel("starting the namespace thread", e))?;
            thread
                .join()
                .map_err(|_| Error::kernel("the namespace thread", "panicked"))?
        })
    }
}

/// Runs `future` on a single-threaded tokio runtime made for it (netlink connections
/// spawned inside run on it too).
pub fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::kernel("starting the runtime", e))?;
    runtime.block_on(future)
}
