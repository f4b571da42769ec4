//! The in-batch contrastive objective (issue 14) against PyTorch over transformers 4.57
//! (tests/goldens/make_contrastive_goldens.py): per-anchor losses and the gate gradients of the
//! summed loss, one row per sequence, plain and symmetric, on tiny-bert and the default model.

mod common;

use common::*;
use headroom::model::contrastive::ContrastiveSpec;
use headroom::model::{Encoded, Model};

fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    max_abs_diff(got, want) / scale
}

/// Encodes one side of pairs.tsv alone and checks the ids against the golden's.
fn encode_side(model: &Model, golden: &Golden, side: &str, texts: &[String]) -> Vec<Encoded> {
    let texts: Vec<(String, Option<String>)> = texts.iter().map(|s| (s.clone(), None)).collect();
    let enc = model.tokenizer.encode_all(&texts).unwrap().0;
    let (shape, ids) = golden.i64(&format!("{side}_ids"));
    for (e, ex) in enc.iter().enumerate() {
        let want: Vec<u32> = ids[e * shape[1]..][..ex.ids.len()]
            .iter()
            .map(|&v| v as u32)
            .collect();
        assert_eq!(ex.ids, want, "{side} sentence {e}: token ids");
    }
    enc
}

fn check(name: &str, dir: &std::path::Path) {
    let g = gpu();
    let golden = Golden::open(&format!("{name}-contrastive.safetensors"));
    let model = Model::load(g, dir).unwrap();
    let texts = golden_texts("pairs.tsv");
    let first: Vec<String> = texts.iter().map(|t| t.0.clone()).collect();
    let second: Vec<String> = texts.iter().map(|t| t.1.clone().unwrap()).collect();
    let a = encode_side(&model, &golden, "first", &first);
    let b = encode_side(&model, &golden, "second", &second);
    let (ra, rb): (Vec<&Encoded>, Vec<&Encoded>) = (a.iter().collect(), b.iter().collect());
    let gates = golden.f32("gates").1;
    let rows = golden.f32("loss_rows").1;
    let cols = golden.f32("loss_cols").1;
    for (symmetric, grad) in [(false, "grad_gates"), (true, "grad_gates_sym")] {
        let spec = ContrastiveSpec {
            pooling: headroom::model::Pooling::Mean,
            scale: 20.0,
            symmetric,
            dropout: None,
        };
        let (out, grads) = model
            .contrastive_pass(g, &ra, &rb, &gates, &spec, true)
            .unwrap();
        let grads = grads.unwrap();
        let what = format!("{name} symmetric={symmetric}");
        // per sequence: the anchors' losses, weighted 1/2 each way when symmetric
        let w = if symmetric { 0.5 } else { 1.0 };
        let mut want_loss: Vec<f32> = rows.iter().map(|l| w * l).collect();
        match symmetric {
            true => want_loss.extend(cols.iter().map(|l| w * l)),
            false => want_loss.extend(cols.iter().map(|_| 0.0)),
        }
        let e = rel_err(&grads.loss, &want_loss);
        eprintln!("{what}: loss relative error {e:.2e}");
        assert!(e < 1e-5, "{what}: loss {:?} want {want_loss:?}", grads.loss);
        let pair: Vec<f32> = (0..rows.len())
            .map(|i| want_loss[i] + want_loss[rows.len() + i])
            .collect();
        assert!(rel_err(&out.loss, &pair) < 1e-5, "{what}: pair losses");
        let e = rel_err(&grads.dgates, &golden.f32(grad).1);
        eprintln!("{what}: gate gradient relative error {e:.2e}");
        assert!(e < 1e-4, "{what}: gate gradients off by {e}");
    }
}

#[test]
fn contrastive_gate_gradients_match_pytorch_on_tiny_bert() {
    check("tiny-bert", &fixture("tiny-bert"));
}

#[test]
fn contrastive_gate_gradients_match_pytorch_on_the_default_model() {
    check("minilm", &default_model_dir());
}
