//! Shared by the fuzz targets: a session context chosen by one input byte, and the
//! re-encoding check.

use bgp_proto::{Action, Family, FamilySet, Message, SessionContext, decode_message};

/// The context described by the bits of `flags`.
pub fn context(flags: u8) -> SessionContext {
    let mut add_path = FamilySet::EMPTY;
    if flags & 4 != 0 {
        add_path.insert(Family::IPV4_UNICAST);
    }
    if flags & 8 != 0 {
        add_path.insert(Family::IPV6_UNICAST);
    }
    let enh = if flags & 32 != 0 {
        [Family::IPV4_UNICAST].into_iter().collect()
    } else {
        FamilySet::EMPTY
    };
    SessionContext {
        four_octet_as: flags & 1 == 0,
        ibgp: flags & 2 != 0,
        add_path_receive: add_path,
        add_path_send: add_path,
        extended_message: flags & 16 != 0,
        extended_next_hop: enh,
        ..SessionContext::default()
    }
}

/// Decodes `frame`; a well-formed message must encode, and decode again to itself.
#[allow(dead_code)] // not every target that includes this file uses it
pub fn check(frame: &[u8], ctx: &SessionContext) {
    let Ok(decoded) = decode_message(frame, ctx) else {
        return;
    };
    let encoded = match decoded.message.to_bytes(ctx) {
        Ok(bytes) => bytes,
        Err(error) => {
            assert!(
                decoded.action != Action::None,
                "well-formed message does not encode: {error}"
            );
            return;
        }
    };
    if decoded.action == Action::None {
        let again = decode_message(&encoded, ctx).expect("re-encoded message decodes");
        assert_eq!(again.action, Action::None, "{:?}", again.errors);
        assert_eq!(again.message, decoded.message);
        if let Message::Update(update) = &again.message {
            let _ = update.announcements().count() + update.withdrawals().count();
        }
    }
}
