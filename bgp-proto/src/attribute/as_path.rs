//! AS_PATH and AS4_PATH (RFC 4271 section 4.3, RFC 5065 confederation segments,
//! RFC 6793 4-octet AS numbers) and the RFC 6793 section 4.2.3 reconstruction of the
//! real path from AS_PATH and AS4_PATH received from a 2-octet speaker.
//!
//! An [`AsPath`] is one flat vector of 32-bit words: a header word per segment (type
//! and count) followed by its AS numbers. One allocation per path, cheap to hash and
//! compare, iterated as [`Segment`]s.

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::open::AS_TRANS;

/// The type of an AS_PATH segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum SegmentType {
    /// AS_SET (1): unordered, counts as one AS in the path length.
    Set,
    /// AS_SEQUENCE (2).
    Sequence,
    /// AS_CONFED_SEQUENCE (3), RFC 5065.
    ConfedSequence,
    /// AS_CONFED_SET (4), RFC 5065.
    ConfedSet,
}

impl SegmentType {
    /// The wire value.
    pub fn code(self) -> u8 {
        match self {
            SegmentType::Set => 1,
            SegmentType::Sequence => 2,
            SegmentType::ConfedSequence => 3,
            SegmentType::ConfedSet => 4,
        }
    }

    /// The segment type of a wire value.
    pub fn from_code(code: u8) -> Option<SegmentType> {
        Some(match code {
            1 => SegmentType::Set,
            2 => SegmentType::Sequence,
            3 => SegmentType::ConfedSequence,
            4 => SegmentType::ConfedSet,
            _ => return None,
        })
    }

    /// True for the confederation segment types.
    pub fn is_confed(self) -> bool {
        matches!(self, SegmentType::ConfedSequence | SegmentType::ConfedSet)
    }
}

/// One segment of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Segment<'a> {
    /// Segment type.
    #[cfg_attr(feature = "serde", serde(rename = "type"))]
    pub kind: SegmentType,
    /// The AS numbers.
    pub asns: &'a [u32],
}

/// An AS path: a sequence of non-empty segments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    /// Per segment: header word `(type << 24) | count`, then `count` AS numbers.
    words: Vec<u32>,
}

/// Why an AS_PATH or AS4_PATH value does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AsPathError {
    /// A segment type other than 1 to 4.
    #[error("unknown segment type {0}")]
    UnknownSegmentType(u8),
    /// A segment with zero AS numbers.
    #[error("empty segment")]
    EmptySegment,
    /// A segment runs past the end of the attribute.
    #[error("segment overruns the attribute")]
    Overrun,
    /// A confederation segment where RFC 6793 forbids it (AS4_PATH).
    #[error("confederation segment in AS4_PATH")]
    ConfedInAs4Path,
}

impl AsPath {
    /// The empty path.
    pub fn new() -> AsPath {
        AsPath::default()
    }

    /// A path of one AS_SEQUENCE (empty when `asns` is empty).
    pub fn from_sequence(asns: &[u32]) -> AsPath {
        let mut path = AsPath::new();
        path.push_segment(SegmentType::Sequence, asns);
        path
    }

    /// Appends a segment (ignored when `asns` is empty).
    pub fn push_segment(&mut self, kind: SegmentType, asns: &[u32]) {
        if asns.is_empty() {
            return;
        }
        self.words.reserve(1 + asns.len());
        self.words.push(header(kind, asns.len()));
        self.words.extend_from_slice(asns);
    }

