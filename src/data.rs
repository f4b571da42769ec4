//! Input files: sentence TSVs (header names a `sentence` column, optionally `sentence2`).

use crate::error::{Error, Result};
use std::path::Path;

/// (sentence, optional second sentence) per example.
pub type Texts = Vec<(String, Option<String>)>;

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        Error::input(path, format!("not UTF-8 text (first bad byte at offset {})", e.utf8_error().valid_up_to()))
    })
}

/// Reads a TSV whose header names a `sentence` column (and optionally `sentence2`); other
/// columns are ignored. Every line must have as many fields as the header.
pub fn read_sentences(path: &Path) -> Result<Texts> {
    let text = read_text(path)?;
    let mut lines = text.lines().enumerate();
    let header = match lines.next() {
        Some((_, h)) if !h.trim().is_empty() => h.trim_end_matches('\r'),
        _ => return Err(Error::input(path, "empty file: expected a header line naming a `sentence` column")),
    };
    let cols: Vec<&str> = header.split('\t').map(|c| c.trim()).collect();
    let s1 = cols.iter().position(|c| *c == "sentence").ok_or_else(|| {
        Error::input(path, format!("no `sentence` column in the header (columns: {})", cols.join(", ")))
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
                format!("line {}: {} tab-separated fields, but the header has {}", i + 1, fields.len(), cols.len()),
            ));
        }
        let a = fields[s1].trim();
        if a.is_empty() {
            return Err(Error::input(path, format!("line {}: empty sentence", i + 1)));
        }
        let b = s2.map(|j| fields[j].trim().to_string());
        if let Some(b) = &b {
            if b.is_empty() {
                return Err(Error::input(path, format!("line {}: empty sentence2", i + 1)));
            }
        }
        out.push((a.to_string(), b));
    }
    if out.is_empty() {
        return Err(Error::input(path, "no examples: the file has a header and nothing else"));
    }
    Ok(out)
}
