//! route-sync