    /// The segments, in order.
    pub fn segments(&self) -> Segments<'_> {
        Segments { words: &self.words }
    }

    /// True when the path has no segment.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Path length for route selection (RFC 4271 9.1.2.2): an AS_SET counts one,
    /// confederation segments count zero.
    pub fn path_length(&self) -> usize {
        self.segments()
            .map(|segment| match segment.kind {
                SegmentType::Sequence => segment.asns.len(),
                SegmentType::Set => 1,
                _ => 0,
            })
            .sum()
    }

    /// The first AS of the path (the neighbor AS) when the path starts with a sequence.
    pub fn first_asn(&self) -> Option<u32> {
        let first = self.segments().next()?;
        (first.kind == SegmentType::Sequence)
            .then(|| first.asns.first().copied())
            .flatten()
    }

    /// The AS that originated the route: the last AS of a trailing sequence.
    pub fn origin_asn(&self) -> Option<u32> {
        let last = self.segments().last()?;
        (last.kind == SegmentType::Sequence)
            .then(|| last.asns.last().copied())
            .flatten()
    }

    /// True when `asn` appears anywhere in the path (loop detection).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments().any(|segment| segment.asns.contains(&asn))
    }

    /// Prepends `asn` (RFC 4271 5.1.2): into the leading AS_SEQUENCE, or as a new one.
    pub fn prepend(&mut self, asn: u32) {
        match self.segments().next() {
            Some(first) if first.kind == SegmentType::Sequence => {
                self.words[0] = header(SegmentType::Sequence, first.asns.len() + 1);
                self.words.insert(1, asn);
            }
            _ => {
                self.words
                    .splice(0..0, [header(SegmentType::Sequence, 1), asn]);
            }
        }
    }

    /// True when some AS number needs 4 octets.
    pub fn has_four_octet_asn(&self) -> bool {
        self.segments()
            .any(|segment| segment.asns.iter().any(|&asn| asn > 0xffff))
    }

    /// Decodes an AS_PATH (or AS4_PATH) value with 2- or 4-octet AS numbers.
    pub fn decode(value: &[u8], four_octet: bool) -> Result<AsPath, AsPathError> {
        let width = if four_octet { 4 } else { 2 };
        // Words needed: one per segment header plus one per AS; bounded by the value.
        let mut words = Vec::with_capacity(value.len() / width + 1);
        let mut rest = value;
        while let [kind, count, tail @ ..] = rest {
            let kind =
                SegmentType::from_code(*kind).ok_or(AsPathError::UnknownSegmentType(*kind))?;
            let count = usize::from(*count);
            if count == 0 {
                return Err(AsPathError::EmptySegment);
            }
            let bytes = tail.get(..count * width).ok_or(AsPathError::Overrun)?;
            words.push(header(kind, count));
            if four_octet {
                words.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])),
                );
            } else {
                words.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))),
                );
            }
            rest = &tail[count * width..];
        }
        if !rest.is_empty() {
            return Err(AsPathError::Overrun);
        }
        Ok(AsPath { words })
    }

    /// Writes the value with 2- or 4-octet AS numbers. With 2 octets an AS above
    /// 65535 is written as AS_TRANS. Segments longer than 255 are split.
    pub fn encode(&self, four_octet: bool, buf: &mut BytesMut) {
        for segment in self.segments() {
            for chunk in segment.asns.chunks(255) {
                buf.put_u8(segment.kind.code());
                // chunks(255) bounds the count.
                buf.put_u8(chunk.len() as u8);
                for &asn in chunk {
                    if four_octet {
                        buf.put_u32(asn);
                    } else {
                        buf.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS));
                    }
                }
            }
        }
    }

    /// Octets of the encoded value.
    pub fn wire_len(&self, four_octet: bool) -> usize {
        let width = if four_octet { 4 } else { 2 };
        self.segments()
            .map(|segment| 2 * segment.asns.len().div_ceil(255) + width * segment.asns.len())
            .sum()
    }

    /// The path without its confederation segments (what AS4_PATH may carry).
    pub fn without_confed(&self) -> AsPath {
        let mut path = AsPath::new();
        for segment in self.segments().filter(|segment| !segment.kind.is_confed()) {
            path.push_segment(segment.kind, segment.asns);
        }
        path
    }

    /// RFC 6793 section 4.2.3: the real path of a route received from a 2-octet
    /// speaker, from its AS_PATH (`self`) and AS4_PATH. When AS_PATH holds fewer AS
    /// numbers than AS4_PATH, AS4_PATH is ignored; otherwise the leading part of
    /// AS_PATH that AS4_PATH does not cover is kept in front of AS4_PATH.
    pub fn reconstruct(&self, as4_path: &AsPath) -> AsPath {
        let count = |path: &AsPath| -> usize {
            path.segments()
                .map(|segment| match segment.kind {
                    SegmentType::Sequence => segment.asns.len(),
                    SegmentType::Set => 1,
                    _ => 0,
                })
                .sum()
        };
        let (total, tail) = (count(self), count(as4_path));
        if total < tail {
            return self.clone();
        }
        let mut keep = total - tail;
        let mut path = AsPath::new();
        for segment in self.segments() {
            match segment.kind {
                kind if kind.is_confed() => {
                    if keep > 0 || path.is_empty() {
                        path.push_segment(kind, segment.asns);
                    }
                }
                SegmentType::Set if keep > 0 => {
                    path.push_segment(SegmentType::Set, segment.asns);
                    keep -= 1;
                }
                SegmentType::Sequence if keep > 0 => {
                    let take = keep.min(segment.asns.len());
                    path.push_segment(SegmentType::Sequence, &segment.asns[..take]);
                    keep -= take;
                }
                _ => break,
            }
        }
        for segment in as4_path.segments() {
            path.append_merging(segment);
        }
        path
    }

    /// Appends a segment, joining it to a trailing segment of the same sequence type.
    fn append_merging(&mut self, segment: Segment<'_>) {
        let last = self.last_segment_start();
        if let Some(start) = last {
            let (kind, count) = split_header(self.words[start]);
            if kind == segment.kind && kind == SegmentType::Sequence {
                self.words[start] = header(kind, count + segment.asns.len());
                self.words.extend_from_slice(segment.asns);
                return;
            }
        }
        self.push_segment(segment.kind, segment.asns);
    }

    fn last_segment_start(&self) -> Option<usize> {
        let mut at = 0;
        let mut last = None;
        while at < self.words.len() {
            last = Some(at);
            at += 1 + split_header(self.words[at]).1;
        }
        last
    }
}

