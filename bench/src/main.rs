//! The benchmark harness: Wren side by side with BIRD, FRR and GoBGP (issue 7).

fn main() {}
