//! One UDP payload: decoding never panics; an accepted datagram encodes back to its
//! mandatory section (Length 24) and decodes again to itself; a drop has a counted name.
#![no_main]

use bfd::{ControlPacket, DropReason, PACKET_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match ControlPacket::decode(data) {
        Ok(packet) => {
            let bytes = packet.encode();
            assert_eq!(bytes[..3], data[..3]);
            assert_eq!(usize::from(bytes[3]), PACKET_LEN);
            assert_eq!(bytes[4..], data[4..PACKET_LEN]);
            assert_eq!(ControlPacket::decode(&bytes), Ok(packet));
            let _ = packet.to_string();
        }
        Err(reason) => {
            assert!(DropReason::NAMES.contains(&reason.name()));
            let _ = reason.to_string();
        }
    }
});
