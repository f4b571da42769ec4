//! Fine-tuning: every parameter gradient and one clipped AdamW step against transformers 4.57
//! (tests/goldens/make_train_goldens.py), for sequence and token classification.

mod common;
use common::*;
use headroom::kernels::AdamW;
use headroom::model::{Encoded, HeadSpec, Model, TaskHead, TrainConfig};

fn examples(golden: &Golden) -> (Vec<Encoded>, usize) {
    let (shape, ids) = golden.i64("input_ids");
    let tt = golden.i64("token_type_ids").1;
    let am = golden.i64("attention_mask").1;
    let (b, t) = (shape[0], shape[1]);
    let enc = (0..b)
        .map(|i| {
            let n = am[i * t..(i + 1) * t].iter().sum::<i64>() as usize;
            Encoded {
                ids: ids[i * t..i * t + n].iter().map(|&v| v as u32).collect(),
                type_ids: tt[i * t..i * t + n].iter().map(|&v| v as u32).collect(),
            }
        })
        .collect();
    (enc, t)
}

fn check(fixture_name: &str, task: TaskHead, classes: usize) {
    let g = gpu();
    let golden = Golden::open(&format!("{fixture_name}-train.safetensors"));
    let spec = HeadSpec {
        task,
        labels: classes,
        seed: 0,
    };
    let model = Model::load_for_training(g, &fixture(fixture_name), &spec).unwrap();
    let (enc, t) = examples(&golden);
    let refs: Vec<&Encoded> = enc.iter().collect();
    let labels: Vec<i32> = golden.i64("labels").1.iter().map(|&v| v as i32).collect();
    let cfg = TrainConfig {
        adamw: AdamW {
            lr: 1e-2,
            weight_decay: 0.5,
            ..AdamW::default()
        },
        max_grad_norm: 0.5,
        dropout: 0.0,
        seed: 1,
        freeze_embeddings: false,
    };
    let mut tr = model.trainer(g, cfg).unwrap();
    let loss = model
        .compute_gradients(g, &tr, &refs, &labels, false)
        .unwrap();
    let want_loss = golden.f32("loss").1[0] as f64;
    assert!(
        (loss - want_loss).abs() < 1e-5 * (1.0 + want_loss),
        "{fixture_name}: loss {loss} vs {want_loss}"
    );
    let rows: Vec<usize> = golden
        .i64("word_rows")
        .1
        .iter()
        .map(|&v| v as usize)
        .collect();
    let h = model.config.hidden_size;
    let slice = |name: &str, v: Vec<f32>| -> Vec<f32> {
        if name.ends_with("word_embeddings.weight") {
            rows.iter()
                .flat_map(|&r| v[r * h..(r + 1) * h].to_vec())
                .collect()
        } else if name.ends_with("position_embeddings.weight") {
            v[..t * h].to_vec()
        } else {
            v
        }
    };
    let grads = model.hf_gradients(g, &tr);
    let mut checked = 0;
    for gt in &grads {
        let key = format!("grad.{}", gt.name);
        assert!(
            golden.has(&key),
            "{fixture_name}: no golden for {}",
            gt.name
        );
        let got = slice(&gt.name, bytemuck::cast_slice(&gt.data).to_vec());
        let want = golden.f32(&key).1;
        // The key bias's gradient is zero in exact arithmetic (softmax ignores a shift shared
        // by all keys): both sides hold rounding noise there, so the scale has a floor.
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
        let err = max_abs_diff(&got, &want) / scale;
        eprintln!("{fixture_name} {}: {err:.1e}", gt.name);
        assert!(
            err < 2e-4,
            "{fixture_name} {}: max |Δ| / max |grad| = {err:.2e}",
            gt.name
        );
        checked += 1;
    }
    // every golden gradient has a headroom counterpart
    let golden_grads = golden
        .names()
        .iter()
        .filter(|n| n.starts_with("grad."))
        .count();
    assert_eq!(
        checked, golden_grads,
        "{fixture_name}: parameter sets differ"
    );

    // One clipped AdamW step (dropout 0, so the same gradients). Adam's first step is about
    // lr·sign(g), so elements whose gradient is near zero move by a rounding-sensitive amount:
    // the tolerance is 1% of the learning rate; weight decay (0.5·lr·|p|, decayed tensors
    // only) is far above it.
    let stats = model.train_step(g, &mut tr, &refs, &labels, 1e-2).unwrap();
    assert!((stats.loss - want_loss).abs() < 1e-5 * (1.0 + want_loss));
    assert!(stats.grad_norm > 0.5, "the test should exercise clipping");
    let after = model.hf_tensors(g);
    let mut stepped = 0;
    for p in &after {
        let key = format!("after.{}", p.name);
        if !golden.has(&key) {
            continue;
        }
        let got = slice(&p.name, bytemuck::cast_slice(&p.data).to_vec());
        assert_close(
            &format!("{fixture_name} {key}"),
            &got,
            &golden.f32(&key).1,
            1e-4,
            0.0,
        );
        stepped += 1;
    }
    assert!(
        stepped >= 4,
        "{fixture_name}: only {stepped} stepped tensors compared"
    );
}

#[test]
fn sequence_classifier_gradients_and_step_match_transformers() {
    check("tiny-bert", TaskHead::SequenceClassification, 3);
}

#[test]
fn token_classifier_gradients_and_step_match_transformers() {
    check("tiny-bert-tok", TaskHead::TokenClassification, 5);
}

#[test]
fn frozen_embeddings_get_no_gradients_and_do_not_move() {
    let g = gpu();
    let golden = Golden::open("tiny-bert-train.safetensors");
    let spec = HeadSpec {
        task: TaskHead::SequenceClassification,
        labels: 3,
        seed: 0,
    };
    let model = Model::load_for_training(g, &fixture("tiny-bert"), &spec).unwrap();
    let (enc, _) = examples(&golden);
    let refs: Vec<&Encoded> = enc.iter().collect();
    let labels: Vec<i32> = golden.i64("labels").1.iter().map(|&v| v as i32).collect();
    let cfg = TrainConfig {
        adamw: AdamW::default(),
        max_grad_norm: 1.0,
        dropout: 0.1,
        seed: 5,
        freeze_embeddings: true,
    };
    let before = model.hf_tensors(g);
    let mut tr = model.trainer(g, cfg).unwrap();
    let names: Vec<String> = model
        .hf_gradients(g, &tr)
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert!(names.iter().all(|n| !n.contains("embeddings")), "{names:?}");
    for _ in 0..2 {
        model.train_step(g, &mut tr, &refs, &labels, 1e-2).unwrap();
    }
    assert_eq!(tr.step(), 2);
    let after = model.hf_tensors(g);
    for (b, a) in before.iter().zip(&after) {
        let moved = b.data != a.data;
        assert_eq!(moved, !b.name.contains("embeddings"), "{}", b.name);
    }
}
