//! glibc malloc's tuning calls as safe functions: [`set`] (`mallopt`), [`trim`]
//! (`malloc_trim`) and [`in_use`] (`mallinfo2`), for bgpd's allocator policy
//! (`bgpd::memory` says which values and why).
//!
//! One of the two crates of the workspace with `unsafe` code (`libm-symbols` is the
//! other): three foreign calls that take plain integers or nothing, return plain
//! values, touch no memory of the caller and have no precondition (glibc documents them
//! as MT-Safe). No crate offers them safely; the `libc` crate declares them `unsafe`
//! like every foreign function. Each call allows `unsafe_code` for itself alone; the
//! rest of the crate denies it.
//!
//! On a target without glibc (musl, other systems) they are no-ops that say so:
//! [`set`] returns [`Error::Unsupported`], [`trim`] reports nothing released and
//! [`in_use`] knows nothing.

/// A `mallopt` parameter bgpd sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parameter {
    /// `M_ARENA_MAX`: the most arenas (per-thread heaps) malloc creates.
    ArenaMax,
    /// `M_MMAP_THRESHOLD`: requests of at least this many bytes get their own
    /// mapping, returned to the kernel when freed. Setting it also stops glibc from
    /// raising it by itself (up to 32 MiB) after such a block is freed.
    MmapThreshold,
    /// `M_TRIM_THRESHOLD`: free bytes at the top of a heap beyond which `free`
    /// gives them back to the kernel.
    TrimThreshold,
}

impl Parameter {
    /// glibc's name for it (`malloc.h`).
    pub fn name(self) -> &'static str {
        match self {
            Parameter::ArenaMax => "M_ARENA_MAX",
            Parameter::MmapThreshold => "M_MMAP_THRESHOLD",
            Parameter::TrimThreshold => "M_TRIM_THRESHOLD",
        }
    }
}

/// Why a parameter was not set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("mallopt({name}, {value}) refused by the C library")]
    Refused { name: &'static str, value: i32 },
    #[error("mallopt({name}): not a glibc target")]
    Unsupported { name: &'static str },
}

/// Sets one malloc parameter for the whole process (`mallopt`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn set(parameter: Parameter, value: i32) -> Result<(), Error> {
    let code = match parameter {
        Parameter::ArenaMax => libc::M_ARENA_MAX,
        Parameter::MmapThreshold => libc::M_MMAP_THRESHOLD,
        Parameter::TrimThreshold => libc::M_TRIM_THRESHOLD,
    };
    #[allow(unsafe_code)]
    // SAFETY: mallopt takes two integers by value and reads or writes no memory of
    // the caller; glibc takes its own lock. Out-of-range values are refused (0).
    let accepted = unsafe { libc::mallopt(code, value) };
    if accepted == 1 {
        Ok(())
    } else {
        Err(Error::Refused {
            name: parameter.name(),
            value,
        })
    }
}

/// Sets one malloc parameter: not available without glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn set(parameter: Parameter, _value: i32) -> Result<(), Error> {
    Err(Error::Unsupported {
        name: parameter.name(),
    })
}

/// Gives the kernel back every whole free page of every arena (`malloc_trim(0)`:
/// since glibc 2.8 the free pages inside the heaps too, not only their tops).
/// True when something was released.
///
/// It walks and locks each arena in turn, so a thread allocating meanwhile waits:
/// call it when the process is quiet.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim takes an integer by value, touches only malloc's own
    // state under its arena locks, and has no precondition.
    let released = unsafe { libc::malloc_trim(0) };
    released == 1
}

/// Bytes the program holds from malloc now (`mallinfo2`: `uordblks`, in use in the
/// arenas, plus `hblkhd`, in blocks mapped on their own); `None` without glibc.
///
/// It walks the free lists of every arena under that arena's lock: seldom, not per
/// allocation.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn in_use() -> Option<u64> {
    #[allow(unsafe_code)]
    // SAFETY: mallinfo2 takes no argument and returns a struct by value; it reads only
    // malloc's own state, under its arena locks (glibc 2.33 and later; MT-Safe).
    let info = unsafe { libc::mallinfo2() };
    let bytes = info.uordblks.saturating_add(info.hblkhd);
    Some(u64::try_from(bytes).unwrap_or(u64::MAX))
}

/// Bytes in use: not known without glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn in_use() -> Option<u64> {
    None
}

/// Gives free pages back: nothing to do without glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() -> bool {
    false
}
