//! tokenizer.json through the `tokenizers` crate, with any padding or truncation the file carries
//! switched off: batches are padded to their own longest, and texts longer than the model's
//! positions are truncated here with a warning.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

/// Encodings of pre-split sentences, each word's first token per sentence, and how many
/// sentences were truncated.
pub type WordEncodings = (Vec<Encoded>, Vec<Vec<Option<usize>>>, usize);

/// Encodings of pre-split sentences, the token positions of each word's sub-tokens per
/// sentence, and how many sentences were truncated.
pub type WordSpans = (
    Vec<Encoded>,
    Vec<Vec<Option<std::ops::Range<usize>>>>,
    usize,
);

pub struct BertTokenizer {
    path: PathBuf,
    inner: Tokenizer,
    /// For pre-split words: `inner`, except that a byte-level pre-tokenizer adds a prefix
    /// space to every word (transformers' `add_prefix_space=True`, which it requires of a
    /// byte-level BPE tokenizer given words), so a word encodes as it does inside a sentence.
    words: Tokenizer,
    max_len: usize,
    /// Number the segments of a pair from the tokenizer's sequence ids (for models with one
    /// token type, whose tokenizers give every token type 0): see [`segments`].
    segments_from_sequences: bool,
}

/// The segment of each token of an encoded pair when the tokenizer gives no token types
/// (RoBERTa: `<s> A </s></s> B </s>`): a content token's sequence index; a special token takes
/// the segment of the token before it, except that the second of two specials in a row opens
/// the next segment. For BERT's `[CLS] A [SEP] B [SEP]` this gives its token types.
fn segments(sequence_ids: &[Option<usize>]) -> Vec<u32> {
    let mut out = Vec::with_capacity(sequence_ids.len());
    let mut seg = 0u32;
    for (j, s) in sequence_ids.iter().enumerate() {
        seg = match s {
            Some(s) => *s as u32,
            None if j > 0 && sequence_ids[j - 1].is_none() && j + 1 < sequence_ids.len() => seg + 1,
            None => seg,
        };
        out.push(seg);
    }
    out
}

/// Sets `add_prefix_space` on a byte-level pre-tokenizer (alone or in a sequence); whether
/// there was one.
fn prefix_byte_level(pre: &mut serde_json::Value) -> bool {
    match pre["type"].as_str() {
        Some("ByteLevel") => {
            pre["add_prefix_space"] = serde_json::Value::Bool(true);
            true
        }
        Some("Sequence") => {
            // every byte-level member, not just the first
            let mut any = false;
            for p in pre["pretokenizers"].as_array_mut().into_iter().flatten() {
                any |= prefix_byte_level(p);
            }
            any
        }
        _ => false,
    }
}

/// One example as ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

/// Runs `f`, turning a panic into `Err` with its message and keeping the default hook from
/// printing it: for the tokenizers crate, which panics on some malformed files.
fn quietly<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    r.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the tokenizers crate panicked".into())
    })
}

