//! One path attribute: context byte, flags byte, type code, then the value, inside an
//! otherwise well-formed UPDATE announcing 10.0.0.0/8 (so every attribute decoder and
//! every RFC 7606 rule for it is reached).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let [context, flags, code, value @ ..] = data else {
        return;
    };
    let ctx = common::context(*context);
    let Ok(value_len) = u16::try_from(value.len()) else {
        return;
    };
    let mut attributes = vec![0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 192, 0, 2, 1];
    attributes.push(*flags | 0x10);
    attributes.push(*code);
    attributes.extend_from_slice(&value_len.to_be_bytes());
    attributes.extend_from_slice(value);
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
    body.extend_from_slice(&attributes);
    body.extend_from_slice(&[8, 10]);
    let Ok(length) = u16::try_from(19 + body.len()) else {
        return;
    };
    let mut frame = vec![0xff; 16];
    frame.extend_from_slice(&length.to_be_bytes());
    frame.push(2);
    frame.extend_from_slice(&body);
    common::check(&frame, &ctx);
});
