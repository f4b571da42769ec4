//! Memory-mapped safetensors with checked names, dtypes and shapes.

use super::family::Family;
use crate::error::{Error, Result};
use safetensors::{Dtype, SafeTensors};
use std::path::{Path, PathBuf};

pub struct Weights {
    path: PathBuf,
    mmap: memmap2::Mmap,
    /// The family's prefix ("bert.") for task checkpoints saved by transformers, "" for a
    /// bare encoder.
    pub prefix: String,
}

impl Weights {
    /// Opens a checkpoint of `family`, finding whether its encoder tensors carry the prefix.
    pub fn open(path: &Path, family: &Family) -> Result<Weights> {
        let file = std::fs::File::open(path)
            .map_err(|e| Error::input(path, format!("cannot open: {e}")))?;
        // SAFETY: the file is opened read-only and headroom never writes its inputs; a file
        // changed by another process while mapped is outside what we can guard against.
        let mmap = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| Error::input(path, format!("cannot map: {e}")))?;
        let w = Weights {
            path: path.to_path_buf(),
            mmap,
            prefix: String::new(),
        };
        let names: Vec<String> = {
            let st = w.parse()?;
            st.names().into_iter().map(|s| s.to_string()).collect()
        };
        let word = format!("{}.weight", family.word_embeddings);
        let prefixed = format!("{}{word}", family.prefix);
        let prefix = if names.contains(&prefixed) {
            family.prefix
        } else if names.contains(&word) {
            ""
        } else {
            return Err(Error::input(
                path,
                format!(
                    "missing tensor {word} (also looked for {prefixed}): not a {} checkpoint",
                    family.model_type
                ),
            ));
        };
        Ok(Weights {
            prefix: prefix.to_string(),
            ..w
        })
    }

    fn parse(&self) -> Result<SafeTensors<'_>> {
        SafeTensors::deserialize(&self.mmap).map_err(|e| {
            Error::input(
                &self.path,
                format!("corrupt or truncated safetensors file: {e}"),
            )
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the encoder tensor `name` (without prefix) or the raw name exists.
    pub fn has(&self, name: &str) -> bool {
        let st = match self.parse() {
            Ok(s) => s,
            Err(_) => return false,
        };
        st.tensor(name).is_ok()
    }

    /// Reads `name` as f32 and checks its shape; f32, f16 and bf16 are accepted.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let st = self.parse()?;
        let view = st
            .tensor(name)
            .map_err(|_| Error::input(&self.path, format!("missing tensor {name}")))?;
        if view.shape() != shape {
            return Err(Error::input(
                &self.path,
                format!(
                    "tensor {name} has shape {:?} but config.json implies {:?}",
                    view.shape(),
                    shape
                ),
            ));
        }
        let data = view.data();
        let out: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::input(
                    &self.path,
                    format!("tensor {name} has dtype {other:?}; supported: F32, F16, BF16"),
                ))
            }
        };
        if let Some(i) = out.iter().position(|v| !v.is_finite()) {
            return Err(Error::input(
                &self.path,
                format!("tensor {name} holds a non-finite value at element {i}"),
            ));
        }
        Ok(out)
    }

    /// Every tensor name in the file.
    pub fn names(&self) -> Result<Vec<String>> {
        Ok(self
            .parse()?
            .names()
            .into_iter()
            .map(|s| s.to_string())
            .collect())
    }

    /// The raw dtype, shape and bytes of `name` (files are copied through unconverted).
    pub fn raw(&self, name: &str) -> Result<(Dtype, Vec<usize>, &[u8])> {
        let st = self.parse()?;
        let view = st
            .tensor(name)
            .map_err(|_| Error::input(&self.path, format!("missing tensor {name}")))?;
        Ok((view.dtype(), view.shape().to_vec(), view.data()))
    }

    /// The shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let st = self.parse().ok()?;
        st.tensor(name).ok().map(|v| v.shape().to_vec())
    }
}
