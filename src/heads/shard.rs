//! Sharded scoring: `score --shard I/N` runs the I-th of N slices of the batch plan and writes
//! its sums ([`Partial`]) to a shard file; `merge` checks that a set of shards is one whole run
//! and writes what the unsharded `score` writes.
//!
//! A shard file is a safetensors file: the per-example rows (`indices` I64 [n],
//! `per_example_gate_grad` and `per_example_token` F32 [n, L, H]) and, in the header's
//! metadata under `headroom_shard`, a JSON object with the run's identity (model and data
//! fingerprints, options), the shard's place and its other sums.

use super::importance::{fnv1a, Partial, ShardSpec, FNV_OFFSET};
use super::score::{write_outputs, RunInfo, ScoreSummary};
use crate::error::{Error, Result};
use crate::io::output::{check_not_input, write_safetensors, OutTensor};
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};

const META_KEY: &str = "headroom_shard";
const FORMAT: u32 = 1;

/// One shard: the run it belongs to, its place in it and its sums.
pub struct Shard {
    /// What every shard of one run shares: fingerprints and options (compared key by key).
    pub identity: serde_json::Map<String, Value>,
    pub info: RunInfo,
    pub spec: ShardSpec,
    pub partial: Partial,
    pub seconds: f64,
}

/// FNV-1a 64 of a file's bytes, as hex.
pub fn file_fingerprint(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::input(path, format!("{e}")))?;
    let mut h = FNV_OFFSET;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::input(path, format!("{e}")))?;
        if n == 0 {
            return Ok(format!("{h:016x}"));
        }
        h = fnv1a(h, &buf[..n]);
    }
}

/// A model directory's fingerprint: its config.json and weights.
pub fn model_fingerprint(dir: &Path) -> Result<String> {
    let mut parts = Vec::new();
    for name in ["config.json", "model.safetensors"] {
        let p = dir.join(name);
        if p.exists() {
            parts.push(file_fingerprint(&p)?);
        }
    }
    Ok(parts.join("-"))
}

/// The file a shard is written to in `out`.
pub fn shard_path(out: &Path, spec: ShardSpec) -> PathBuf {
    out.join(format!(
        "shard-{}-of-{}.safetensors",
        spec.index, spec.count
    ))
}

/// Writes `shard` into the directory `out` (created if need be); returns the file.
pub fn write_shard(out: &Path, shard: &Shard) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| Error::output(out, format!("cannot create: {e}")))?;
    let path = shard_path(out, shard.spec);
    let p = &shard.partial;
    let (n, lh) = (p.indices.len(), p.layers * p.heads);
    let indices: Vec<i64> = p.indices.iter().map(|&i| i as i64).collect();
    let shape = vec![n, p.layers, p.heads];
    let tensors = [
        OutTensor::i64("indices", vec![n], &indices),
        OutTensor::f32("per_example_gate_grad", shape.clone(), &p.per_example),
        OutTensor::f32("per_example_token", shape, &p.per_example_token),
    ];
    debug_assert_eq!(p.per_example.len(), n * lh);
    let meta = json!({
        "format": FORMAT,
        "identity": shard.identity,
        "info": shard.info,
        "shard": shard.spec.index,
        "of": shard.spec.count,
        "layers": p.layers,
        "heads": p.heads,
        "examples": p.examples,
        "batches": p.batches,
        "plan": format!("{:016x}", p.plan),
        "ran": [p.ran.start, p.ran.end],
        "batch": p.batch,
        "entropy": p.entropy,
        "confidence": p.confidence,
        "tokens": p.tokens,
        "loss": p.loss,
        "seconds": shard.seconds,
    });
    write_safetensors(&path, &tensors, &[(META_KEY, meta.to_string())])?;
    Ok(path)
}