/// Iterator over the segments of an [`AsPath`].
#[derive(Clone, Debug)]
pub struct Segments<'a> {
    words: &'a [u32],
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        let (&head, rest) = self.words.split_first()?;
        let (kind, count) = split_header(head);
        let count = count.min(rest.len());
        let (asns, rest) = rest.split_at(count);
        self.words = rest;
        Some(Segment { kind, asns })
    }
}

fn header(kind: SegmentType, count: usize) -> u32 {
    (u32::from(kind.code()) << 24) | (count as u32 & 0x00ff_ffff)
}

fn split_header(word: u32) -> (SegmentType, usize) {
    let kind = SegmentType::from_code((word >> 24) as u8).unwrap_or(SegmentType::Sequence);
    (kind, (word & 0x00ff_ffff) as usize)
}

impl fmt::Display for AsPath {
    /// The usual notation: `65001 65002 {65003,65004} (65010)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for segment in self.segments() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let (open, sep, close) = match segment.kind {
                SegmentType::Sequence => ("", " ", ""),
                SegmentType::Set => ("{", ",", "}"),
                SegmentType::ConfedSequence => ("(", " ", ")"),
                SegmentType::ConfedSet => ("[", ",", "]"),
            };
            f.write_str(open)?;
            for (i, asn) in segment.asns.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{asn}")?;
            }
            f.write_str(close)?;
        }
        Ok(())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for AsPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.segments())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn encoded(path: &AsPath, four: bool) -> Vec<u8> {
        let mut buf = BytesMut::new();
        path.encode(four, &mut buf);
        assert_eq!(buf.len(), path.wire_len(four));
        buf.to_vec()
    }

    #[test]
    fn segments_round_trip_in_both_widths() {
        let mut path = AsPath::from_sequence(&[65001, 4_200_000_000]);
        path.push_segment(SegmentType::Set, &[1, 2]);
        path.push_segment(SegmentType::ConfedSequence, &[7]);
        assert_eq!(path.to_string(), "65001 4200000000 {1,2} (7)");
        assert_eq!(AsPath::decode(&encoded(&path, true), true).unwrap(), path);
        let two = AsPath::decode(&encoded(&path, false), false).unwrap();
        assert_eq!(two.to_string(), "65001 23456 {1,2} (7)");
        assert_eq!(path.path_length(), 3);
        assert_eq!(path.first_asn(), Some(65001));
    }

    #[test]
    fn malformed_paths() {
        assert_eq!(
            AsPath::decode(&[5, 1, 0, 1], false),
            Err(AsPathError::UnknownSegmentType(5))
        );
        assert_eq!(
            AsPath::decode(&[2, 0], false),
            Err(AsPathError::EmptySegment)
        );
        assert_eq!(
            AsPath::decode(&[2, 2, 0, 1], false),
            Err(AsPathError::Overrun)
        );
        assert_eq!(
            AsPath::decode(&[2, 1, 0, 1, 2], false),
            Err(AsPathError::Overrun)
        );
        assert_eq!(AsPath::decode(&[], true), Ok(AsPath::new()));
    }

    #[test]
    fn prepend_and_long_segments() {
        let mut path = AsPath::new();
        path.prepend(3);
        path.prepend(2);
        assert_eq!(path.to_string(), "2 3");
        let long: Vec<u32> = (1..=300).collect();
        let path = AsPath::from_sequence(&long);
        let bytes = encoded(&path, true);
        assert_eq!(bytes[1], 255);
        assert_eq!(AsPath::decode(&bytes, true).unwrap().path_length(), 300);
    }

    #[test]
    fn rfc6793_reconstruction() {
        // AS_PATH from a 2-octet speaker: 65001 23456 23456; AS4_PATH: 4200000001 4200000002.
        let as_path = AsPath::from_sequence(&[65001, 23456, 23456]);
        let as4 = AsPath::from_sequence(&[4_200_000_001, 4_200_000_002]);
        assert_eq!(
            as_path.reconstruct(&as4).to_string(),
            "65001 4200000001 4200000002"
        );
        // AS4_PATH longer than AS_PATH: ignored.
        let short = AsPath::from_sequence(&[23456]);
        assert_eq!(short.reconstruct(&as4), short);
        // A set in the kept part.
        let mut with_set = AsPath::from_sequence(&[65001]);
        with_set.push_segment(SegmentType::Set, &[1, 2]);
        with_set.push_segment(SegmentType::Sequence, &[23456]);
        let one = AsPath::from_sequence(&[4_200_000_009]);
        assert_eq!(
            with_set.reconstruct(&one).to_string(),
            "65001 {1,2} 4200000009"
        );
    }
}
