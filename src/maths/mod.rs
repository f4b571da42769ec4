//! Host maths: statistics, the maximum spanning tree, the seeded random stream and the
//! learned-gate relaxations. Depends on nothing but `error`; everything above may use it.

pub mod gates;
pub mod mst;
pub mod rng;
pub mod stats;
