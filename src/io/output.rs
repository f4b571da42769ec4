//! Output files are written to a temporary name beside the target and renamed, so a failure
//! never leaves a half-written file; inputs are never overwritten.

use crate::error::{Error, Result};
use safetensors::Dtype;
use std::path::{Path, PathBuf};

/// One tensor to write.
pub struct OutTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl OutTensor {
    pub fn f32(name: &str, shape: Vec<usize>, v: &[f32]) -> OutTensor {
        OutTensor {
            name: name.into(),
            dtype: Dtype::F32,
            shape,
            data: bytemuck::cast_slice(v).to_vec(),
        }
    }
    pub fn i64(name: &str, shape: Vec<usize>, v: &[i64]) -> OutTensor {
        OutTensor {
            name: name.into(),
            dtype: Dtype::I64,
            shape,
            data: bytemuck::cast_slice(v).to_vec(),
        }
    }
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.is_dir() {
        return Err(Error::output(path, "is a directory"));
    }
    let tmp = temp_name(path);
    let res = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::output(path, format!("cannot write: {e}")));
    }
    Ok(())
}

/// Whether two paths name the same existing file (false when either cannot be resolved).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Refuses to write over an input, or into an input directory (a model's).
pub fn check_not_input(out: &Path, inputs: &[&Path]) -> Result<()> {
    for i in inputs {
        if same_file(out, i) {
            return Err(Error::output(
                out,
                format!("is an input ({}); refusing to overwrite it", i.display()),
            ));
        }
        if i.is_dir() && is_inside(out, i) {
            return Err(Error::output(
                out,
                format!(
                    "is inside the input directory {}; write elsewhere",
                    i.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `path` (which need not exist) lies under the directory `dir`.
fn is_inside(path: &Path, dir: &Path) -> bool {
    let Ok(dir) = std::fs::canonicalize(dir) else {
        return false;
    };
    // the nearest existing ancestor, canonicalised, with the rest appended
    let mut rest = Vec::new();
    let mut cur = path.to_path_buf();
    loop {
        if let Ok(c) = std::fs::canonicalize(&cur) {
            let full = rest.iter().rev().fold(c, |acc: PathBuf, p| acc.join(p));
            return full.starts_with(&dir) && full != dir;
        }
        match (cur.file_name(), cur.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                cur = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_path_buf()
                };
            }
            _ => return false,
        }
    }
}

/// Refuses an output directory that is the input model directory, or that exists unless
/// `force`.
pub fn check_out_dir(out: &Path, model: &Path, force: bool) -> Result<()> {
    check_not_input(out, &[model])?;
    if let (Ok(a), Ok(b)) = (out.canonicalize(), model.canonicalize()) {
        if a == b {
            return Err(Error::output(
                out,
                "is the input model directory; it is never overwritten",
            ));
        }
    }
    if out.exists() && !force {
        return Err(Error::output(
            out,
            "already exists (pass --force to replace it)",
        ));
    }
    Ok(())
}

/// Makes directory `out` appear complete or not at all: `fill` writes into a temporary
/// sibling, which is then renamed into place (a previous `out` is removed only after the new
/// directory is complete); on failure the temporary directory is removed.
pub fn write_dir_atomic(out: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .ok_or_else(|| Error::output(out, "not a directory name"))?
        .to_string_lossy()
        .to_string();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)
        .map_err(|e| Error::output(&tmp, format!("cannot create: {e}")))?;
    let result = (|| {
        fill(&tmp)?;
        if out.exists() {
            std::fs::rename(out, &old)
                .map_err(|e| Error::output(out, format!("cannot replace: {e}")))?;
        }
        std::fs::rename(&tmp, out)
            .map_err(|e| Error::output(out, format!("cannot rename into place: {e}")))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Copies the files of `names` that exist in `src` into `dst` (each written atomically).
pub fn copy_files(src: &Path, dst: &Path, names: &[&str]) -> Result<()> {
    for name in names {
        let from = src.join(name);
        if from.is_file() {
            let bytes = std::fs::read(&from)
                .map_err(|e| Error::input(&from, format!("cannot read: {e}")))?;
            write_atomic(&dst.join(name), &bytes)?;
        }
    }
    Ok(())
}

/// The tokenizer files of an HF model directory, copied along with its weights.
pub const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// Writes a safetensors file atomically, with `metadata` in its header.
pub fn write_safetensors(
    path: &Path,
    tensors: &[OutTensor],
    metadata: &[(&str, String)],
) -> Result<()> {
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|t| {
            let v = safetensors::tensor::TensorView::new(t.dtype, t.shape.clone(), &t.data)
                .map_err(|e| Error::output(path, format!("tensor {}: {e}", t.name)))?;
            Ok((t.name.clone(), v))
        })
        .collect::<Result<_>>()?;
    let meta: std::collections::HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let bytes = safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::output(path, format!("cannot serialise: {e}")))?;
    write_atomic(path, &bytes)
}

/// A little-endian float32 .npy array (version 1.0, C order).
pub fn npy_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_s}, }}");
    // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64
    let pad = (64 - (10 + header.len() + 1) % 64) % 64;
    header.push_str(&" ".repeat(pad));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(bytemuck::cast_slice(data));
    out
}
