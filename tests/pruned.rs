//! Head skipping and physical pruning: the mask-driven skip path and checkpoints written by
//! `headroom export` (pruned twice, with a layer left without heads) against the dense masked
//! run; gate gradients of a pruned checkpoint; the export's bad input.

mod common;
use common::*;
use headroom::heads::export::{export, ExportArgs};
use headroom::model::{Encoded, HeadSkip, Model};
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("headroom-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn encode(model: &Model) -> Vec<Encoded> {
    model
        .tokenizer
        .encode_all(&golden_texts("sentences.tsv"))
        .unwrap()
        .0
}

/// Logits (or, for a bare encoder, the last hidden states) of one padded batch.
fn outputs(model: &Model, enc: &[Encoded], gates: &[f32], skip: HeadSkip) -> Vec<f32> {
    let refs: Vec<&Encoded> = enc.iter().collect();
    let out = model
        .forward_batch_with(gpu(), &refs, gates, true, skip)
        .unwrap();
    out.logits.unwrap_or_else(|| out.hidden.unwrap())
}

/// A seeded 0/1 mask [L·H] keeping `keep` heads per layer (at random), with the listed layers
/// emptied.
fn mask(nl: usize, nh: usize, keep: usize, empty: &[usize], seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut m = vec![0f32; nl * nh];
    for l in 0..nl {
        if empty.contains(&l) {
            continue;
        }
        let mut order: Vec<usize> = (0..nh).collect();
        for i in (1..nh).rev() {
            order.swap(i, rng.below(i as u32 + 1) as usize);
        }
        for &h in &order[..keep] {
            m[l * nh + h] = 1.0;
        }
    }
    m
}

fn broadcast(m: &[f32], b: usize) -> Vec<f32> {
    (0..b).flat_map(|_| m.iter().copied()).collect()
}

fn write_mask(path: &Path, m: &[f32], nh: usize) {
    let rows: Vec<Vec<f32>> = m.chunks(nh).map(|r| r.to_vec()).collect();
    std::fs::write(path, serde_json::to_string(&rows).unwrap()).unwrap();
}

#[test]
fn skipping_gated_out_heads_matches_the_dense_run() {
    for dir in [default_model_dir(), fixture("tiny-bert")] {
        let model = Model::load(gpu(), &dir).unwrap();
        let c = &model.config;
        let (nl, nh) = (c.num_hidden_layers, c.num_attention_heads);
        let enc = encode(&model);
        let b = enc.len();
        let mut rng = Rng::new(5);
        let m = mask(nl, nh, nh / 2, &[nl - 1], 3);
        // per-example gates: fractional, some heads 0 in a few examples only, some in all
        let mut per_example = broadcast(&m, b);
        for (i, v) in per_example.iter_mut().enumerate() {
            if *v != 0.0 {
                *v = if (i / (nl * nh)) % 3 == 0 && i % 2 == 0 {
                    0.0
                } else {
                    0.25 + rng.uniform()
                };
            }
        }
        for (what, gates) in [
            ("all heads", vec![1f32; b * nl * nh]),
            ("half the heads, last layer empty", broadcast(&m, b)),
            ("per-example gates", per_example),
            ("no heads", vec![0f32; b * nl * nh]),
        ] {
            let dense = outputs(&model, &enc, &gates, HeadSkip::Dense);
            let skip = outputs(&model, &enc, &gates, HeadSkip::Skip);
            let e = max_abs_diff(&skip, &dense);
            eprintln!("{}: {what}: skip vs dense {e:.2e}", dir.display());
            assert!(
                e <= 1e-5,
                "{}: {what}: skip vs dense differ by {e}",
                dir.display()
            );
        }
    }
}

