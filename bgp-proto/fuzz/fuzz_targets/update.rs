//! UPDATE bodies: first byte picks the context, the rest is the body behind a correct
//! header.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let ctx = common::context(flags);
    let Ok(length) = u16::try_from(19 + body.len()) else {
        return;
    };
    let mut frame = vec![0xff; 16];
    frame.extend_from_slice(&length.to_be_bytes());
    frame.push(2);
    frame.extend_from_slice(body);
    common::check(&frame, &ctx);
});
