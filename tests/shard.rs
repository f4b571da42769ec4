//! `headroom score --shard I/N` and `headroom merge` on the tiny classifier: the merged shards
//! write what one unsharded run writes, and shards that are not one run are refused.

mod common;
use common::tempdir::TempDir;
use common::*;
use std::path::{Path, PathBuf};

/// A labelled TSV of `n` sentences of varied lengths (labels of the tiny 3-class model).
fn data(dir: &Path, n: usize) -> PathBuf {
    let texts = golden_texts("sentences.tsv");
    let mut s = String::from("sentence\tlabel\n");
    for i in 0..n {
        let (t, _) = &texts[i % texts.len()];
        // repeat words so that lengths (and so the batch plan) vary
        let words: Vec<&str> = t.split_whitespace().collect();
        let k = 1 + i % words.len().max(1);
        s.push_str(&format!("{}\t{}\n", words[..k].join(" "), i % 3));
    }
    let path = dir.join("data.tsv");
    std::fs::write(&path, s).unwrap();
    path
}

/// `headroom score` at batch size 4 (unless `extra` sets one) with 20 bootstrap resamples.
fn score(model: &Path, data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut a = vec![
        "score",
        "--model",
        p(model),
        "--data",
        p(data),
        "--out",
        p(out),
    ];
    if !extra.contains(&"--batch-size") {
        a.extend(["--batch-size", "4"]);
    }
    a.extend(["--bootstrap", "20"]);
    a.extend(extra);
    headroom(&a)
}

fn ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every number in `a` equals the one in `b` within `rel` relative; other values equal
/// (`wall_seconds` and `adapter` aside).
fn assert_same(a: &serde_json::Value, b: &serde_json::Value, path: &str, rel: f64) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: Vec<&String> = x.keys().collect();
            assert_eq!(keys, y.keys().collect::<Vec<_>>(), "keys of {path}");
            for k in keys {
                if k != "wall_seconds" {
                    assert_same(&x[k], &y[k], &format!("{path}.{k}"), rel);
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "length of {path}");
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                assert_same(u, v, &format!("{path}[{i}]"), rel);
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= rel * x.abs().max(y.abs()) + 1e-30,
                "{path}: {x} vs {y}"
            );
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn merged_shards_equal_the_unsharded_run_and_mismatches_are_refused() {
    let tmp = TempDir::new("shard");
    let dir = tmp.path();
    let model = fixture("tiny-bert");
    let tsv = data(dir, 23);
    let whole = dir.join("whole");
    ok(&score(&model, &tsv, &whole, &[]), "unsharded score");
    let shards = dir.join("shards");
    for i in 0..3 {
        let spec = format!("{i}/3");
        ok(&score(&model, &tsv, &shards, &["--shard", &spec]), &spec);
    }
    let file = |i: usize| shards.join(format!("shard-{i}-of-3.safetensors"));
    let merged = dir.join("merged");
    // any order
    let out = headroom(&[
        "merge",
        p(&file(2)),
        p(&file(0)),
        p(&file(1)),
        "--out",
        p(&merged),
    ]);
    ok(&out, "merge");
    assert_same(
        &read_json(&whole.join("report.json")),
        &read_json(&merged.join("report.json")),
        "report",
        1e-6,
    );
    for npy in [
        "head_importance.npy",
        "attn_entropy.npy",
        "attn_confidence.npy",
    ] {
        let (a, b) = (
            std::fs::read(whole.join(npy)).unwrap(),
            std::fs::read(merged.join(npy)).unwrap(),
        );
        assert_eq!(a.len(), b.len(), "{npy}");
    }
    assert_eq!(
        std::fs::read(whole.join("head_importance.npy")).unwrap(),
        std::fs::read(merged.join("head_importance.npy")).unwrap(),
        "per-example means are summed in input order in both"
    );

    // refusals: each exit 2 with one line naming the problem, and nothing written
    let refused = dir.join("refused");
    let merge = |files: &[PathBuf]| {
        let mut a = vec!["merge".to_string()];
        a.extend(files.iter().map(|f| p(f).to_string()));
        a.extend(["--out".to_string(), p(&refused).to_string()]);
        headroom(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let out = merge(&[file(0), file(2)]);
    assert_user_error(&out, "shard 1/3 is missing", "a gap");
    let out = merge(&[file(0), file(1), file(1), file(2)]);
    assert_user_error(&out, "shard 1/3 is also", "a shard twice");
    // another batch size, other data, another shard count
    let other = dir.join("other");
    ok(
        &score(
            &model,
            &tsv,
            &other,
            &["--shard", "1/3", "--batch-size", "8"],
        ),
        "batch 8",
    );
    let out = merge(&[file(0), other.join("shard-1-of-3.safetensors"), file(2)]);
    assert_user_error(&out, "`batch_size` is 4 there and 8 here", "options differ");
    let tsv2 = dir.join("data2.tsv");
    let mut text = std::fs::read_to_string(&tsv).unwrap();
    text.push_str("one more sentence\t1\n");
    std::fs::write(&tsv2, text).unwrap();
    ok(
        &score(&model, &tsv2, &other, &["--shard", "2/3"]),
        "other data",
    );
    let out = merge(&[file(0), file(1), other.join("shard-2-of-3.safetensors")]);
    assert_user_error(&out, "`data` is", "data differ");
    ok(&score(&model, &tsv, &other, &["--shard", "0/2"]), "halves");
    let out = merge(&[file(0), other.join("shard-0-of-2.safetensors")]);
    assert_user_error(&out, "a run cut into 2", "shard counts differ");
    let out = merge(std::slice::from_ref(&tsv));
    assert_user_error(&out, "not a shard file", "a TSV");
    assert!(
        !refused.exists(),
        "a refused merge wrote {}",
        refused.display()
    );

    // --shard itself
    for bad in ["3/3", "1", "a/3", "0/0"] {
        let out = score(&model, &tsv, &other, &["--shard", bad]);
        assert_user_error(&out, "expected I/N", bad);
    }
}

#[test]
fn shard_slices_are_disjoint_and_cover_the_plan() {
    use headroom::heads::importance::ShardSpec;
    for batches in [0usize, 1, 2, 5, 13, 100] {
        for count in 1..8 {
            let mut next = 0;
            for index in 0..count {
                let r = ShardSpec { index, count }.batches(batches);
                assert_eq!(r.start, next, "{index}/{count} of {batches}");
                next = r.end;
            }
            assert_eq!(next, batches);
        }
    }
}
