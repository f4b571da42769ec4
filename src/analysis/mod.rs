//! What the heads do: statistical roles (sieves and syntactic relations), dependency syntax
//! from attention, and agreement between head maps. Calls the model, never the kernels.

pub mod compare;
pub mod roles;
pub mod syntax;
