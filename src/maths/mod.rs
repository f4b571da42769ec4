//! Host maths: statistics, the maximum spanning tree and the seeded random stream. Depends on
//! nothing but `error`; everything above may use it.

pub mod mst;
pub mod rng;
pub mod stats;
