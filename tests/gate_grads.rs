//! Head-gate gradients (Michel et al.'s importance) against transformers 4.57 `head_mask.grad`
//! goldens (tests/goldens/make_grad_goldens.py), per example and in batches, at gates of 1 and
//! at fractional gates with exact zeros.

mod common;
use common::*;
use headroom::model::{Encoded, Model};

/// max |got - want| relative to the largest |want|.
fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    max_abs_diff(got, want) / scale
}

fn check(model: &Model, golden: &Golden) {
    let g = gpu();
    let texts = golden_texts("sentences.tsv");
    let enc: Vec<Encoded> = model.tokenizer.encode_all(&texts).unwrap().0;
    let refs: Vec<&Encoded> = enc.iter().collect();
    let labels: Vec<i32> = golden.i64("labels").1.iter().map(|&v| v as i32).collect();
    let lh = model.config.total_heads();
    let n = enc.len();
    let what = |s: &str| format!("{} {s}", golden.path.display());

    // the whole padded batch at gates of 1
    let out = model
        .gate_gradients(g, &refs, &labels, &vec![1.0; n * lh])
        .unwrap();
    assert_close(&what("loss"), &out.loss, &golden.f32("loss").1, 1e-4, 1e-4);
    let want = golden.f32("grad_batched").1;
    let e = rel_err(&out.dgates, &want);
    eprintln!("{}: relative error {e:.2e}", what("grad_batched"));
    assert!(
        e <= 1e-4,
        "{}: max |Δ| / max |grad| = {e}",
        what("grad_batched")
    );

    // bertology's attention entropy: mean over all real query tokens
    let (nl, nh) = (
        model.config.num_hidden_layers,
        model.config.num_attention_heads,
    );
    let tokens: usize = out.lengths.iter().sum();
    let mut ent = vec![0f32; nl * nh];
    for row in out.entropy_sum.chunks(lh) {
        for (a, v) in ent.iter_mut().zip(row) {
            *a += v / tokens as f32;
        }
    }
    let e = rel_err(&ent, &golden.f32("entropy").1);
    eprintln!("{}: relative error {e:.2e}", what("entropy"));
    assert!(e <= 1e-4, "{}: max |Δ| / max = {e}", what("entropy"));

    // one example at a time (no padding)
    let mut single = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        single.extend(
            model
                .gate_gradients(g, &[*r], &labels[i..i + 1], &vec![1.0; lh])
                .unwrap()
                .dgates,
        );
    }
    let e = rel_err(&single, &golden.f32("grad_example").1);
    eprintln!("{}: relative error {e:.2e}", what("grad_example"));
    assert!(
        e <= 1e-4,
        "{}: max |Δ| / max |grad| = {e}",
        what("grad_example")
    );

    // importance: mean over examples of |grad|
    let mut imp = vec![0f32; lh];
    for row in single.chunks(lh) {
        for (a, v) in imp.iter_mut().zip(row) {
            *a += v.abs() / n as f32;
        }
    }
    let e = rel_err(&imp, &golden.f32("importance").1);
    assert!(e <= 1e-4, "{}: max |Δ| / max = {e}", what("importance"));

    // fractional gates with exact zeros (skipped heads still get their exact gradient)
    let gates = golden.f32("gates").1;
    let out = model.gate_gradients(g, &refs, &labels, &gates).unwrap();
    let e = rel_err(&out.dgates, &golden.f32("grad_gates").1);
    eprintln!("{}: relative error {e:.2e}", what("grad_gates"));
    assert!(
        e <= 1e-4,
        "{}: max |Δ| / max |grad| = {e}",
        what("grad_gates")
    );
}

#[test]
fn tiny_model_gate_gradients_match_transformers() {
    let model = Model::load_for_gradients(gpu(), &fixture("tiny-bert")).unwrap();
    check(&model, &Golden::open("tiny-bert-grad.safetensors"));
}

#[test]
fn default_model_gate_gradients_match_transformers() {
    let dir = common::minilm::minilm_with_classifier();
    let model = Model::load_for_gradients(gpu(), dir.path()).unwrap();
    check(&model, &Golden::open("minilm-grad.safetensors"));
}
