//! OPEN bodies (optional parameters, RFC 9072, capabilities); a decoded OPEN encodes
//! back and decodes to itself, and negotiation with it never panics.
#![no_main]

use bgp_proto::{Message, Open, SessionContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(open) = Open::decode_body(data) else {
        return;
    };
    let message = Message::Open(open.clone());
    let ctx = SessionContext::default();
    if let Ok(bytes) = message.to_bytes(&ctx) {
        let again = bgp_proto::decode_message(&bytes, &ctx).expect("re-encoded OPEN decodes");
        assert_eq!(again.message, message);
    }
    let _ = SessionContext::negotiate(&open, &open, false);
    let _ = (open.asn(), open.families());
});
