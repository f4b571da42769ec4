//! Structure-aware random testing of every parser (stable Rust, so no cargo-fuzz): each parser
//! gets valid seed inputs mutated at random (bytes flipped, inserted, deleted, runs of
//! separators, numbers swapped for extreme ones, truncation, splices of two seeds) and must
//! answer `Ok` or `Err`, never panic. A fixed seed makes every run reproducible.
//!
//! `HEADROOM_FUZZ_SECS` (default 6) is the time per run, shared by the parsers;
//! `HEADROOM_FUZZ_SEED` picks the generator's seed. `scripts/fuzz.sh` runs it for longer and
//! prints the counts.

mod common;
use common::tempdir::TempDir;
use common::*;
use headroom::heads::importance::ShardSpec;
use std::path::Path;
use std::time::{Duration, Instant};

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens that parsers treat specially, spliced in by the mutator.
const TOKENS: &[&[u8]] = &[
    b"\t",
    b"\n",
    b"\r\n",
    b"\n\n",
    b" ",
    b"-1",
    b"0",
    b"NaN",
    b"inf",
    b"1e309",
    b"-0",
    b"18446744073709551616",
    b"4294967296",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"#",
    b"_",
    b"-",
    b".",
    b"1-2",
    b"3.1",
    b"\xEF\xBB\xBF",
    b"\xFF",
    b"\0",
    b"label",
    b"sentence",
];

/// One mutation of `seed` (with `other`, a second seed, for splices).
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if !v.is_empty() => {
                let n = rng.below(16).min(v.len() - at.min(v.len()));
                v.drain(at.min(v.len())..at.min(v.len()) + n);
            }
            3 | 4 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            5 => v.truncate(at),
            6 if !other.is_empty() => {
                let from = rng.below(other.len());
                let n = rng.below(other.len() - from + 1);
                v.splice(at..at, other[from..from + n].iter().copied());
            }
            _ => {
                // replace a run of digits with an extreme number
                if let Some(start) = (at..v.len()).find(|&i| v[i].is_ascii_digit()) {
                    let end = (start..v.len())
                        .find(|&i| !v[i].is_ascii_digit())
                        .unwrap_or(v.len());
                    let t: &[u8] = [&b"0"[..], b"-1", b"99999999999", b"1e40"][rng.below(4)];
                    v.splice(start..end, t.iter().copied());
                }
            }
        }
    }
    v
}

type Parser = Box<dyn Fn(&Path)>;

