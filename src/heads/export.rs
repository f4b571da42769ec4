//! Physical pruning: a smaller Hugging Face checkpoint without the pruned heads, laid out as
//! transformers 4.x's `prune_heads` leaves a model: the kept heads' rows of Q, K and V (and
//! their biases), the matching input columns of `attention.output.dense`, and `pruned_heads`
//! in config.json with original head indices. Host work on the safetensors bytes: every other
//! tensor is copied through unchanged, in its own dtype.

use crate::error::{Error, Result};
use crate::io::output::OutTensor;
use crate::model::family::HeadAxis;
use crate::model::{Config, Weights};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct ExportArgs {
    pub model: PathBuf,
    /// [L, H] gates over original head indices: 0 prunes a head, 1 keeps it.
    pub mask: Vec<f32>,
    pub mask_path: PathBuf,
    pub out: PathBuf,
    pub force: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct ExportReport {
    /// Per stored layer (ALBERT: per group), the original indices of every pruned head after
    /// the export.
    pub pruned_heads: Vec<Vec<usize>>,
    /// Heads this export removed (the source may have been pruned already).
    pub newly_pruned: usize,
    pub heads_left: usize,
    pub heads_total: usize,
    /// Parameters (all tensors' elements) before and after.
    pub params_before: usize,
    pub params_after: usize,
    /// Layers with no head left (transformers 4.57 cannot run them; headroom can).
    pub empty_layers: Vec<usize>,
}

fn dtype_size(path: &Path, name: &str, dtype: safetensors::Dtype) -> Result<usize> {
    use safetensors::Dtype::*;
    Ok(match dtype {
        F64 | I64 | U64 => 8,
        F32 | I32 | U32 => 4,
        F16 | BF16 | I16 | U16 => 2,
        I8 | U8 | BOOL => 1,
        other => {
            return Err(Error::input(
                path,
                format!("tensor {name} has dtype {other:?}, which export cannot copy"),
            ))
        }
    })
}

/// The heads the export keeps, per stored layer, as (original index, index among the stored
/// heads). Errors on a mask of the wrong shape, with values other than 0 and 1, or (shared
/// layers) with rows that differ across one stored layer's applications.
fn plan(args: &ExportArgs, c: &Config) -> Result<Vec<Vec<(usize, usize)>>> {
    let (nl, nh) = (c.num_hidden_layers, c.num_attention_heads);
    if args.mask.len() != nl * nh {
        return Err(Error::input(
            &args.mask_path,
            format!(
                "head mask has {} entries; the model has {nl} layers × {nh} heads",
                args.mask.len()
            ),
        ));
    }
    if let Some(i) = args.mask.iter().position(|&v| v != 0.0 && v != 1.0) {
        return Err(Error::input(
            &args.mask_path,
            format!(
                "head mask value {} at layer {}, head {}: export needs 0 (prune) or 1 (keep)",
                args.mask[i],
                i / nh,
                i % nh
            ),
        ));
    }
    let mut revived = Vec::new();
    let keep: Vec<Vec<(usize, usize)>> = (0..nl)
        .map(|l| {
            let stored = c.kept_heads(l);
            for h in 0..nh {
                if args.mask[l * nh + h] == 1.0 && !stored.contains(&h) {
                    revived.push(format!("{l}.{h}"));
                }
            }
            stored
                .iter()
                .enumerate()
                .filter(|&(_, &h)| args.mask[l * nh + h] == 1.0)
                .map(|(j, &h)| (h, j))
                .collect()
        })
        .collect();
    if !revived.is_empty() {
        eprintln!(
            "warning: {}: the mask keeps heads the checkpoint had already pruned ({}); they stay pruned",
            args.mask_path.display(),
            revived.join(", ")
        );
    }
    // a head of a shared layer (ALBERT) is removed from every application of it
    let mut stored: Vec<Vec<(usize, usize)>> = Vec::with_capacity(c.stored_layers);
    for (l, k) in keep.into_iter().enumerate() {
        let s = c.stored_layer(l);
        if s == stored.len() {
            stored.push(k);
        } else if stored[s] != k {
            let first = (0..l).find(|&a| c.stored_layer(a) == s).unwrap_or(0);
            return Err(Error::input(
                &args.mask_path,
                format!(
                    "layers {first} and {l} apply one shared layer (group {s}), and export removes a head from every application of it: their mask rows must be equal"
                ),
            ));
        }
    }
    Ok(stored)
}

/// Selects rows (`cols` false) or columns of a [rows, row_len] tensor by head blocks of `d`
/// (for a bias, row_len is 1): for Q/K/V rows `stored` is the stored head count.
fn select(
    bytes: &[u8],
    shape: &[usize],
    elem: usize,
    d: usize,
    keep: &[usize],
    cols: bool,
) -> Vec<u8> {
    let rows = shape[0];
    let row_len = shape.get(1).copied().unwrap_or(1);
    let mut out = Vec::with_capacity(keep.len() * d * elem * if cols { rows } else { row_len });
    if cols {
        let rb = row_len * elem;
        for r in 0..rows {
            let row = &bytes[r * rb..(r + 1) * rb];
            for &j in keep {
                out.extend_from_slice(&row[j * d * elem..(j + 1) * d * elem]);
            }
        }
    } else {
        let blk = d * row_len * elem;
        for &j in keep {
            out.extend_from_slice(&bytes[j * blk..(j + 1) * blk]);
        }
    }
    out
}

/// The `export` command's job: reads the mask file against the checkpoint's config and writes
/// the pruned copy.
pub fn export_with_mask_file(
    model: &Path,
    mask: &Path,
    out: &Path,
    force: bool,
) -> Result<ExportReport> {
    let cfg = crate::model::Config::load(&model.join("config.json"))?;
    let m = crate::io::input::read_head_mask(mask, cfg.num_hidden_layers, cfg.num_attention_heads)?;
    export(&ExportArgs {
        model: model.to_path_buf(),
        mask: m,
        mask_path: mask.to_path_buf(),
        out: out.to_path_buf(),
        force,
    })
}

pub fn export(args: &ExportArgs) -> Result<ExportReport> {
    crate::io::output::check_out_dir(&args.out, &args.model, args.force)?;
    let cfg_path = args.model.join("config.json");
    let st_path = args.model.join("model.safetensors");
    for p in [&cfg_path, &st_path] {
        if !p.is_file() {
            return Err(Error::input(p, "missing from the model directory"));
        }
    }
    let c = Config::load(&cfg_path)?;
    // layers as the checkpoint stores them (ALBERT: its groups)
    let (nl, nh, d) = (c.stored_layers, c.num_attention_heads, c.head_dim());
    let keep = plan(args, &c)?;
    let weights = Weights::open(&st_path, c.family)?;
    let prefix = weights.prefix.clone();

    let mut tensors = Vec::new();
    let (mut before, mut after) = (0usize, 0usize);
    let mut seen = vec![[false; 2]; nl];
    for name in weights.names()? {
        let (dtype, shape, bytes) = weights.raw(&name)?;
        let elem = dtype_size(&st_path, &name, dtype)?;
        let n: usize = shape.iter().product();
        before += n;
        let part = name
            .strip_prefix(prefix.as_str())
            .and_then(|n| c.family.attention_part(n));
        let (shape, data) = match part {
            None => (shape, bytes.to_vec()),
            Some((l, _)) if l >= nl => (shape, bytes.to_vec()),
            Some((l, HeadAxis::Rows)) => {
                let stored = c.kept_stored_heads(l).len();
                if shape.is_empty() || shape[0] != stored * d || shape.len() > 2 {
                    return Err(Error::input(
                        &st_path,
                        format!("tensor {name} has shape {shape:?}; layer {l} stores {stored} heads of {d}"),
                    ));
                }
                seen[l][0] = true;
                let local: Vec<usize> = keep[l].iter().map(|&(_, j)| j).collect();
                let mut s = shape.clone();
                s[0] = local.len() * d;
                (s, select(bytes, &shape, elem, d, &local, false))
            }
            Some((l, HeadAxis::Columns)) => {
                let stored = c.kept_stored_heads(l).len();
                if shape.len() != 2 || shape[1] != stored * d {
                    return Err(Error::input(
                        &st_path,
                        format!("tensor {name} has shape {shape:?}; layer {l} stores {stored} heads of {d}"),
                    ));
                }
                seen[l][1] = true;
                let local: Vec<usize> = keep[l].iter().map(|&(_, j)| j).collect();
                let s = vec![shape[0], local.len() * d];
                (s, select(bytes, &shape, elem, d, &local, true))
            }
        };
        after += shape.iter().product::<usize>();
        tensors.push(OutTensor {
            name,
            dtype,
            shape,
            data,
        });
    }
    if let Some(l) = seen.iter().position(|s| !s[0] || !s[1]) {
        return Err(Error::input(
            &st_path,
            format!(
                "missing the attention tensors of layer {l} ({prefix}{}.*)",
                c.family.layer(l, "attention")
            ),
        ));
    }

    let pruned: Vec<Vec<usize>> = keep
        .iter()
        .map(|k| {
            (0..nh)
                .filter(|h| !k.iter().any(|&(o, _)| o == *h))
                .collect()
        })
        .collect();
    let mut json = c.json.clone();
    let obj = json
        .as_object_mut()
        .ok_or_else(|| Error::input(&cfg_path, "config.json is not an object"))?;
    let map: BTreeMap<usize, &Vec<usize>> = pruned
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.is_empty())
        .collect();
    // transformers writes the layer keys as strings, the heads in any order: sorted here
    let ph: serde_json::Map<String, serde_json::Value> = map
        .iter()
        .map(|(l, p)| (l.to_string(), serde_json::json!(p)))
        .collect();
    obj.insert("pruned_heads".into(), ph.into());
    let text = serde_json::to_string_pretty(&json).expect("JSON value serialises");

    let empty_layers: Vec<usize> = (0..nl).filter(|&l| keep[l].is_empty()).collect();
    let heads_left: usize = keep.iter().map(Vec::len).sum();
    if !empty_layers.is_empty() {
        eprintln!(
            "warning: layers {empty_layers:?} keep no head: headroom runs them (the attention output is the bias) but transformers 4.57 fails on such a layer"
        );
    }
    let already: usize = (0..nl).map(|l| nh - c.kept_stored_heads(l).len()).sum();
    crate::io::output::write_dir_atomic(&args.out, |tmp| {
        crate::io::output::write_atomic(&tmp.join("config.json"), text.as_bytes())?;
        let meta = [("format", "pt".to_string())];
        crate::io::output::write_safetensors(&tmp.join("model.safetensors"), &tensors, &meta)?;
        crate::io::output::copy_files(&args.model, tmp, crate::io::output::TOKENIZER_FILES)?;
        crate::io::output::copy_files(&args.model, tmp, &["finetune.json"])
    })?;
    Ok(ExportReport {
        newly_pruned: nl * nh - heads_left - already,
        pruned_heads: pruned,
        heads_left,
        heads_total: nl * nh,
        params_before: before,
        params_after: after,
        empty_layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_takes_head_rows_and_columns() {
        // 3 heads of d = 2 over rows of 2 (one byte per element)
        let rows: Vec<u8> = (0..12).collect(); // [6, 2]
        assert_eq!(
            select(&rows, &[6, 2], 1, 2, &[0, 2], false),
            vec![0, 1, 2, 3, 8, 9, 10, 11]
        );
        let bias: Vec<u8> = (0..6).collect(); // [6]
        assert_eq!(select(&bias, &[6], 1, 2, &[1], false), vec![2, 3]);
        let cols: Vec<u8> = (0..12).collect(); // [2, 6]
        assert_eq!(
            select(&cols, &[2, 6], 1, 2, &[2, 0], true),
            vec![4, 5, 0, 1, 10, 11, 6, 7]
        );
    }
}