#[test]
fn exported_checkpoints_match_the_masked_run_and_prune_again() {
    let tmp = temp_dir("export");
    let src = default_model_dir();
    let model = Model::load(gpu(), &src).unwrap();
    let (nl, nh) = (
        model.config.num_hidden_layers,
        model.config.num_attention_heads,
    );
    let enc = encode(&model);
    let b = enc.len();
    // first export: 5 heads per layer, layer 2 emptied
    let m1 = mask(nl, nh, 5, &[2], 7);
    let out1 = tmp.join("pruned1");
    let r = export(&ExportArgs {
        model: src.clone(),
        mask: m1.clone(),
        mask_path: tmp.join("m1.json"),
        out: out1.clone(),
        force: false,
    })
    .unwrap();
    assert_eq!(r.heads_left, 5 * (nl - 1));
    assert_eq!(r.empty_layers, vec![2]);
    let p1 = Model::load(gpu(), &out1).unwrap();
    assert_eq!(p1.present_mask(), m1);
    let want = outputs(&model, &enc, &broadcast(&m1, b), HeadSkip::Dense);
    for skip in [HeadSkip::Dense, HeadSkip::Skip] {
        let got = outputs(&p1, &enc, &vec![1.0; b * nl * nh], skip);
        let e = max_abs_diff(&got, &want);
        eprintln!("export 1 ({skip:?}) vs masked dense run: {e:.2e}");
        assert!(
            e <= 1e-5,
            "export 1 ({skip:?}) differs from the masked run by {e}"
        );
    }
    // second export from the pruned checkpoint, in original indices: prune the first kept head
    // of every layer, and keep (in the mask) some heads that are already gone
    let mut m2 = vec![1f32; nl * nh];
    for l in 0..nl {
        if let Some(h) = (0..nh).find(|&h| m1[l * nh + h] == 1.0) {
            m2[l * nh + h] = 0.0;
        }
    }
    let out2 = tmp.join("pruned2");
    let r = export(&ExportArgs {
        model: out1.clone(),
        mask: m2.clone(),
        mask_path: tmp.join("m2.json"),
        out: out2.clone(),
        force: false,
    })
    .unwrap();
    assert_eq!(r.newly_pruned, nl - 1);
    let both: Vec<f32> = m1.iter().zip(&m2).map(|(a, b)| a * b).collect();
    let cfg: serde_json::Value = read_json(&out2.join("config.json"));
    for l in 0..nl {
        let want: Vec<u64> = (0..nh as u64)
            .filter(|&h| both[l * nh + h as usize] == 0.0)
            .collect();
        let got: Vec<u64> = cfg["pruned_heads"][l.to_string()]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(got, want, "pruned_heads of layer {l} after pruning twice");
    }
    let p2 = Model::load(gpu(), &out2).unwrap();
    assert_eq!(p2.present_mask(), both);
    let want = outputs(&model, &enc, &broadcast(&both, b), HeadSkip::Dense);
    let got = outputs(&p2, &enc, &vec![1.0; b * nl * nh], HeadSkip::Skip);
    let e = max_abs_diff(&got, &want);
    eprintln!("export 2 vs masked dense run: {e:.2e}");
    assert!(e <= 1e-5, "export 2 differs from the masked run by {e}");
    // a mask on the pruned checkpoint gates its remaining heads as on the original
    let mut m3 = both.clone();
    let h = (0..nl * nh).find(|&i| m3[i] == 1.0).unwrap();
    m3[h] = 0.0;
    let want = outputs(&model, &enc, &broadcast(&m3, b), HeadSkip::Dense);
    let got = outputs(&p2, &enc, &broadcast(&m3, b), HeadSkip::Skip);
    assert!(
        max_abs_diff(&got, &want) <= 1e-5,
        "a mask on the pruned checkpoint"
    );
    // the safetensors carry the kept heads only (a [0, H] tensor for the empty layer)
    let w = headroom::model::Weights::open(
        &out2.join("model.safetensors"),
        &headroom::model::family::BERT,
    )
    .unwrap();
    let d = model.config.head_dim();
    let h = model.config.hidden_size;
    for l in 0..nl {
        let kept = both[l * nh..(l + 1) * nh]
            .iter()
            .filter(|&&v| v == 1.0)
            .count();
        let q = w.shape(&format!("encoder.layer.{l}.attention.self.query.weight"));
        assert_eq!(q, Some(vec![kept * d, h]));
        let o = w.shape(&format!("encoder.layer.{l}.attention.output.dense.weight"));
        assert_eq!(o, Some(vec![h, kept * d]));
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn gate_gradients_of_a_pruned_checkpoint_match_the_masked_original() {
    let tmp = temp_dir("export-grads");
    let src = fixture("tiny-bert");
    let model = Model::load_for_gradients(gpu(), &src).unwrap();
    let (nl, nh) = (
        model.config.num_hidden_layers,
        model.config.num_attention_heads,
    );
    let m = vec![1.0, 0.0, 0.0, 0.0]; // layer 0 keeps head 0, layer 1 keeps none
    assert_eq!(m.len(), nl * nh);
    let out = tmp.join("pruned");
    export(&ExportArgs {
        model: src.clone(),
        mask: m.clone(),
        mask_path: tmp.join("m.json"),
        out: out.clone(),
        force: false,
    })
    .unwrap();
    let pruned = Model::load_for_gradients(gpu(), &out).unwrap();
    let enc = encode(&model);
    let refs: Vec<&Encoded> = enc.iter().collect();
    let labels: Vec<i32> = (0..enc.len() as i32).map(|i| i % 3).collect();
    let b = enc.len();
    let want = model
        .gate_gradients(gpu(), &refs, &labels, &broadcast(&m, b))
        .unwrap();
    let got = pruned
        .gate_gradients(gpu(), &refs, &labels, &vec![1.0; b * nl * nh])
        .unwrap();
    assert_close("loss", &got.loss, &want.loss, 1e-5, 1e-5);
    for e in 0..b {
        for (i, &kept) in m.iter().enumerate().take(nl * nh) {
            let (g, w) = (got.dgates[e * nl * nh + i], want.dgates[e * nl * nh + i]);
            if kept == 1.0 {
                assert!(
                    (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "dgate {i} of example {e}: {g} vs {w}"
                );
            } else {
                assert_eq!(g, 0.0, "a removed head's gradient reads 0");
            }
        }
    }
    // the pruned model writes itself back with the same shapes
    let tensors = pruned.hf_tensors(gpu());
    let w = headroom::model::Weights::open(
        &out.join("model.safetensors"),
        &headroom::model::family::BERT,
    )
    .unwrap();
    for t in &tensors {
        assert_eq!(Some(t.shape.clone()), w.shape(&t.name), "{}", t.name);
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn export_refuses_bad_masks_and_existing_targets() {
    let tmp = temp_dir("export-cli");
    let model = fixture("tiny-bert");
    let (m, o) = (tmp.join("m.json"), tmp.join("out"));
    let (ms, os, md) = (
        m.to_str().unwrap(),
        o.to_str().unwrap(),
        model.to_str().unwrap(),
    );
    let export = |extra: &[&str]| {
        let mut a = vec!["export", "--model", md, "--mask", ms, "--out", os];
        a.extend_from_slice(extra);
        headroom(&a)
    };
    write_mask(&m, &[1.0, 1.0, 1.0], 3);
    assert_user_error(&export(&[]), "has shape 1×3", "a mask of the wrong shape");
    write_mask(&m, &[1.0, 0.5, 1.0, 1.0], 2);
    assert_user_error(
        &export(&[]),
        "export needs 0 (prune) or 1 (keep)",
        "a fractional mask",
    );
    assert!(!o.exists(), "nothing written after a refusal");
    write_mask(&m, &[0.0; 4], 2);
    let r = export(&[]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("prunes every head"));
    assert_user_error(
        &export(&[]),
        "already exists (pass --force",
        "an existing target",
    );
    write_mask(&m, &[1.0, 0.0, 1.0, 1.0], 2);
    let r = export(&["--force"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let cfg = std::fs::read_to_string(o.join("config.json")).unwrap();
    assert!(cfg.contains("\"pruned_heads\""), "{cfg}");
    // the input directory is never the output, even with --force
    let r = headroom(&[
        "export", "--model", md, "--mask", ms, "--out", md, "--force",
    ]);
    assert_user_error(&r, "refusing to overwrite", "exporting onto the input");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary directories left: {leftovers:?}"
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn bench_reports_every_fraction_and_mode_with_ideal_speedups() {
    let r = headroom(&[
        "bench", "--shape", "minilm", "--batch", "2", "--seq", "9", "--pruned", "0,0.5,1",
        "--iters", "1",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 9, "3 fractions × 3 modes");
    for row in rows {
        let f = row["fraction"].as_f64().unwrap();
        let kept = row["heads_kept"].as_u64().unwrap();
        assert_eq!(kept, (72.0 * (1.0 - f)).round() as u64);
        for part in ["encoder", "attention"] {
            let t = &row[part];
            assert!(t["median_ms"].as_f64().unwrap() > 0.0, "{row}");
            assert!(t["speedup"].as_f64().unwrap() > 0.0, "{row}");
        }
        let ideal = row["attention"]["ideal_speedup"].as_f64();
        match f {
            0.0 => assert_eq!(ideal, Some(1.0)),
            0.5 => assert!((ideal.unwrap() - 2.0).abs() < 1e-9, "{row}"),
            _ => assert_eq!(
                ideal, None,
                "no heads left: an unbounded ideal is written as null"
            ),
        }
        let enc_ideal = row["encoder"]["ideal_speedup"].as_f64().unwrap();
        assert!((1.0..2.0).contains(&enc_ideal), "{row}");
        // dense mode executes every projection; skip and compact only the kept heads'
        let gflop = row["attention"]["gflop"].as_f64().unwrap();
        if f > 0.0 && row["mode"] != "dense" {
            let dense = rows
                .iter()
                .find(|r| r["fraction"] == row["fraction"] && r["mode"] == "dense")
                .unwrap();
            assert!(gflop < dense["attention"]["gflop"].as_f64().unwrap());
        }
    }
    let bad = headroom(&["bench", "--shape", "minilm", "--pruned", "1.5"]);
    assert_user_error(&bad, "outside [0, 1]", "a fraction over 1");
    let bad = headroom(&["bench", "--shape", "tiny"]);
    assert_user_error(&bad, "unknown --shape", "an unknown shape");
}

#[test]
fn a_pruned_checkpoint_trains_and_saves_with_its_head_counts() {
    use headroom::kernels::AdamW;
    use headroom::model::{HeadSpec, TaskHead, TrainConfig};
    let tmp = temp_dir("export-train");
    let pruned = tmp.join("pruned");
    export(&ExportArgs {
        model: fixture("tiny-bert"),
        mask: vec![0.0, 1.0, 0.0, 0.0], // layer 0 keeps head 1, layer 1 none
        mask_path: tmp.join("m.json"),
        out: pruned.clone(),
        force: false,
    })
    .unwrap();
    let spec = HeadSpec {
        task: TaskHead::SequenceClassification,
        labels: 3,
        seed: 0,
    };
    let model = Model::load_for_training(gpu(), &pruned, &spec).unwrap();
    let enc = encode(&model);
    let refs: Vec<&Encoded> = enc.iter().collect();
    let labels: Vec<i32> = (0..enc.len() as i32).map(|i| i % 3).collect();
    let ones = vec![1f32; enc.len() * 4];
    let before = outputs(&model, &enc, &ones, HeadSkip::Skip);
    let cfg = TrainConfig {
        adamw: AdamW {
            lr: 1e-3,
            ..Default::default()
        },
        max_grad_norm: 1.0,
        dropout: 0.1,
        seed: 1,
        freeze_embeddings: false,
    };
    let mut tr = model.trainer(gpu(), cfg).unwrap();
    for _ in 0..3 {
        let s = model
            .train_step(gpu(), &mut tr, &refs, &labels, 1e-3)
            .unwrap();
        assert!(s.loss.is_finite());
    }
    let after = outputs(&model, &enc, &ones, HeadSkip::Skip);
    assert!(
        max_abs_diff(&before, &after) > 1e-4,
        "three steps changed nothing"
    );
    let saved = tmp.join("saved");
    std::fs::create_dir_all(&saved).unwrap();
    let names: Vec<String> = (0..3).map(|i| format!("c{i}")).collect();
    model.save_pretrained(gpu(), &saved, &names).unwrap();
    let cfg: serde_json::Value = read_json(&saved.join("config.json"));
    assert_eq!(
        cfg["pruned_heads"],
        serde_json::json!({"0": [0], "1": [0, 1]})
    );
    let reloaded = Model::load(gpu(), &saved).unwrap();
    assert_eq!(reloaded.present_mask(), vec![0.0, 1.0, 0.0, 0.0]);
    let again = outputs(&reloaded, &enc, &ones, HeadSkip::Skip);
    assert!(
        max_abs_diff(&again, &after) <= 1e-6,
        "the saved checkpoint reloads as trained"
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}
