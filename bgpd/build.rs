//! Link settings of bgpd's binaries that keep its resident set small.
//!
//! - **Packed relative relocations** (`-z pack-relative-relocs`, DT_RELR; GNU ld 2.38,
//!   lld and glibc 2.36 or later). bgpd is a position-independent executable: at start
//!   the loader writes the address of every pointer in its read-only tables (vtables,
//!   string tables). Listed one by one (RELA), those relocations took 1 MB of the file,
//!   read at every start and resident from then on: 10% of an idle bgpd's resident set.
//!   Packed, they take 13 kB.
//! - **Hot functions first** (`--symbol-ordering-file`, lld: Rust's default linker on
//!   x86_64-unknown-linux-gnu since 1.90). The kernel maps a binary's code 64 KiB
//!   around each page a process touches, from the page cache. bgpd's code is 15.9 MB
//!   (the Kubernetes, etcd and HTTP clients, mostly untouched on most nodes), and the
//!   1.3 MB it runs was spread over all of it, so a daemon with 100 sessions had three
//!   times the code resident that it ran. `hot-functions.txt` lists the functions that
//!   ran, under valgrind's callgrind, in the bench's `scale-mesh` and `scale-reflector`
//!   runs; the linker puts them first and together. It is a profile, like PGO's: a
//!   name it no longer finds (a dependency, or the features of the build, changed: build
//!   bgpd with a cargo command of its own) is skipped without a word,
//!   and `scripts/hot-functions` makes the list again.
use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=hot-functions.txt");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let profile = std::env::var("PROFILE").unwrap_or_default();
    if os == "linux" && env == "gnu" && arch == "x86_64" && profile == "release" {
        let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("hot-functions.txt");
        println!(
            "cargo::rustc-link-arg-bins=-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
            list.display()
        );
    }
}
