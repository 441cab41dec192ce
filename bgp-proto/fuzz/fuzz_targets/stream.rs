//! The tokio-util codec over a byte stream cut at arbitrary points: items come out
//! until the stream breaks, and the codec never panics.
#![no_main]

use bgp_proto::codec::BgpCodec;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let [flags, cut, stream @ ..] = data else {
        return;
    };
    let mut codec = BgpCodec::new(common::context(*flags));
    let step = usize::from(*cut).max(1);
    let mut buf = BytesMut::new();
    for chunk in stream.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(_item)) => {}
                Ok(None) => break,
                Err(error) => {
                    let _ = error.notification();
                    return;
                }
            }
        }
    }
});
