//! CoNLL-U (Universal Dependencies) reading for head analysis: sentences of syntactic words
//! with their heads and relations, and the surface tokens the model reads.
//!
//! - Multiword tokens (`3-4 du`) are read as one surface token; each syntactic word inside
//!   (`3 de`, `4 le`) maps to it, so attention to or from those words is that of the whole
//!   surface token.
//! - Empty nodes (`5.1`) belong to the enhanced graph only and are skipped.
//! - A token line must have 10 tab-separated columns, integer IDs counting 1, 2, … within the
//!   sentence and a HEAD between 0 (the root) and the sentence's word count; anything else is
//!   one error naming the file and line.

use crate::error::{Error, Result};
use std::path::Path;

/// One syntactic word.
#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    pub form: String,
    pub upos: String,
    /// 1-based index of the head word, 0 for the root.
    pub head: usize,
    /// The relation to the head as written (`nsubj:pass`).
    pub deprel: String,
    /// Index into [`Sentence::units`] of the surface token holding this word.
    pub unit: usize,
}

impl Word {
    /// The universal relation, without its subtype (`nsubj:pass` → `nsubj`).
    pub fn relation(&self) -> &str {
        self.deprel.split(':').next().unwrap_or(&self.deprel)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sentence {
    /// Line of the sentence's first token line (1-based).
    pub line: usize,
    /// Surface tokens, in order: what the model reads (joined by spaces).
    pub units: Vec<String>,
    /// Syntactic words; `words[i]` has ID i + 1.
    pub words: Vec<Word>,
}

fn parse_id(s: &str) -> Option<usize> {
    s.parse::<usize>().ok().filter(|&v| v > 0)
}

struct Builder {
    line: usize,
    units: Vec<String>,
    words: Vec<Word>,
    /// The multiword token in force: (last word ID it covers, its unit).
    range: Option<(usize, usize)>,
    /// Token lines seen (a sentence of only comments or empty nodes has none).
    tokens: usize,
}

impl Builder {
    fn new(line: usize) -> Builder {
        Builder {
            line,
            units: Vec::new(),
            words: Vec::new(),
            range: None,
            tokens: 0,
        }
    }

    fn finish(self, path: &Path) -> Result<Option<Sentence>> {
        if self.tokens == 0 {
            return Ok(None);
        }
        if self.words.is_empty() {
            return Err(Error::input(
                path,
                format!("line {}: a sentence without words", self.line),
            ));
        }
        if let Some((last, _)) = self.range {
            if last > self.words.len() {
                return Err(Error::input(
                    path,
                    format!(
                        "line {}: a multiword token reaches word {last} but the sentence has {}",
                        self.line,
                        self.words.len()
                    ),
                ));
            }
        }
        Ok(Some(Sentence {
            line: self.line,
            units: self.units,
            words: self.words,
        }))
    }
}

/// Parses CoNLL-U text; `path` names the file in errors.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Sentence>> {
    let mut out = Vec::new();
    let mut cur: Option<Builder> = None;
    // (line of the HEAD, sentence index, word index) to check once the sentence is complete
    let mut heads: Vec<(usize, usize, usize)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            if let Some(b) = cur.take() {
                if let Some(s) = b.finish(path)? {
                    out.push(s);
                }
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let b = cur.get_or_insert_with(|| Builder::new(n));
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 10 {
            return Err(Error::input(
                path,
                format!(
                    "line {n}: expected 10 tab-separated columns, found {}",
                    cols.len()
                ),
            ));
        }
        b.tokens += 1;
        let id = cols[0];
        if id.contains('.') {
            continue; // an empty node of the enhanced graph
        }
        if let Some((a, z)) = id.split_once('-') {
            let (a, z) = match (parse_id(a), parse_id(z)) {
                (Some(a), Some(z)) if a <= z => (a, z),
                _ => {
                    return Err(Error::input(
                        path,
                        format!("line {n}: malformed multiword token ID {id:?}"),
                    ))
                }
            };
            if a != b.words.len() + 1 {
                return Err(Error::input(
                    path,
                    format!(
                        "line {n}: multiword token {id} should start at word {}",
                        b.words.len() + 1
                    ),
                ));
            }
            b.units.push(cols[1].to_string());
            b.range = Some((z, b.units.len() - 1));
            continue;
        }
        let want = b.words.len() + 1;
        match parse_id(id) {
            Some(v) if v == want => {}
            _ => {
                return Err(Error::input(
                    path,
                    format!("line {n}: word ID {id:?} where {want} was expected"),
                ))
            }
        }
        let head = cols[6].parse::<usize>().map_err(|_| {
            Error::input(
                path,
                format!("line {n}: HEAD {:?} is not a word index", cols[6]),
            )
        })?;
        let unit = match b.range {
            Some((last, unit)) if want <= last => unit,
            _ => {
                b.range = None;
                b.units.push(cols[1].to_string());
                b.units.len() - 1
            }
        };
        b.words.push(Word {
            form: cols[1].to_string(),
            upos: cols[3].to_string(),
            head,
            deprel: cols[7].to_string(),
            unit,
        });
        heads.push((n, out.len(), b.words.len() - 1));
    }
    if let Some(b) = cur.take() {
        if let Some(s) = b.finish(path)? {
            out.push(s);
        }
    }
    for (n, s, w) in heads {
        let sent = &out[s];
        let h = sent.words[w].head;
        if h > sent.words.len() {
            return Err(Error::input(
                path,
                format!(
                    "line {n}: head {h} is outside the sentence of {} words",
                    sent.words.len()
                ),
            ));
        }
        if h == w + 1 {
            return Err(Error::input(
                path,
                format!("line {n}: word {h} is its own head"),
            ));
        }
    }
    for s in &out {
        check_tree(path, s)?;
    }
    if out.is_empty() {
        return Err(Error::input(path, "no sentences"));
    }
    Ok(out)
}

/// Refuses a sentence whose heads (in range, none its own) do not form a tree: following heads
/// from any word must reach the root (0) without meeting a word twice.
fn check_tree(path: &Path, s: &Sentence) -> Result<()> {
    let n = s.words.len();
    // 0: unvisited, 1: on the current path, 2: known to reach the root
    let mut state = vec![0u8; n + 1];
    state[0] = 2;
    for start in 1..=n {
        let mut path_words = Vec::new();
        let mut w = start;
        while state[w] == 0 {
            state[w] = 1;
            path_words.push(w);
            w = s.words[w - 1].head;
        }
        if state[w] == 1 {
            return Err(Error::input(
                path,
                format!(
                    "the sentence with word {start} ({:?}) has a cycle of heads through word {w}",
                    s.words[start - 1].form
                ),
            ));
        }
        for v in path_words {
            state[v] = 2;
        }
    }
    Ok(())
}

/// Reads a CoNLL-U file.
pub fn read(path: &Path) -> Result<Vec<Sentence>> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let text =
        String::from_utf8(bytes).map_err(|e| Error::input(path, format!("not UTF-8: {e}")))?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("t.conllu")
    }

    fn line(id: &str, form: &str, head: &str, rel: &str) -> String {
        format!("{id}\t{form}\t_\tX\t_\t_\t{head}\t{rel}\t_\t_")
    }

    #[test]
    fn multiword_tokens_and_empty_nodes() {
        let text = [
            "# sent_id = 1".to_string(),
            "# text = Il va du pain.".into(),
            line("1", "Il", "2", "nsubj"),
            line("2", "va", "0", "root"),
            line("3-4", "du", "_", "_"),
            line("3", "de", "5", "case"),
            line("4", "le", "5", "det"),
            line("4.1", "x", "_", "_"),
            line("5", "pain", "2", "obl:arg"),
            line("6", ".", "2", "punct"),
            String::new(),
            line("1", "Yes", "0", "root"),
        ]
        .join("\n");
        let s = parse(p(), &text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].units, vec!["Il", "va", "du", "pain", "."]);
        let units: Vec<usize> = s[0].words.iter().map(|w| w.unit).collect();
        assert_eq!(units, vec![0, 1, 2, 2, 3, 4]);
        assert_eq!(s[0].words[4].relation(), "obl");
        assert_eq!(s[0].words[4].head, 2);
        assert_eq!(s[0].line, 3);
        assert_eq!(s[1].line, 12);
        assert_eq!(s[1].units, vec!["Yes"]);
    }

    #[test]
    fn bad_lines_name_the_line() {
        let err = |text: &str| parse(p(), text).unwrap_err().to_string();
        let two = format!("{}\n{}", line("1", "a", "0", "root"), "2\tb\t_");
        assert!(err(&two).contains("line 2: expected 10 tab-separated columns, found 3"));
        let far = format!(
            "{}\n{}",
            line("1", "a", "0", "root"),
            line("2", "b", "7", "obj")
        );
        assert!(err(&far).contains("line 2: head 7 is outside the sentence of 2 words"));
        let skip = format!(
            "{}\n{}",
            line("1", "a", "0", "root"),
            line("3", "b", "1", "obj")
        );
        assert!(err(&skip).contains("line 2: word ID \"3\" where 2 was expected"));
        let notnum = line("1", "a", "x", "root");
        assert!(err(&notnum).contains("line 1: HEAD \"x\""));
        assert!(err("# only a comment\n\n").contains("no sentences"));
        let own = line("1", "a", "1", "root");
        assert!(err(&own).contains("its own head"));
    }
}
