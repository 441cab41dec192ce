//! The two functions of the C math library that bgpd's dependencies call, defined in
//! bgpd's own binary: `pow`, from tokio's multi-thread scheduler (the moving average of
//! its tasks' poll time), and `log`, from SQLite's FTS5 ranking, which bgpd never uses.
//!
//! Why: the linker resolves a symbol to a definition in the program before a shared
//! library, and drops a library that resolves nothing (`--as-needed`, rustc's default
//! on Linux). With both here, bgpd does not need libm.so.6, and the loader does not
//! map it: about 500 KiB of a 100-session bgpd's resident set of 6.4 MiB (its code,
//! tables and relocated data, the most of it brought in by the loader's own
//! relocation of libm), for two functions of a few KiB.
//!
//! The implementations are the `libm` crate's, a port of musl's. Unlike glibc's they set
//! no `errno` on a domain or range error; neither caller reads it.
//!
//! Linking: a binary that names this crate (`use libm_symbols as _;`) gets both. Only
//! bgpd does; nothing calls them by these names but C and LLVM's own calls. Only with
//! glibc: elsewhere (musl's static libc, other systems) the crate is empty.

/// C's `double pow(double x, double y)`: `x` to the power `y`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // an exported C symbol (edition 2024 marks `no_mangle` unsafe): see the top
#[unsafe(no_mangle)]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// C's `double log(double x)`: the natural logarithm of `x`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // an exported C symbol (edition 2024 marks `no_mangle` unsafe): see the top
#[unsafe(no_mangle)]
pub extern "C" fn log(x: f64) -> f64 {
    libm::log(x)
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::{log, pow};

    /// Values C's `pow` and `log` give (C11 F.10.4.4 and F.10.3.7 for the special
    /// cases), for the inputs the callers pass and for the edges.
    #[test]
    fn pow_and_log_give_what_c_gives() {
        // tokio: 1 - (1 - 0.1)^polls.
        assert_eq!(pow(0.9, 1.0), 0.9);
        assert!((pow(0.9, 3.0) - 0.729).abs() < 1e-15);
        assert!((pow(0.9, 61.0) - 0.001_617_309_269_922_990_6).abs() < 1e-18);
        assert_eq!(pow(2.0, 10.0), 1024.0);
        assert_eq!(pow(2.0, -1.0), 0.5);
        assert_eq!(pow(4.0, 0.5), 2.0);
        assert_eq!(pow(f64::NAN, 0.0), 1.0);
        assert_eq!(pow(1.0, f64::NAN), 1.0);
        assert_eq!(pow(0.0, -1.0), f64::INFINITY);
        assert_eq!(pow(0.9, f64::INFINITY), 0.0);
        assert!(pow(-2.0, 0.5).is_nan());
        assert_eq!(pow(1e300, 2.0), f64::INFINITY);
        // SQLite's bm25: log of a document ratio.
        assert_eq!(log(1.0), 0.0);
        assert!((log(std::f64::consts::E) - 1.0).abs() < 1e-15);
        assert!((log(10.0) - std::f64::consts::LN_10).abs() < 1e-15);
        assert_eq!(log(0.0), f64::NEG_INFINITY);
        assert_eq!(log(f64::INFINITY), f64::INFINITY);
        assert!(log(-1.0).is_nan());
    }

    /// What Rust's own `powf` and `ln` reach here: LLVM lowers them to calls of `pow`
    /// and `log`, which this crate's test binary resolves to the definitions above
    /// (the calls would recurse, and the test overflow its stack, if the definitions
    /// were themselves lowered to those calls).
    #[test]
    fn rust_powf_and_ln_reach_these_definitions() {
        let x = std::hint::black_box(0.9_f64);
        let y = std::hint::black_box(3.0_f64);
        assert_eq!(x.powf(y), pow(0.9, 3.0));
        assert_eq!(x.ln(), log(0.9));
    }
}
