//! Files in and out: the input readers (TSV, CoNLL, CoNLL-U, head masks), atomic output,
//! npy and safetensors writing, and plots. Depends on `error` and `maths` only.

pub mod conllu;
pub mod input;
pub mod output;
pub mod plot;
