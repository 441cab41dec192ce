//! AS_PATH / AS4_PATH values in both widths, and the RFC 6793 reconstruction.
#![no_main]

use bgp_proto::AsPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, value)) = data.split_first() else {
        return;
    };
    let four = mode & 1 != 0;
    let Ok(path) = AsPath::decode(value, four) else {
        return;
    };
    let mut buf = bytes::BytesMut::new();
    path.encode(four, &mut buf);
    assert_eq!(&buf[..], value);
    let _ = (path.path_length(), path.to_string());
    let half = value.len() / 2;
    if let Ok(other) = AsPath::decode(&value[half..], true) {
        let merged = path.reconstruct(&other);
        assert!(merged.path_length() >= other.path_length().min(path.path_length()));
    }
});
