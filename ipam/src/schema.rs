//! The OpenAPI schemas of the record fields whose Rust types have none Kubernetes
//! accepts: maps keyed by numbers or CIDRs (an object with `additionalProperties`,
//! not `patternProperties`) and sets (an array without `uniqueItems`, which
//! structural schemas refuse). Used by the records' `#[schemars(schema_with)]`.

use schemars::{Schema, SchemaGenerator, json_schema};

/// `Block::allocations`: allocations keyed by ordinal.
pub(crate) fn allocations(generator: &mut SchemaGenerator) -> Schema {
    let allocation = generator.subschema_for::<crate::block::Allocation>();
    json_schema!({
        "type": "object",
        "additionalProperties": allocation,
    })
}

/// `HandleRecord::blocks`: addresses keyed by block CIDR.
pub(crate) fn addresses_by_block(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "type": "array",
            "items": { "type": "string" },
        },
    })
}

/// `Pool::vxlan_mode` (its type lives in control-proto, which has no schemas).
pub(crate) fn vxlan_mode(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": ["always", "cross_subnet", "never"],
        "default": "never",
    })
}
