//! Whole messages: first byte picks the session context, the rest is the message
//! (a marker is put in front when missing, so the fuzzer reaches the bodies).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let ctx = common::context(flags);
    common::check(rest, &ctx);
    if rest.len() >= 3 {
        let mut framed = vec![0xff; 16];
        framed.extend_from_slice(rest);
        common::check(&framed, &ctx);
    }
});
