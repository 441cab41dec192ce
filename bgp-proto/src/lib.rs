//! bgp-proto
