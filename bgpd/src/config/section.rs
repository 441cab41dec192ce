//! The sections that name a peer and carry its session options, in one TOML table:
//! `[[bgp.neighbor]]` ([`NeighborConfig`]) adds `address`, `[[bgp.listen_range]]`
//! ([`ListenRangeConfig`]) adds `prefix` and `max_neighbors`. A section reads as its
//! options (`neighbor.hold_time`) through `Deref`.
//!
//! serde's `flatten` would buffer the table and lose the place of every error, and
//! it does not combine with `deny_unknown_fields`, so the table's map is read once,
//! in order: a key of the section ([`OwnKeys`]) has its value read by the section,
//! every other key goes to `SessionOptions`' derived deserializer. Values and keys
//! are still read straight from the TOML deserializer, so a wrong value or an
//! unknown key is reported at its own line, as in any derived struct with
//! `deny_unknown_fields`.

use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::ops::Deref;

use ipnet::IpNet;
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, StringDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, Visitor,
};

use super::session::SessionOptions;

/// `[[bgp.neighbor]]`: one configured peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborConfig {
    pub address: IpAddr,
    pub session: SessionOptions,
}

/// `[[bgp.listen_range]]`: accept sessions from any address in `prefix` (dynamic
/// neighbors, as route reflectors need), each with the range's session options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenRangeConfig {
    pub prefix: IpNet,
    /// Most sessions accepted from the range at once.
    pub max_neighbors: Option<u32>,
    pub session: SessionOptions,
}

impl Deref for NeighborConfig {
    type Target = SessionOptions;
    fn deref(&self) -> &SessionOptions {
        &self.session
    }
}

impl Deref for ListenRangeConfig {
    type Target = SessionOptions;
    fn deref(&self) -> &SessionOptions {
        &self.session
    }
}

#[derive(Default)]
struct NeighborKeys {
    address: Option<IpAddr>,
}

impl OwnKeys for NeighborKeys {
    const KEYS: &'static [&'static str] = &["address"];
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "address" => self.address = Some(map.next_value()?),
            _ => map.next_value::<IgnoredAny>().map(drop)?,
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for NeighborConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (own, session) = deserialize::<D, NeighborKeys>(deserializer)?;
        Ok(NeighborConfig {
            address: own
                .address
                .ok_or_else(|| serde::de::Error::missing_field("address"))?,
            session,
        })
    }
}

#[derive(Default)]
struct ListenRangeKeys {
    prefix: Option<IpNet>,
    max_neighbors: Option<u32>,
}

impl OwnKeys for ListenRangeKeys {
    const KEYS: &'static [&'static str] = &["prefix", "max_neighbors"];
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "prefix" => self.prefix = Some(map.next_value()?),
            "max_neighbors" => self.max_neighbors = Some(map.next_value()?),
            _ => map.next_value::<IgnoredAny>().map(drop)?,
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for ListenRangeConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (own, session) = deserialize::<D, ListenRangeKeys>(deserializer)?;
        Ok(ListenRangeConfig {
            prefix: own
                .prefix
                .ok_or_else(|| serde::de::Error::missing_field("prefix"))?,
            max_neighbors: own.max_neighbors,
            session,
        })
    }
}

/// The keys a section holds besides its session options.
pub trait OwnKeys: Default {
    const KEYS: &'static [&'static str];
    /// Reads the value of `key` (one of [`KEYS`](OwnKeys::KEYS)) from `map`.
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error>;
}

/// The section's own keys and its session options, from one table.
pub fn deserialize<'de, D: Deserializer<'de>, K: OwnKeys>(
    deserializer: D,
) -> Result<(K, SessionOptions), D::Error> {
    deserializer.deserialize_map(SectionVisitor::<K>(PhantomData))
}

struct SectionVisitor<K>(PhantomData<K>);

impl<'de, K: OwnKeys> Visitor<'de> for SectionVisitor<K> {
    type Value = (K, SessionOptions);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut own = K::default();
        let session =
            SessionOptions::deserialize(MapAccessDeserializer::new(Routed { map, own: &mut own }))?;
        Ok((own, session))
    }
}

/// The table's map as `SessionOptions` sees it: without the section's own keys.
struct Routed<'a, A, K> {
    map: A,
    own: &'a mut K,
}

impl<'de, A: MapAccess<'de>, K: OwnKeys> MapAccess<'de> for Routed<'_, A, K> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let mut seed = seed;
        loop {
            let key = self.map.next_key_seed(KeySeed {
                seed,
                own: PhantomData::<K>,
            })?;
            match key {
                None => return Ok(None),
                Some(Key::Session(value)) => return Ok(Some(value)),
                Some(Key::Own(key, unused)) => {
                    self.own.read(key, &mut self.map)?;
                    seed = unused;
                }
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// A key: the section's (with the session's seed, not used), or the session's.
enum Key<S, V> {
    Own(&'static str, S),
    Session(V),
}

struct KeySeed<S, K> {
    seed: S,
    own: PhantomData<K>,
}

impl<'de, S: DeserializeSeed<'de>, K: OwnKeys> DeserializeSeed<'de> for KeySeed<S, K> {
    type Value = Key<S, S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let key = String::deserialize(deserializer)?;
        if let Some(own) = K::KEYS.iter().find(|own| **own == key) {
            return Ok(Key::Own(own, self.seed));
        }
        let session: StringDeserializer<D::Error> = key.clone().into_deserializer();
        // The derived field identifier fails on an unknown key only; its message
        // would list the session keys without the section's own.
        self.seed
            .deserialize(session)
            .map(Key::Session)
            .map_err(|_| unknown_key::<D::Error>(&key, K::KEYS))
    }
}

/// serde's message for an unknown field, listing the section's keys and the
/// session's.
fn unknown_key<E: de::Error>(key: &str, own: &[&str]) -> E {
    let expected: Vec<String> = own
        .iter()
        .chain(session_keys())
        .map(|name| format!("`{name}`"))
        .collect();
    E::custom(format!(
        "unknown field `{key}`, expected one of {}",
        expected.join(", ")
    ))
}

/// The keys `SessionOptions` takes, as its derived deserializer declares them.
fn session_keys() -> &'static [&'static str] {
    match SessionOptions::deserialize(FieldsProbe) {
        Err(FieldsProbeError(fields)) => fields,
        Ok(_) => &[],
    }
}

/// A deserializer that answers a struct's request with the struct's field names.
struct FieldsProbe;

#[derive(Debug)]
struct FieldsProbeError(&'static [&'static str]);

impl fmt::Display for FieldsProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fields probe")
    }
}

impl std::error::Error for FieldsProbeError {}

impl de::Error for FieldsProbeError {
    fn custom<T: fmt::Display>(_: T) -> Self {
        FieldsProbeError(&[])
    }
}

impl<'de> Deserializer<'de> for FieldsProbe {
    type Error = FieldsProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(FieldsProbeError(&[]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        Err(FieldsProbeError(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}
