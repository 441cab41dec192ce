//! ROUTE-REFRESH message (RFC 2918) with the Beginning- and End-of-RIB-Refresh
//! subtypes of enhanced route refresh (RFC 7313).
//!
//! A subtype other than 0, 1 and 2 decodes whatever its length (RFC 7313 says to
//! ignore such a message; the session does that, see [`RouteRefresh::is_ignorable`]).
//! A request, BoRR or EoRR whose body is not 4 octets is refused with ROUTE-REFRESH
//! Message Error / Invalid Message Length (7/1) carrying the message (this crate does
//! not do ORF, RFC 5291, so a longer request is malformed too).

use bytes::{BufMut, BytesMut};

use crate::family::{Afi, Family, Safi};

/// A ROUTE-REFRESH message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RouteRefresh {
    /// The family to refresh.
    pub family: Family,
    /// Message subtype (the former reserved octet): see the constants.
    pub subtype: u8,
}

impl RouteRefresh {
    /// Normal route refresh request.
    pub const REQUEST: u8 = 0;
    /// Beginning of RIB refresh (RFC 7313).
    pub const BEGINNING_OF_RIB_REFRESH: u8 = 1;
    /// End of RIB refresh (RFC 7313).
    pub const END_OF_RIB_REFRESH: u8 = 2;

    /// A refresh request for `family`.
    pub fn request(family: Family) -> RouteRefresh {
        RouteRefresh {
            family,
            subtype: Self::REQUEST,
        }
    }

    /// True for subtypes RFC 7313 says to ignore (3 and above).
    pub fn is_ignorable(&self) -> bool {
        self.subtype > Self::END_OF_RIB_REFRESH
    }

    /// Decodes a body of at least 4 octets (the caller checks lengths).
    pub(crate) fn decode_body(body: &[u8]) -> Option<RouteRefresh> {
        let [a0, a1, subtype, safi, ..] = *body else {
            return None;
        };
        Some(RouteRefresh {
            family: Family::new(Afi(u16::from_be_bytes([a0, a1])), Safi(safi)),
            subtype,
        })
    }

    pub(crate) fn encode_body(&self, buf: &mut BytesMut) {
        buf.put_u16(self.family.afi.0);
        buf.put_u8(self.subtype);
        buf.put_u8(self.family.safi.0);
    }
}