/// Reads a shard file; every problem is an input error naming the file.
pub fn read_shard(path: &Path) -> Result<Shard> {
    let bad = |msg: String| Error::input(path, msg);
    let bytes = std::fs::read(path).map_err(|e| bad(format!("{e}")))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a shard file (safetensors: {e})")))?;
    let text = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| bad(format!("not a shard file (no `{META_KEY}` metadata)")))?;
    let m: Value = serde_json::from_str(text).map_err(|e| bad(format!("shard metadata: {e}")))?;
    if m["format"].as_u64() != Some(FORMAT as u64) {
        return Err(bad(format!(
            "shard format {} (this headroom reads {FORMAT})",
            m["format"]
        )));
    }
    let field = |k: &str| bad(format!("shard metadata: `{k}` missing or malformed"));
    let uint = |k: &str| m[k].as_u64().map(|v| v as usize).ok_or_else(|| field(k));
    let floats = |k: &str| -> Result<Vec<f64>> {
        m[k].as_array()
            .ok_or_else(|| field(k))?
            .iter()
            .map(|v| v.as_f64().ok_or_else(|| field(k)))
            .collect()
    };
    let (layers, heads) = (uint("layers")?, uint("heads")?);
    let (index, count) = (uint("shard")?, uint("of")?);
    if count == 0 || index >= count {
        return Err(bad(format!("shard {index} of {count}")));
    }
    let ran = m["ran"].as_array().ok_or_else(|| field("ran"))?;
    let ran = match ran.as_slice() {
        [a, b] => {
            (a.as_u64().ok_or_else(|| field("ran"))? as usize)
                ..(b.as_u64().ok_or_else(|| field("ran"))? as usize)
        }
        _ => return Err(field("ran")),
    };
    let plan = m["plan"]
        .as_str()
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or_else(|| field("plan"))?;
    let lh = layers * heads;
    let (batch, entropy, confidence) =
        (floats("batch")?, floats("entropy")?, floats("confidence")?);
    if [batch.len(), entropy.len(), confidence.len()] != [lh; 3] {
        return Err(bad(format!(
            "shard metadata: sums are not of {layers} × {heads} heads"
        )));
    }
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a shard file (safetensors: {e})")))?;
    let tensor = |name: &str, dtype: safetensors::Dtype, row: usize| -> Result<(usize, Vec<u8>)> {
        let t = st
            .tensor(name)
            .map_err(|_| bad(format!("no tensor `{name}`")))?;
        let n = t.shape().first().copied().unwrap_or(0);
        if t.dtype() != dtype || t.shape().iter().product::<usize>() != n * row {
            return Err(bad(format!(
                "tensor `{name}`: {:?} {:?}, expected {dtype:?} [n, {row}]",
                t.dtype(),
                t.shape()
            )));
        }
        Ok((n, t.data().to_vec()))
    };
    let (n, idx) = tensor("indices", safetensors::Dtype::I64, 1)?;
    let (ng, g) = tensor("per_example_gate_grad", safetensors::Dtype::F32, lh)?;
    let (nt, tok) = tensor("per_example_token", safetensors::Dtype::F32, lh)?;
    if ng != n || nt != n {
        return Err(bad(format!(
            "{n} indices but {ng} and {nt} per-example rows"
        )));
    }
    let examples = uint("examples")?;
    let indices: Vec<usize> = idx
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .map(|i| usize::try_from(i).ok().filter(|&i| i < examples))
        .collect::<Option<_>>()
        .ok_or_else(|| bad(format!("an example index outside 0..{examples}")))?;
    let f32s = |b: &[u8]| -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let identity = m["identity"]
        .as_object()
        .cloned()
        .ok_or_else(|| field("identity"))?;
    let info: RunInfo =
        serde_json::from_value(m["info"].clone()).map_err(|e| bad(format!("shard info: {e}")))?;
    Ok(Shard {
        identity,
        info,
        spec: ShardSpec { index, count },
        partial: Partial {
            layers,
            heads,
            examples,
            batches: uint("batches")?,
            plan,
            ran,
            indices,
            per_example: f32s(&g),
            per_example_token: f32s(&tok),
            batch,
            entropy,
            confidence,
            tokens: uint("tokens")?,
            loss: m["loss"].as_f64().ok_or_else(|| field("loss"))?,
        },
        seconds: m["seconds"].as_f64().unwrap_or(0.0),
    })
}

/// `headroom merge`: the shards of one `score` run into what the unsharded run writes in
/// `out`. Refuses shards of other runs (naming the key that differs), a shard given twice, a
/// missing one, and shards whose batches overlap or leave a gap.
pub fn merge(paths: &[PathBuf], out: &Path) -> Result<ScoreSummary> {
    if paths.is_empty() {
        return Err(Error::Usage("merge needs at least one shard file".into()));
    }
    let inputs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    check_not_input(out, &inputs)?;
    if out.exists() && !out.is_dir() {
        return Err(Error::output(out, "exists and is not a directory"));
    }
    let start = std::time::Instant::now();
    let mut shards: Vec<(PathBuf, Shard)> = Vec::new();
    for p in paths {
        let s = read_shard(p)?;
        if let Some((first, f)) = shards.first() {
            if s.spec.count != f.spec.count {
                return Err(Error::input(
                    p,
                    format!(
                        "shard {}/{} of a run cut into {}, but {} is of {}",
                        s.spec.index,
                        s.spec.count,
                        s.spec.count,
                        first.display(),
                        f.spec.count
                    ),
                ));
            }
            let keys = f.identity.keys().chain(s.identity.keys());
            if let Some(k) = keys
                .into_iter()
                .find(|k| f.identity.get(*k) != s.identity.get(*k))
            {
                return Err(Error::input(
                    p,
                    format!(
                        "another run than {}: `{k}` is {} there and {} here",
                        first.display(),
                        f.identity.get(k).unwrap_or(&Value::Null),
                        s.identity.get(k).unwrap_or(&Value::Null)
                    ),
                ));
            }
            if let Some((other, _)) = shards.iter().find(|(_, o)| o.spec.index == s.spec.index) {
                return Err(Error::input(
                    p,
                    format!(
                        "shard {}/{} is also {}",
                        s.spec.index,
                        s.spec.count,
                        other.display()
                    ),
                ));
            }
        }
        shards.push((p.clone(), s));
    }
    let count = shards[0].1.spec.count;
    if let Some(missing) = (0..count).find(|i| !shards.iter().any(|(_, s)| s.spec.index == *i)) {
        return Err(Error::Usage(format!(
            "shard {missing}/{count} is missing ({} of {count} given)",
            shards.len()
        )));
    }
    shards.sort_by_key(|(_, s)| s.spec.index);
    let seconds = shards.iter().map(|(_, s)| s.seconds).sum::<f64>();
    let mut info = shards[0].1.info.clone();
    let mut adapters: Vec<String> = Vec::new();
    for (_, s) in &shards {
        if !adapters.contains(&s.info.adapter) {
            adapters.push(s.info.adapter.clone());
        }
    }
    info.adapter = adapters.join("; ");
    let last = shards.last().map(|(p, _)| p.clone()).unwrap_or_default();
    let partial = Partial::merge(shards.into_iter().map(|(_, s)| s.partial).collect())
        .map_err(|e| Error::input(&last, e))?;
    let scores = partial.finish();
    write_outputs(out, &info, &scores, seconds + start.elapsed().as_secs_f64())
}
