//! Any text handed to bgpd as its configuration file: parsing and checking never
//! panic, and every error renders as one line that names the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = bgpd::config::Config::parse(text, "fuzz.toml") {
        for error in errors.iter() {
            let line = error.to_string();
            assert!(line.starts_with("fuzz.toml"), "error without its file: {line}");
            assert!(!line.contains('\n'), "error spans lines: {line}");
        }
    }
});
