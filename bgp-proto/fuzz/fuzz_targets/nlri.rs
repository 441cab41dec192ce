//! NLRI fields, IPv4 and IPv6, with and without add-path: decoding never panics, and
//! what decodes encodes back to the same number of prefixes.
#![no_main]

use bgp_proto::update::nlri::{decode_ipv4, decode_ipv6};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, field)) = data.split_first() else {
        return;
    };
    let add_path = mode & 1 != 0;
    let mut buf = bytes::BytesMut::new();
    if mode & 2 == 0 {
        if let Ok(prefixes) = decode_ipv4(field, add_path) {
            assert!(prefixes.len() <= field.len());
            prefixes
                .iter()
                .for_each(|p| bgp_proto::Prefix::V4(*p).encode(add_path, &mut buf));
            assert_eq!(
                decode_ipv4(&buf, add_path).expect("re-encoded NLRI decodes"),
                prefixes
            );
        }
    } else if let Ok(prefixes) = decode_ipv6(field, add_path) {
        assert!(prefixes.len() <= field.len());
        prefixes
            .iter()
            .for_each(|p| bgp_proto::Prefix::V6(*p).encode(add_path, &mut buf));
        assert_eq!(
            decode_ipv6(&buf, add_path).expect("re-encoded NLRI decodes"),
            prefixes
        );
    }
});