impl BertTokenizer {
    /// `segments_from_sequences`: the model has one token type, so a pair's segments may be
    /// numbered from the sequence ids (its embeddings read type 0 for every token regardless).
    pub fn load(
        path: &Path,
        max_len: usize,
        segments_from_sequences: bool,
    ) -> Result<BertTokenizer> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
        let parse = |text: &str| -> Result<Tokenizer> {
            // the tokenizers crate panics on some malformed files (an `unwrap` in its
            // deserialisers, an index into a vocabulary): those are bad input too
            let invalid =
                |e: String| Error::input(path, format!("not a valid tokenizer.json: {e}"));
            let mut t: Tokenizer = quietly(|| text.parse::<Tokenizer>())
                .map_err(invalid)?
                .map_err(|e| invalid(e.to_string()))?;
            t.with_padding(None);
            t.with_truncation(None)
                .map_err(|e| Error::input(path, format!("cannot switch truncation off: {e}")))?;
            // a post-processor naming a token the vocabulary lacks panics inside the crate at
            // the first encode, and a WordPiece vocabulary without its unknown token fails on
            // the first unknown word: try a pair with one now
            quietly(|| t.encode(("a \u{2603}", "b"), true))
                .map_err(|e| invalid(format!("encoding fails ({e}): a special token missing?")))?
                .map_err(|e| invalid(format!("encoding fails: {e}")))?;
            Ok(t)
        };
        let inner = parse(&text)?;
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let words = if prefix_byte_level(&mut json["pre_tokenizer"]) {
            parse(&json.to_string())?
        } else {
            inner.clone()
        };
        Ok(BertTokenizer {
            path: path.to_path_buf(),
            inner,
            words,
            max_len,
            segments_from_sequences,
        })
    }

    /// Tokens the tokenizer can produce, added (special) tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ids of the special tokens (`[CLS]`, `<s>`, `[PAD]`, `[UNK]`, …), ascending: what
    /// masked-LM corruption never chooses, as transformers' collator does not.
    pub fn special_ids(&self) -> Vec<u32> {
        self.specials(|_| true)
    }

    /// Ids of the delimiter tokens (`[CLS]`, `[SEP]`, `<s>`, `</s>`), ascending: the tokens
    /// head-role analysis counts as delimiters.
    pub fn delimiter_ids(&self) -> Vec<u32> {
        self.specials(|c| ["[CLS]", "[SEP]", "<s>", "</s>"].contains(&c))
    }

    /// The id of the mask token (`[MASK]` or `<mask>`), if the tokenizer has one.
    pub fn mask_id(&self) -> Option<u32> {
        self.special_named(&["[MASK]", "<mask>"])
    }

    /// The id and text of the padding token (`[PAD]` or `<pad>`), if the tokenizer has one.
    pub fn pad_token(&self) -> Option<(u32, String)> {
        let id = self.special_named(&["[PAD]", "<pad>"])?;
        Some((id, self.inner.id_to_token(id).unwrap_or_default()))
    }

    /// The lowest id of a special token spelled as one of `names`.
    fn special_named(&self, names: &[&str]) -> Option<u32> {
        self.specials(|c| names.contains(&c)).first().copied()
    }

    /// Ids of the special tokens whose text passes `keep`, ascending.
    fn specials(&self, keep: impl Fn(&str) -> bool) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special && keep(&t.content))
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Truncates to at most `n` tokens from now on (never above the model's positions).
    pub fn limit_length(&mut self, n: usize) {
        self.max_len = self.max_len.min(n.max(2));
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    fn truncating(&self) -> Result<Tokenizer> {
        self.truncating_of(&self.inner)
    }

    fn truncating_of(&self, t: &Tokenizer) -> Result<Tokenizer> {
        let mut t = t.clone();
        t.with_truncation(Some(TruncationParams {
            max_length: self.max_len,
            strategy: TruncationStrategy::LongestFirst,
            ..Default::default()
        }))
        .map_err(|e| Error::input(&self.path, format!("cannot truncate: {e}")))?;
        Ok(t)
    }

    /// Encodes pre-split words (token classification). Returns the encodings, for each
    /// sentence the token index of each word's first sub-token (None when truncation cut the
    /// word off, or the word produced no token), and how many sentences were truncated.
    pub fn encode_words(&self, sentences: &[Vec<String>]) -> Result<WordEncodings> {
        let (enc, spans, truncated) = self.encode_word_spans(sentences)?;
        let firsts = spans
            .iter()
            .map(|s| s.iter().map(|r| r.as_ref().map(|r| r.start)).collect())
            .collect();
        Ok((enc, firsts, truncated))
    }

    /// Encodes pre-split words. Returns the encodings, for each sentence the token positions
    /// of each word's sub-tokens (from the tokenizer's word ids, so a repeated word maps to its
    /// own occurrence; None when truncation cut the word off or it produced no token), and how
    /// many sentences were truncated.
    pub fn encode_word_spans(&self, sentences: &[Vec<String>]) -> Result<WordSpans> {
        let truncating = self.truncating_of(&self.words)?;
        let mut out = Vec::with_capacity(sentences.len());
        let mut spans = Vec::with_capacity(sentences.len());
        let mut truncated = 0;
        for words in sentences {
            let w: Vec<&str> = words.iter().map(|s| s.as_str()).collect();
            let err = |e| Error::input(&self.path, format!("cannot encode {:?}: {e}", w.join(" ")));
            let mut enc = self.words.encode(w.as_slice(), true).map_err(err)?;
            if enc.get_ids().len() > self.max_len {
                truncated += 1;
                enc = truncating.encode(w.as_slice(), true).map_err(err)?;
            }
            let mut span: Vec<Option<std::ops::Range<usize>>> = vec![None; words.len()];
            for (j, wid) in enc.get_word_ids().iter().enumerate() {
                if let Some(wid) = wid {
                    let slot = &mut span[*wid as usize];
                    match slot {
                        Some(r) => r.end = j + 1,
                        None => *slot = Some(j..j + 1),
                    }
                }
            }
            out.push(Encoded {
                ids: enc.get_ids().to_vec(),
                type_ids: enc.get_type_ids().to_vec(),
            });
            spans.push(span);
        }
        Ok((out, spans, truncated))
    }

    /// Encodes (sentence, optional second sentence) pairs. Returns the encodings and how many
    /// were truncated to `max_len` tokens.
    pub fn encode_all(&self, texts: &[(String, Option<String>)]) -> Result<(Vec<Encoded>, usize)> {
        let truncating = self.truncating()?;
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
            let type_ids = if b.is_some() && self.segments_from_sequences {
                segments(&enc.get_sequence_ids())
            } else {
                enc.get_type_ids().to_vec()
            };
            out.push(Encoded {
                ids: enc.get_ids().to_vec(),
                type_ids,
            });
        }
        Ok((out, truncated))
    }
}

#[cfg(test)]
mod tests {
    use super::segments;

    #[test]
    fn pair_segments_follow_bert_and_roberta_layouts() {
        // [CLS] a a [SEP] b [SEP]
        let bert = [None, Some(0), Some(0), None, Some(1), None];
        assert_eq!(segments(&bert), vec![0, 0, 0, 0, 1, 1]);
        // <s> a </s> </s> b b </s>
        let roberta = [None, Some(0), None, None, Some(1), Some(1), None];
        assert_eq!(segments(&roberta), vec![0, 0, 0, 1, 1, 1, 1]);
        // a single sentence stays one segment
        assert_eq!(segments(&[None, Some(0), None]), vec![0, 0, 0]);
    }
}
