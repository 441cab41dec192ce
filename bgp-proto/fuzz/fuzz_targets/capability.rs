//! One capability: code byte then value.
#![no_main]

use bgp_proto::Capability;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&code, value)) = data.split_first() else {
        return;
    };
    if let Ok(capability) = Capability::decode(code, value) {
        assert_eq!(capability.code(), code);
        assert!(capability.value_len() <= value.len() + 2);
    }
});
