//! tokenizer.json through the `tokenizers` crate, with any padding or truncation the file carries
//! switched off: batches are padded to their own longest, and texts longer than the model's
//! positions are truncated here with a warning.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

pub struct BertTokenizer {
    path: PathBuf,
    inner: Tokenizer,
    max_len: usize,
}

/// One example as ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

impl BertTokenizer {
    pub fn load(path: &Path, max_len: usize) -> Result<BertTokenizer> {
        let mut inner = Tokenizer::from_file(path)
            .map_err(|e| Error::input(path, format!("not a valid tokenizer.json: {e}")))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::input(path, format!("cannot switch truncation off: {e}")))?;
        Ok(BertTokenizer {
            path: path.to_path_buf(),
            inner,
            max_len,
        })
    }

    /// Encodes (sentence, optional second sentence) pairs. Returns the encodings and how many
    /// were truncated to `max_len` tokens.
    pub fn encode_all(&self, texts: &[(String, Option<String>)]) -> Result<(Vec<Encoded>, usize)> {
        let mut truncating = self.inner.clone();
        truncating
            .with_truncation(Some(TruncationParams {
                max_length: self.max_len,
                strategy: TruncationStrategy::LongestFirst,
                ..Default::default()
            }))
            .map_err(|e| Error::input(&self.path, format!("cannot truncate: {e}")))?;
        let mut out = Vec::with_capacity(texts.len());
        let mut truncated = 0;
        for (a, b) in texts {
            let enc = match b {
                Some(b) => self.inner.encode((a.as_str(), b.as_str()), true),
                None => self.inner.encode(a.as_str(), true),
            }
            .map_err(|e| Error::input(&self.path, format!("cannot encode {a:?}: {e}")))?;
            let enc = if enc.get_ids().len() > self.max_len {
                truncated += 1;
                match b {
                    Some(b) => truncating.encode((a.as_str(), b.as_str()), true),
                    None => truncating.encode(a.as_str(), true),
                }
                .map_err(|e| Error::input(&self.path, format!("cannot encode {a:?}: {e}")))?
            } else {
                enc
            };
            out.push(Encoded {
                ids: enc.get_ids().to_vec(),
                type_ids: enc.get_type_ids().to_vec(),
            });
        }
        Ok((out, truncated))
    }
}
