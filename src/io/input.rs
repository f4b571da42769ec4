//! Input files: sentence TSVs (header names a `sentence` column, optionally `sentence2`).

use crate::error::{Error, Result};
use std::path::Path;

/// (sentence, optional second sentence) per example.
pub type Texts = Vec<(String, Option<String>)>;

/// A text file's contents, without a leading UTF-8 byte-order mark.
fn read_text(path: &Path) -> Result<String> {
    let mut bytes =
        std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| {
        Error::input(
            path,
            format!(
                "not UTF-8 text (first bad byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Reads a TSV whose header names a `sentence` column (and optionally `sentence2`); other
/// columns are ignored. Every line must have as many fields as the header.
pub fn read_sentences(path: &Path) -> Result<Texts> {
    let text = read_text(path)?;
    let mut lines = text.lines().enumerate();
    let header = match lines.next() {
        Some((_, h)) if !h.trim().is_empty() => h.trim_end_matches('\r'),
        _ => {
            return Err(Error::input(
                path,
                "empty file: expected a header line naming a `sentence` column",
            ))
        }
    };
    let cols: Vec<&str> = header.split('\t').map(|c| c.trim()).collect();
    let s1 = cols.iter().position(|c| *c == "sentence").ok_or_else(|| {
        Error::input(
            path,
            format!(
                "no `sentence` column in the header (columns: {})",
                cols.join(", ")
            ),
        )
    })?;
    let s2 = cols.iter().position(|c| *c == "sentence2");
    let mut out = Vec::new();
    for (i, line) in lines {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != cols.len() {
            return Err(Error::input(
                path,
                format!(
                    "line {}: {} tab-separated fields, but the header has {}",
                    i + 1,
                    fields.len(),
                    cols.len()
                ),
            ));
        }
        let a = fields[s1].trim();
        if a.is_empty() {
            return Err(Error::input(
                path,
                format!("line {}: empty sentence", i + 1),
            ));
        }
        let b = s2.map(|j| fields[j].trim().to_string());
        if let Some(b) = &b {
            if b.is_empty() {
                return Err(Error::input(
                    path,
                    format!("line {}: empty sentence2", i + 1),
                ));
            }
        }
        out.push((a.to_string(), b));
    }
    if out.is_empty() {
        return Err(Error::input(
            path,
            "no examples: the file has a header and nothing else",
        ));
    }
    Ok(out)
}

/// Reads a head mask: a JSON array of L arrays of H numbers, or a `.npy` [L, H] f32/f64 array.
/// Every value must lie in [0, 1].
pub fn read_head_mask(path: &Path, layers: usize, heads: usize) -> Result<Vec<f32>> {
    let is_npy = path
        .extension()
        .map(|e| e.eq_ignore_ascii_case("npy"))
        .unwrap_or(false);
    let (shape, values) = if is_npy {
        read_npy_2d(path)?
    } else {
        read_json_2d(path)?
    };
    if shape != [layers, heads] {
        return Err(Error::input(
            path,
            format!(
                "head mask has shape {}×{}; the model has {layers} layers × {heads} heads",
                shape[0], shape[1]
            ),
        ));
    }
    if let Some(i) = values.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return Err(Error::input(
            path,
            format!(
                "head mask value {} at layer {}, head {} is outside [0, 1]",
                values[i],
                i / heads,
                i % heads
            ),
        ));
    }
    if values.iter().all(|&v| v == 0.0) {
        eprintln!(
            "warning: {}: the mask prunes every head of every layer (each attention block outputs its bias alone)",
            path.display()
        );
    }
    Ok(values)
}

fn read_json_2d(path: &Path) -> Result<([usize; 2], Vec<f32>)> {
    let text = read_text(path)?;
    let rows: Vec<Vec<f64>> = serde_json::from_str(&text).map_err(|e| {
        Error::input(
            path,
            format!("expected a JSON array of arrays of numbers: {e}"),
        )
    })?;
    let h = rows.first().map(|r| r.len()).unwrap_or(0);
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != h) {
        return Err(Error::input(
            path,
            format!("row {i} has {} values but row 0 has {h}", r.len()),
        ));
    }
    Ok((
        [rows.len(), h],
        rows.iter().flatten().map(|&v| v as f32).collect(),
    ))
}

/// Minimal .npy reader: version 1-3, little-endian f4 or f8, C order, 2-D.
fn read_npy_2d(path: &Path) -> Result<([usize; 2], Vec<f32>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let bad = |m: &str| Error::input(path, format!("not a readable .npy file: {m}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing the \\x93NUMPY magic"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(&format!("unsupported version {v}"))),
    };
    let header = bytes
        .get(start..start + hlen)
        .ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let field = |key: &str| -> Option<&str> {
        let i = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[i..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = field("descr").ok_or_else(|| bad("no descr"))?;
    let width = if descr.starts_with("'<f4'") {
        4
    } else if descr.starts_with("'<f8'") {
        8
    } else {
        return Err(bad("dtype must be little-endian float32 or float64"));
    };
    if field("fortran_order")
        .map(|f| f.starts_with("True"))
        .unwrap_or(false)
    {
        return Err(bad("Fortran order is not supported"));
    }
    let shape_s = field("shape").ok_or_else(|| bad("no shape"))?;
    let inner = shape_s
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("bad shape"))?;
    let dims: Vec<usize> = inner
        .split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("bad shape"))?;
    if dims.len() != 2 {
        return Err(Error::input(
            path,
            format!("head mask must be 2-D [layers, heads]; this array has shape {dims:?}"),
        ));
    }
    let data = &bytes[start + hlen..];
    let n = dims[0] * dims[1];
    if data.len() < n * width {
        return Err(bad(&format!(
            "truncated data: {} bytes for {n} values",
            data.len()
        )));
    }
    let values = (0..n)
        .map(|i| {
            let c = &data[i * width..(i + 1) * width];
            if width == 4 {
                f32::from_le_bytes([c[0], c[1], c[2], c[3]])
            } else {
                f64::from_le_bytes(c.try_into().unwrap()) as f32
            }
        })
        .collect();
    Ok(([dims[0], dims[1]], values))
}

/// Reads a labelled sentence TSV: the `sentence` (and optional `sentence2`) columns as in
/// [`read_sentences`], and the `label` column as written, with each label's line number.
pub fn read_labelled_raw(path: &Path) -> Result<(Texts, Vec<(usize, String)>)> {
    let texts = read_sentences(path)?;
    let text = read_text(path)?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_end_matches('\r').is_empty());
    let header = lines
        .next()
        .map(|(_, h)| h.trim_end_matches('\r'))
        .unwrap_or_default();
    let cols: Vec<&str> = header.split('\t').map(|c| c.trim()).collect();
    let li = cols.iter().position(|c| *c == "label").ok_or_else(|| {
        Error::input(
            path,
            format!(
                "no `label` column in the header (columns: {})",
                cols.join(", ")
            ),
        )
    })?;
    let labels = lines
        .map(|(i, line)| {
            let field = line
                .trim_end_matches('\r')
                .split('\t')
                .nth(li)
                .unwrap_or("");
            (i + 1, field.trim().to_string())
        })
        .collect();
    Ok((texts, labels))
}

/// Reads a labelled sentence TSV whose `label` column holds a class index or an `id2label`
/// name of a model with `classes` classes.
pub fn read_labelled(
    path: &Path,
    id2label: &std::collections::BTreeMap<usize, String>,
    classes: usize,
) -> Result<(Texts, Vec<i32>)> {
    let (texts, raw) = read_labelled_raw(path)?;
    let names: Vec<String> = (0..classes)
        .map(|i| id2label.get(&i).cloned().unwrap_or_else(|| i.to_string()))
        .collect();
    let mut labels = Vec::with_capacity(texts.len());
    for (line, field) in raw {
        let by_index = field.parse::<usize>().ok().filter(|&k| k < classes);
        let by_name = id2label
            .iter()
            .find(|(_, n)| n.as_str() == field)
            .map(|(k, _)| *k);
        match by_index.or(by_name) {
            Some(k) => labels.push(k as i32),
            None => {
                return Err(Error::input(
                    path,
                    format!("line {line}: label {field:?} is not a class index below {classes} nor one of the model's labels ({})", names.join(", ")),
                ))
            }
        }
    }
    Ok((texts, labels))
}

/// One CoNLL sentence: words and their tags.
#[derive(Clone, Debug, PartialEq)]
pub struct TaggedSentence {
    pub words: Vec<String>,
    pub tags: Vec<String>,
}

/// Reads CoNLL: `token<TAB>tag` per line (the tag is the last field), a blank line between
/// sentences; `-DOCSTART-` lines are skipped. A line without a tab is an error naming it.
pub fn read_conll(path: &Path) -> Result<Vec<TaggedSentence>> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    let mut cur = TaggedSentence {
        words: Vec::new(),
        tags: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !cur.words.is_empty() {
                out.push(std::mem::replace(
                    &mut cur,
                    TaggedSentence {
                        words: Vec::new(),
                        tags: Vec::new(),
                    },
                ));
            }
            continue;
        }
        if line.starts_with("-DOCSTART-") {
            continue;
        }
        let (word, tag) = match (line.split_once('\t'), line.rsplit_once('\t')) {
            (Some((w, _)), Some((_, t))) if !w.is_empty() && !t.trim().is_empty() => (w, t.trim()),
            _ => {
                return Err(Error::input(
                    path,
                    format!(
                        "line {}: expected `token<TAB>tag`, got {:?}",
                        i + 1,
                        line.chars().take(60).collect::<String>()
                    ),
                ))
            }
        };
        cur.words.push(word.to_string());
        cur.tags.push(tag.to_string());
    }
    if !cur.words.is_empty() {
        out.push(cur);
    }
    if out.is_empty() {
        return Err(Error::input(path, "no sentences (the file is empty)"));
    }
    Ok(out)
}
