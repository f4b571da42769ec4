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
    let model = Model::load_for_gradients(g, dir).unwrap();
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

#[test]
fn simcse_gate_gradients_match_finite_differences_under_fixed_dropout() {
    // SimCSE's two copies differ only by dropout, which no framework reproduces bit for bit:
    // the same seed replays the same masks, so the loss is a function of the gates alone
    let g = gpu();
    let model = Model::load_for_gradients(g, &fixture("tiny-bert")).unwrap();
    let texts: Vec<(String, Option<String>)> = golden_texts("sentences.tsv")
        .into_iter()
        .map(|t| (t.0, None))
        .collect();
    let enc = model.tokenizer.encode_all(&texts).unwrap().0;
    let refs: Vec<&Encoded> = enc.iter().collect();
    let spec = ContrastiveSpec {
        pooling: headroom::model::Pooling::Mean,
        scale: 5.0,
        symmetric: true,
        dropout: Some(headroom::model::Dropout {
            seed: 3,
            step: 1,
            p: 0.3,
        }),
    };
    let lh = model.config.total_heads();
    let n = 2 * refs.len();
    let gates: Vec<f32> = (0..n * lh).map(|i| 0.6 + 0.05 * (i % 7) as f32).collect();
    let total = |gates: &[f32]| -> f64 {
        let (out, _) = model
            .contrastive_pass(g, &refs, &refs, gates, &spec, false)
            .unwrap();
        out.loss.iter().map(|&l| l as f64).sum()
    };
    let (out, grads) = model
        .contrastive_pass(g, &refs, &refs, &gates, &spec, true)
        .unwrap();
    let grads = grads.unwrap();
    // the copies really differ: a dropout-free pass has a smaller loss
    let plain = ContrastiveSpec {
        dropout: None,
        ..spec
    };
    let (clean, _) = model
        .contrastive_pass(g, &refs, &refs, &gates, &plain, false)
        .unwrap();
    let sum = |v: &[f32]| v.iter().map(|&l| l as f64).sum::<f64>();
    assert!(sum(&clean.loss) < sum(&out.loss), "dropout changed nothing");
    let eps = 1e-2f32;
    let (mut checked, mut largest) = (0, 0f64);
    for i in (0..n * lh).step_by(5) {
        let mut up = gates.clone();
        up[i] += eps;
        let mut down = gates.clone();
        down[i] -= eps;
        let fd = (total(&up) - total(&down)) / (2.0 * eps as f64);
        let got = grads.dgates[i] as f64;
        assert!(
            (got - fd).abs() <= 2e-3 + 2e-2 * fd.abs(),
            "gate {i}: backward {got} but finite differences {fd}"
        );
        checked += 1;
        largest = largest.max(fd.abs());
    }
    // gradients well above the tolerance's floor: the check has something to check
    assert!(
        checked > 5 && largest > 0.05,
        "{checked} gates, largest |fd| {largest}"
    );
}

#[test]
fn score_and_eval_take_the_in_batch_objectives() {
    let tmp = std::env::temp_dir().join(format!("headroom-contrastive-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let m = fixture("tiny-bert");
    let pairs = golden_path("pairs.tsv");
    let sentences = golden_path("sentences.tsv");
    let out = tmp.join("scores");
    let r = headroom(&[
        "score",
        "--model",
        p(&m),
        "--data",
        p(&pairs),
        "--out",
        p(&out),
        "--objective",
        "contrastive",
        "--symmetric",
        "--batch-size",
        "3",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["objective"], "contrastive");
    assert_eq!(report["examples"], 3);
    assert_eq!(report["batches"], 1);
    assert_eq!(report["in_batch"]["symmetric"], true);
    assert!(report["in_batch"]["per_example_note"]
        .as_str()
        .unwrap()
        .contains("per batch"));
    let importance = report["importance"].as_array().unwrap();
    assert!(importance.iter().any(|v| v.as_f64().unwrap() > 0.0));
    // simcse over single sentences; eval's in-batch metrics
    let r = headroom(&[
        "score",
        "--model",
        p(&m),
        "--data",
        p(&sentences),
        "--out",
        p(&tmp.join("simcse")),
        "--objective",
        "simcse",
        "--batch-size",
        "4",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let report = read_json(&tmp.join("simcse/report.json"));
    // six sentences in batches of four: the lone last pair is not left alone
    assert_eq!(
        (report["examples"].as_u64(), report["batches"].as_u64()),
        (Some(6), Some(2))
    );
    let r = headroom(&[
        "eval",
        "--model",
        p(&m),
        "--data",
        p(&pairs),
        "--objective",
        "contrastive",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let top1 = v["in_batch_top1"].as_f64().unwrap();
    assert!(
        (0.0..=1.0).contains(&top1) && v["loss"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    // bad input: one line, exit 2
    let bad = |args: &[&str], needle: &str, what: &str| {
        let mut all = vec!["eval", "--model", p(&m)];
        all.extend(args);
        assert_user_error(&headroom(&all), needle, what);
    };
    bad(
        &["--data", p(&sentences), "--objective", "contrastive"],
        "sentence2",
        "no pairs",
    );
    bad(
        &[
            "--data",
            p(&pairs),
            "--objective",
            "contrastive",
            "--batch-size",
            "1",
        ],
        "at least 2 pairs",
        "a batch of one pair",
    );
    bad(
        &[
            "--data",
            p(&sentences),
            "--objective",
            "simcse",
            "--dropout",
            "0",
        ],
        "dropout",
        "simcse without dropout",
    );
    bad(
        &[
            "--data",
            p(&pairs),
            "--objective",
            "contrastive",
            "--scale",
            "0",
        ],
        "--scale",
        "a zero scale",
    );
    std::fs::remove_dir_all(&tmp).ok();
}
