//! peer: a scriptable, deliberately misbehaving BGP peer for black-box tests of bgpd.