/// Each parser with its seed inputs and a file name (some parsers look at the extension).
fn targets(tmp: &Path) -> Vec<(&'static str, &'static str, Vec<Vec<u8>>, Parser)> {
    let read = |p: &Path| std::fs::read(p).unwrap();
    let tiny = fixture("tiny-bert");
    let labelled = b"sentence\tlabel\nthe film is good\tpos\na dull film\t0\n".to_vec();
    let pairs = b"sentence\tsentence2\tlabel\na b\tc d\t1\n\"q\"\tr\t2\n".to_vec();
    let conll = b"-DOCSTART-\tO\n\nJohn\tB-PER\nSmith\tI-PER\nruns\tO\n\nParis\tB-LOC\n".to_vec();
    let conllu = b"# sent_id = 1\n# text = a b c\n1\ta\ta\tX\tX\t_\t2\tdet\t_\t_\n2-3\tbc\t_\t_\t_\t_\t_\t_\t_\t_\n2\tb\tb\tX\tX\t_\t0\troot\t_\t_\n3\tc\tc\tX\tX\t_\t2\tobj\t_\t_\n3.1\tx\tx\tX\tX\t_\t_\t_\t_\t_\n\n".to_vec();
    let mask_json = b"[[1, 0], [0.5, 1]]".to_vec();
    let npy = {
        let mut h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }".to_string();
        h.push_str(&" ".repeat((64 - (10 + h.len() + 1) % 64) % 64));
        h.push('\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend((h.len() as u16).to_le_bytes());
        v.extend(h.as_bytes());
        for x in [1f32, 0.0, 1.0, 0.25] {
            v.extend(x.to_le_bytes());
        }
        v
    };
    // a small real shard, written by the code under test
    let shard_dir = tmp.join("shard-seed");
    let out = headroom(&[
        "score",
        "--model",
        p(&tiny),
        "--data",
        p(&write(tmp, "s.tsv", &labelled)),
        "--out",
        p(&shard_dir),
        "--shard",
        "0/1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shard = read(&shard_dir.join("shard-0-of-1.safetensors"));
    // a small safetensors file: the tiny model's header and its first tensors
    let weights = read(&tiny.join("model.safetensors"));
    let header_len = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let weights_head = weights[..(8 + header_len + 4096).min(weights.len())].to_vec();
    let config = read(&tiny.join("config.json"));
    let family = headroom::model::config::Config::load(&tiny.join("config.json"))
        .unwrap()
        .family;
    let tokenizer = read(&tiny.join("tokenizer.json"));
    let tok_small = {
        // the tokenizer with a short vocabulary, so that each parse is quick
        let mut t: serde_json::Value = serde_json::from_slice(&tokenizer).unwrap();
        let vocab = t["model"]["vocab"].as_object().unwrap().clone();
        let keep: serde_json::Map<_, _> = vocab
            .into_iter()
            .filter(|(_, id)| id.as_u64().unwrap() < 200)
            .collect();
        t["model"]["vocab"] = serde_json::Value::Object(keep);
        serde_json::to_vec(&t).unwrap()
    };
    let id2label: std::collections::BTreeMap<usize, String> =
        [(0, "neg".into()), (1, "neu".into()), (2, "pos".into())].into();
    vec![
        (
            "sentences TSV",
            "data.tsv",
            vec![labelled.clone(), pairs.clone()],
            Box::new(|p| {
                let _ = headroom::io::input::read_sentences(p);
            }),
        ),
        (
            "labelled TSV",
            "data.tsv",
            vec![labelled, pairs],
            Box::new(move |p| {
                let _ = headroom::io::input::read_labelled(p, &id2label, 3);
            }),
        ),
        (
            "CoNLL",
            "data.conll",
            vec![conll],
            Box::new(|p| {
                let _ = headroom::io::input::read_conll(p);
            }),
        ),
        (
            "CoNLL-U",
            "data.conllu",
            vec![conllu],
            Box::new(|p| {
                let _ = headroom::io::conllu::read(p);
            }),
        ),
        (
            "head mask (JSON)",
            "mask.json",
            vec![mask_json],
            Box::new(|p| {
                let _ = headroom::io::input::read_head_mask(p, 2, 2);
            }),
        ),
        (
            "head mask (npy)",
            "mask.npy",
            vec![npy],
            Box::new(|p| {
                let _ = headroom::io::input::read_head_mask(p, 2, 2);
            }),
        ),
        (
            "config.json",
            "config.json",
            vec![config],
            Box::new(|p| {
                let _ = headroom::model::config::Config::load(p);
            }),
        ),
        (
            "safetensors",
            "model.safetensors",
            vec![weights_head],
            Box::new(move |p| {
                if let Ok(w) = headroom::model::weights::Weights::open(p, family) {
                    for name in w.names().unwrap_or_default().iter().take(4) {
                        if let Some(shape) = w.shape(name) {
                            let _ = w.get(name, &shape);
                        }
                    }
                }
            }),
        ),
        (
            "tokenizer.json",
            "tokenizer.json",
            vec![tok_small],
            Box::new(|p| {
                if let Ok(t) = headroom::model::tokenizer::BertTokenizer::load(p, 32, false) {
                    let _ =
                        t.encode_all(&[("the film is good".to_string(), Some("a b".to_string()))]);
                }
            }),
        ),
        (
            "shard",
            "shard-0-of-1.safetensors",
            vec![shard],
            Box::new(|p| {
                let _ = headroom::heads::shard::read_shard(p);
            }),
        ),
        (
            "--shard",
            "spec.txt",
            vec![b"1/4".to_vec(), b"0/1".to_vec()],
            Box::new(|p| {
                let _ = ShardSpec::parse(&String::from_utf8_lossy(&std::fs::read(p).unwrap()));
            }),
        ),
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn no_parser_panics_on_mutated_inputs() {
    let secs: f64 = std::env::var("HEADROOM_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6.0);
    let seed: u64 = std::env::var("HEADROOM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED);
    let tmp = TempDir::new("fuzz");
    let targets = targets(tmp.path());
    let per_target = Duration::from_secs_f64(secs / targets.len() as f64);
    let mut rng = Rng(seed);
    let mut report = Vec::new();
    let mut panics = Vec::new();
    // parse errors are expected; keep the panic hook from printing each caught panic twice
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for (name, file, seeds, parse) in &targets {
        let path = tmp.path().join(file);
        eprintln!("fuzzing {name}");
        let start = Instant::now();
        let mut cases = 0usize;
        while start.elapsed() < per_target || cases < 20 {
            let a = &seeds[rng.below(seeds.len())];
            let b = &seeds[rng.below(seeds.len())];
            let input = mutate(&mut rng, a, b);
            std::fs::write(&path, &input).unwrap();
            cases += 1;
            if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&path)))
            {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                // kept for reproduction under target/fuzz-failures/
                let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
                std::fs::create_dir_all(&keep).unwrap();
                let kept = keep.join(format!("{}-{seed}-{cases}-{file}", panics.len()));
                std::fs::write(&kept, &input).unwrap();
                panics.push(format!("{name}: {msg} (input kept as {})", kept.display()));
            }
        }
        report.push((*name, cases));
    }
    std::panic::set_hook(hook);
    let total: usize = report.iter().map(|(_, cases)| cases).sum();
    println!(
        "fuzz (seed {seed}, {secs} s): {total} cases, {} panics",
        panics.len()
    );
    for (name, cases) in &report {
        println!("  {name}: {cases} cases");
    }
    assert!(
        panics.is_empty(),
        "parsers panicked:\n{}",
        panics.join("\n")
    );
}
