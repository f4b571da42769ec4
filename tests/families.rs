//! Model families beside BERT (issue 12) against transformers 4.57 goldens
//! (tests/goldens/make_family_goldens.py): each tiny random checkpoint's logits and hidden
//! states with and without head masks, its per-example gate gradients, and one training
//! step's parameter gradients.

mod common;
use common::*;
use headroom::model::{run_forward, Encoded, ForwardOptions, Gates, Model};

/// max |got − want| relative to the largest |want|, or to `floor` if that is larger.
fn rel_err(got: &[f32], want: &[f32], floor: f32) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(floor, |m, v| m.max(v.abs()));
    max_abs_diff(got, want) / scale
}

fn assert_rel(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_rel_floor(what, got, want, tol, 0.0)
}

fn assert_rel_floor(what: &str, got: &[f32], want: &[f32], tol: f32, floor: f32) {
    let e = rel_err(got, want, floor);
    eprintln!("{what}: relative error {e:.2e}");
    assert!(e <= tol, "{what}: max |Δ| / max |want| = {e}");
}

/// The golden's sentences (sentences.tsv; for MPNet, long-sentences.tsv, whose seventh is
/// longer than its relative-position range), encoded by the fixture's tokenizer (ids checked
/// against the golden's).
fn encode(model: &Model, golden: &Golden) -> Vec<Encoded> {
    let file = match golden.i64("input_ids").0[0] {
        6 => "sentences.tsv",
        _ => "long-sentences.tsv",
    };
    let texts = golden_texts(file);
    let enc: Vec<Encoded> = model.tokenizer.encode_all(&texts).unwrap().0;
    let (shape, ids) = golden.i64("input_ids");
    let t = shape[1];
    for (e, ex) in enc.iter().enumerate() {
        let want: Vec<u32> = ids[e * t..e * t + ex.ids.len()]
            .iter()
            .map(|&v| v as u32)
            .collect();
        assert_eq!(ex.ids, want, "token ids of sentence {e}");
    }
    enc
}

/// The real tokens' rows of a golden [N, T, H] tensor, example after example.
fn real_rows(golden: &[f32], enc: &[Encoded], t: usize, h: usize) -> Vec<f32> {
    let mut v = Vec::new();
    for (e, ex) in enc.iter().enumerate() {
        v.extend_from_slice(&golden[e * t * h..(e * t + ex.ids.len()) * h]);
    }
    v
}

/// Per-application gate gradients [N, L, H] as transformers computes them: for shared layers
/// (ALBERT) it gates every application of a group with the group's first row, whose gradient
/// is then the sum over the group's applications (and the other rows' is 0).
fn as_transformers_gate_grads(model: &Model, dgates: &[f32]) -> Vec<f32> {
    let c = &model.config;
    let (nl, nh) = (c.num_hidden_layers, c.num_attention_heads);
    let mut out = vec![0f32; dgates.len()];
    for (e, ex) in dgates.chunks(nl * nh).enumerate() {
        for l in 0..nl {
            let first = (0..=l)
                .find(|&a| c.stored_layer(a) == c.stored_layer(l))
                .unwrap();
            for h in 0..nh {
                out[(e * nl + first) * nh + h] += ex[l * nh + h];
            }
        }
    }
    out
}

fn check_family(name: &str) {
    let g = gpu();
    let golden = Golden::open(&format!("tiny-{name}.safetensors"));
    let model = Model::load_for_gradients(g, &fixture(&format!("tiny-{name}"))).unwrap();
    let enc = encode(&model, &golden);
    let what = |s: &str| format!("{name} {s}");
    let (n, lh) = (enc.len(), model.config.total_heads());
    let h = model.config.hidden_size;
    let t = golden.i64("input_ids").0[1];

    // forward: every gate at 1, one [L, H] mask, per-example gates
    let hidden = ForwardOptions {
        hidden: true,
        ..ForwardOptions::default()
    };
    let gates_all = golden.f32("gates").1;
    for (gates, suffix) in [
        (Gates::Ones, ""),
        (Gates::Broadcast(golden.f32("head_mask").1), "_hm"),
        (Gates::PerExample(gates_all.clone()), "_gates"),
    ] {
        let r = run_forward(g, &model, &enc, &gates, &hidden).unwrap();
        let logits = r.logits.unwrap();
        assert_rel(
            &what(&format!("logits{suffix}")),
            &logits,
            &golden.f32(&format!("logits{suffix}")).1,
            1e-4,
        );
        let key = format!("last_hidden_state{suffix}");
        if golden.has(&key) {
            let got = real_rows(&r.hidden.unwrap(), &enc, r.seq, h);
            let want = real_rows(&golden.f32(&key).1, &enc, t, h);
            assert_rel(&what(&key), &got, &want, 1e-4);
        }
    }

    // per-example gate gradients of each example's loss, at fractional gates
    let refs: Vec<&Encoded> = enc.iter().collect();
    let labels: Vec<i32> = golden.i64("labels").1.iter().map(|&v| v as i32).collect();
    let out = model.gate_gradients(g, &refs, &labels, &gates_all).unwrap();
    assert_close(&what("loss"), &out.loss, &golden.f32("loss").1, 1e-4, 1e-4);
    assert_eq!(out.dgates.len(), n * lh);
    assert_rel(
        &what("grad_gates"),
        &as_transformers_gate_grads(&model, &out.dgates),
        &golden.f32("grad_gates").1,
        1e-4,
    );

    // one training step's gradients (no dropout) under their transformers names
    let spec = headroom::model::HeadSpec {
        task: model.task,
        labels: model.num_labels,
        seed: 0,
    };
    let trainable = Model::load_for_training(g, &fixture(&format!("tiny-{name}")), &spec).unwrap();
    let tr = trainable
        .trainer(
            g,
            headroom::model::TrainConfig {
                adamw: headroom::model::AdamW::default(),
                max_grad_norm: 1.0,
                dropout: 0.0,
                seed: 0,
                freeze_embeddings: false,
            },
        )
        .unwrap();
    trainable
        .compute_gradients(g, &tr, &refs, &labels, false)
        .unwrap();
    let grads = trainable.hf_gradients(g, &tr);
    let wanted: Vec<String> = golden
        .names()
        .into_iter()
        .filter(|k| k.starts_with("grad."))
        .collect();
    assert_eq!(grads.len(), wanted.len(), "one gradient per parameter");
    for t in &grads {
        let got: Vec<f32> = t
            .data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let key = format!("grad.{}", t.name);
        assert!(golden.has(&key), "{key} is not a transformers parameter");
        // the key bias's gradient is zero in exact arithmetic (softmax ignores a shift shared
        // by all keys): both sides hold rounding noise there, so the scale has a floor
        assert_rel_floor(&what(&key), &got, &golden.f32(&key).1, 1e-4, 1e-3);
    }
}

/// Physical pruning by the golden's [L, H] mask: the exported checkpoint (kept heads' Q/K/V
/// rows and output columns, `pruned_heads`) runs like the masked original.
fn check_export(name: &str) {
    let g = gpu();
    let golden = Golden::open(&format!("tiny-{name}.safetensors"));
    let src = fixture(&format!("tiny-{name}"));
    let model = Model::load(g, &src).unwrap();
    let enc = encode(&model, &golden);
    let mask = golden.f32("head_mask").1;
    let dir = tempdir::TempDir::new(&format!("export-{name}"));
    let out = dir.path().join("pruned");
    let r = headroom::heads::export::export(&headroom::heads::export::ExportArgs {
        model: src,
        mask: mask.clone(),
        mask_path: dir.path().join("mask.json"),
        out: out.clone(),
        force: false,
    })
    .unwrap();
    // heads as stored: a shared layer's (ALBERT's) once for all its applications
    let removed = mask.iter().filter(|&&v| v == 0.0).count();
    let c = &model.config;
    let per = c.num_hidden_layers / c.stored_layers;
    assert_eq!(r.heads_left, (mask.len() - removed) / per);
    let pruned = Model::load(g, &out).unwrap();
    let opts = ForwardOptions::default();
    let want = run_forward(g, &model, &enc, &Gates::Broadcast(mask), &opts).unwrap();
    let got = run_forward(g, &pruned, &enc, &Gates::Ones, &opts).unwrap();
    assert_rel(
        &format!("{name} exported logits"),
        &got.logits.unwrap(),
        &want.logits.unwrap(),
        1e-5,
    );
}

#[test]
fn distilbert_matches_transformers() {
    check_family("distilbert");
    check_export("distilbert");
}

#[test]
fn roberta_matches_transformers() {
    check_family("roberta");
    check_export("roberta");
}

#[test]
fn electra_matches_transformers() {
    check_family("electra");
    check_export("electra");
}

#[test]
fn albert_matches_transformers() {
    check_family("albert");
    check_export("albert");
    // a mask that differs across the applications of one shared layer cannot be exported
    let dir = tempdir::TempDir::new("export-albert-uneven");
    let mut mask = Golden::open("tiny-albert.safetensors").f32("head_mask").1;
    mask[3] = 1.0 - mask[3]; // layer 1, head 0: the second application of group 0
    let err = headroom::heads::export::export(&headroom::heads::export::ExportArgs {
        model: fixture("tiny-albert"),
        mask,
        mask_path: dir.path().join("mask.json"),
        out: dir.path().join("pruned"),
        force: false,
    })
    .expect_err("an uneven mask is refused")
    .to_string();
    assert!(
        err.contains("layers 0 and 1 apply one shared layer (group 0)"),
        "{err}"
    );
    assert!(!dir.path().join("pruned").exists());
}

#[test]
fn mpnet_matches_transformers() {
    check_family("mpnet");
    check_export("mpnet");
}

#[test]
fn xlm_roberta_matches_transformers() {
    check_family("xlm-roberta");
    check_export("xlm-roberta");
}

/// The commands that read a classifier run on every family's checkpoint.
#[test]
fn commands_run_on_each_family() {
    for name in [
        "distilbert",
        "roberta",
        "xlm-roberta",
        "electra",
        "albert",
        "mpnet",
    ] {
        let dir = tempdir::TempDir::new(&format!("commands-{name}"));
        let model = fixture(&format!("tiny-{name}"));
        let mut tsv = String::from("sentence\tlabel\n");
        for ((t, _), l) in golden_texts("sentences.tsv").iter().zip([0, 1, 2, 2, 1, 0]) {
            tsv.push_str(&format!("{t}\t{l}\n"));
        }
        let data = dir.path().join("data.tsv");
        std::fs::write(&data, tsv).unwrap();
        let ok = |args: &[&str]| {
            let r = headroom(args);
            assert!(
                r.status.success(),
                "{name}: {args:?}: {}",
                String::from_utf8_lossy(&r.stderr)
            );
            r
        };
        let r = ok(&["eval", "--model", p(&model), "--data", p(&data)]);
        let e: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert!(e["accuracy"].as_f64().is_some(), "{e}");
        let score = dir.path().join("score");
        ok(&[
            "score",
            "--model",
            p(&model),
            "--data",
            p(&data),
            "--out",
            p(&score),
        ]);
        assert!(score.join("head_importance.npy").is_file());
        let prune = dir.path().join("prune");
        let exported = dir.path().join("exported");
        ok(&[
            "prune",
            "--model",
            p(&model),
            "--score-data",
            p(&data),
            "--eval-data",
            p(&data),
            "--out",
            p(&prune),
            "--export",
            p(&exported),
        ]);
        let c = read_json(&prune.join("curve.json"));
        let chosen = &c["curve"]["points"][c["chosen"].as_u64().unwrap() as usize];
        if name == "albert" {
            // every point prunes a group's head from both its applications, and more than
            // one point prunes something (the export above needs the tie)
            let points = c["curve"]["points"].as_array().unwrap();
            assert!(points.len() > 2, "{c}");
            for pt in points {
                let m = pt["mask"].as_array().unwrap();
                assert_eq!((&m[0], &m[2]), (&m[1], &m[3]), "tied within groups: {pt}");
            }
        }
        let r = ok(&["eval", "--model", p(&exported), "--data", p(&data)]);
        let e: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(
            e["accuracy"], chosen["metric"],
            "the export runs as its mask did"
        );
        let roles = dir.path().join("roles");
        ok(&[
            "roles",
            "--model",
            p(&model),
            "--data",
            p(&data),
            "--out",
            p(&roles),
        ]);
        assert!(roles.join("roles.json").is_file());
        let tuned = dir.path().join("tuned");
        ok(&[
            "finetune",
            "--model",
            p(&model),
            "--task",
            "seq-cls",
            "--train",
            p(&data),
            "--dev",
            p(&data),
            "--out",
            p(&tuned),
            "--epochs",
            "1",
            "--batch-size",
            "3",
        ]);
        let cfg = read_json(&tuned.join("config.json"));
        let class = read_json(&model.join("config.json"))["architectures"][0].clone();
        assert_eq!(cfg["architectures"][0], class);
        assert_eq!(cfg["model_type"], name);
        ok(&["eval", "--model", p(&tuned), "--data", p(&data)]);
    }
}

/// A pair's segments: the tokenizer's token types for BERT's layout, and numbered from the
/// sequence ids where the tokenizer gives none (RoBERTa's `<s> A </s></s> B </s>`), so that
/// roles find each segment's delimiters and blocks.
#[test]
fn pairs_have_two_segments_in_every_family() {
    let g = gpu();
    let pair = vec![(
        "The weather was fine.".to_string(),
        Some("How long?".to_string()),
    )];
    for name in [
        "distilbert",
        "roberta",
        "xlm-roberta",
        "electra",
        "albert",
        "mpnet",
    ] {
        let model = Model::load(g, &fixture(&format!("tiny-{name}"))).unwrap();
        let e = &model.tokenizer.encode_all(&pair).unwrap().0[0];
        let t = &e.type_ids;
        let first_b = t.iter().position(|&s| s == 1).expect("a second segment");
        assert!(t[..first_b].iter().all(|&s| s == 0), "{name}: {t:?}");
        assert!(t[first_b..].iter().all(|&s| s == 1), "{name}: {t:?}");
        // the second segment is "How long?" with its delimiters ([SEP]; or </s> on each side)
        let alone = vec![("How long?".to_string(), None)];
        let content = model.tokenizer.encode_all(&alone).unwrap().0[0].ids.len() - 2;
        let second = t.len() - first_b;
        assert!(
            second == content + 1 || second == content + 2,
            "{name}: {t:?}"
        );
        // head-role analysis sees the tokenizer's delimiters: [CLS] A [SEP] B [SEP], or
        // <s> A </s></s> B </s> with both middle </s> closing
        let prep = headroom::analysis::roles::prepare_texts(&model, &pair).unwrap();
        let info = &prep.tokens[0];
        let cls: Vec<usize> = (0..info.len())
            .filter(|&j| info[j] >> 17 & 1 == 1)
            .collect();
        let sep: Vec<usize> = (0..info.len())
            .filter(|&j| info[j] >> 18 & 1 == 1)
            .collect();
        assert_eq!(cls, vec![0], "{name}");
        let n = info.len();
        let want_sep = if second == content + 2 {
            vec![first_b - 1, first_b, n - 1]
        } else {
            vec![first_b - 1, n - 1]
        };
        assert_eq!(sep, want_sep, "{name}: {t:?}");
    }
}

/// `headroom forward --sentence-embedding` of `model` on `data` in batches of `batch`, written
/// under `tmp`: the [N, H] embeddings.
fn forward_sentence_embeddings(
    model: &std::path::Path,
    data: &std::path::Path,
    batch: usize,
    tmp: &std::path::Path,
) -> Vec<f32> {
    let out = tmp.join("out.safetensors");
    let batch = batch.to_string();
    let r = headroom(&[
        "forward",
        "--model",
        p(model),
        "--data",
        p(data),
        "--out",
        p(&out),
        "--sentence-embedding",
        "--batch-size",
        &batch,
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let bytes = std::fs::read(&out).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensor("sentence_embedding")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// A sentence-transformers directory (the default model: mean pooling, then Normalize) gives
/// sentence-transformers' embeddings, through the library and through `forward`.
#[test]
fn sentence_transformers_directories_give_their_sentence_embeddings() {
    let g = gpu();
    let dir = default_model_dir();
    let golden = Golden::open("minilm-sentence.safetensors");
    let model = Model::load(g, &dir).unwrap();
    let pooling = headroom::model::SentencePooling::load(&dir).unwrap();
    assert_eq!(pooling.mode, headroom::kernels::Pooling::Mean);
    assert!(pooling.normalize);
    let enc = model
        .tokenizer
        .encode_all(&golden_texts("sentences.tsv"))
        .unwrap()
        .0;
    let opts = ForwardOptions {
        sentence: Some(pooling),
        batch_size: 4,
        ..ForwardOptions::default()
    };
    let r = run_forward(g, &model, &enc, &Gates::Ones, &opts).unwrap();
    let want = golden.f32("sentence_embedding").1;
    assert_rel(
        "minilm sentence embeddings",
        &r.sentence.unwrap(),
        &want,
        1e-4,
    );

    // the command writes them; a directory without modules.json is refused
    let tmp = tempdir::TempDir::new("sentence");
    let data = golden_path("sentences.tsv");
    let got = forward_sentence_embeddings(&dir, &data, 32, tmp.path());
    assert_rel("forward --sentence-embedding", &got, &want, 1e-4);
    let tiny = fixture("tiny-bert");
    let r = headroom(&[
        "forward",
        "--model",
        p(&tiny),
        "--data",
        p(&data),
        "--out",
        p(&tmp.path().join("no.safetensors")),
        "--sentence-embedding",
    ]);
    assert_user_error(&r, "modules.json", "not a sentence-transformers directory");
    assert!(!tmp.path().join("no.safetensors").exists());
}

/// An MPNet-shaped sentence-transformers directory (sentence-transformers' best English model is
/// an MPNet): a bare MPNetModel without a prefix, mean pooling and Normalize, on sentences up to
/// 190 tokens, against transformers' hidden states mean-pooled and normalised.
#[test]
fn an_mpnet_sentence_transformer_gives_its_sentence_embeddings() {
    let dir = fixture("tiny-mpnet-st");
    let golden = Golden::open("tiny-mpnet-sentence.safetensors");
    let tmp = tempdir::TempDir::new("mpnet-sentence");
    let data = golden_path("long-sentences.tsv");
    let got = forward_sentence_embeddings(&dir, &data, 3, tmp.path());
    let want = golden.f32("sentence_embedding").1;
    assert_rel("tiny MPNet sentence embeddings", &got, &want, 1e-4);
}

/// `bench --shape` writes each family's checkpoint in that family's layout (here at a tiny size
/// with the same names), and it loads as a sequence classifier of that family.
#[test]
fn bench_shapes_write_their_familys_checkpoints() {
    use headroom::heads::bench::{random_checkpoint, Shape};
    let g = gpu();
    for shape in Shape::ALL {
        let tiny = Shape {
            layers: 2,
            heads: 2,
            hidden: 8,
            intermediate: 16,
            vocab: 110,
            // factorised where the family's shape is (ALBERT), one group where layers are shared
            embedding: if shape.embedding == shape.hidden {
                8
            } else {
                4
            },
            groups: shape.groups.min(2),
            ..shape
        };
        let dir = tempdir::TempDir::new(&format!("shape-{}", shape.name));
        random_checkpoint(dir.path(), &tiny, 1).unwrap();
        let m = Model::load(g, dir.path()).unwrap();
        assert_eq!(m.config.family, shape.family, "{}", shape.name);
        assert_eq!(
            m.task,
            headroom::model::TaskHead::SequenceClassification,
            "{}",
            shape.name
        );
        assert_eq!(m.config.max_tokens(), 512, "{}", shape.name);
        assert_eq!(m.config.embedding_size, tiny.embedding, "{}", shape.name);
        assert_eq!(m.config.stored_layers, tiny.groups, "{}", shape.name);
    }
}

/// A golden's corrupted batch: the examples of `ids` [N, T] cut to their real lengths
/// (attention_mask), the per-token labels of `labels` [N, T], and T.
fn golden_batch(golden: &Golden, ids: &str, labels: &str) -> (Vec<Encoded>, Vec<i32>, usize) {
    let (shape, ids) = golden.i64(ids);
    let (n, t) = (shape[0], shape[1]);
    let mask = golden.i64("attention_mask").1;
    let enc = (0..n)
        .map(|e| {
            let len = mask[e * t..(e + 1) * t].iter().filter(|&&m| m == 1).count();
            Encoded {
                ids: ids[e * t..e * t + len].iter().map(|&v| v as u32).collect(),
                type_ids: vec![0; len],
            }
        })
        .collect();
    let labels = golden.i64(labels).1.iter().map(|&v| v as i32).collect();
    (enc, labels, t)
}

/// The gates of a pre-training golden: every gate at 1, its [L, H] `head_mask` for every
/// example, and its per-example `gates`, each with the name of the loss under them.
fn golden_gate_sets(golden: &Golden, n: usize, lh: usize) -> [(Vec<f32>, &'static str); 3] {
    let hm = golden.f32("head_mask").1;
    [
        (vec![1.0; n * lh], "loss"),
        (hm.iter().cycle().take(n * lh).copied().collect(), "loss_hm"),
        (golden.f32("gates").1, "loss_gates"),
    ]
}

/// Each example's loss under every gate set of the golden, and the gate gradients at its
/// fractional gates (as transformers sums them over a shared layer's applications).
fn check_gate_losses(
    model: &Model,
    golden: &Golden,
    refs: &[&Encoded],
    labels: &[i32],
    what: &str,
) {
    let (n, lh) = (refs.len(), model.config.total_heads());
    for (gates, key) in golden_gate_sets(golden, n, lh) {
        let out = model.gate_gradients(gpu(), refs, labels, &gates).unwrap();
        assert_rel(
            &format!("{what} {key}"),
            &out.loss,
            &golden.f32(key).1,
            1e-4,
        );
        if key == "loss_gates" {
            let got = as_transformers_gate_grads(model, &out.dgates);
            let want = golden.f32("grad_gates").1;
            assert_rel(&format!("{what} grad_gates"), &got, &want, 1e-4);
        }
    }
}

/// A `*ForMaskedLM` checkpoint (tests/goldens/make_mlm_goldens.py) against transformers: the
/// prediction scores, each sentence's masked-LM loss with and without head masks, and the
/// per-example gate gradients of that loss. The decoder runs in chunks of 700 ids, so every
/// fixture's vocabulary spans several, the last one partial.
fn check_mlm(name: &str) {
    let g = gpu();
    let golden = Golden::open(&format!("tiny-{name}-mlm.safetensors"));
    let dir = fixture(&format!("tiny-{name}-mlm"));
    let model = Model::load_for_mlm(g, &dir, true, 700).unwrap();
    assert!(model.config.vocab_size > 700, "more than one chunk");
    let what = |s: &str| format!("{name} masked LM {s}");
    let (enc, labels, t) = golden_batch(&golden, "masked_ids", "mlm_labels");
    let n = enc.len();
    let refs: Vec<&Encoded> = enc.iter().collect();
    let lh = model.config.total_heads();

    // prediction scores of the first two sentences, through `forward`'s batching
    let opts = ForwardOptions {
        mlm_logits: true,
        batch_size: 1,
        ..ForwardOptions::default()
    };
    let r = run_forward(g, &model, &enc[..2], &Gates::Ones, &opts).unwrap();
    let v = model.config.vocab_size;
    let got = r.mlm_logits.unwrap();
    let want = golden.f32("mlm_logits").1;
    for e in 0..2 {
        let len = enc[e].ids.len();
        assert_rel(
            &what(&format!("scores of sentence {e}")),
            &got[e * r.seq * v..(e * r.seq + len) * v],
            &want[e * t * v..(e * t + len) * v],
            1e-4,
        );
    }

    // the loss under every gate at 1, a [L, H] mask, and per-example gates, with gradients
    check_gate_losses(&model, &golden, &refs, &labels, &what(""));
    for (gt, key) in golden_gate_sets(&golden, n, lh) {
        // the forward-only path agrees, and predicts each position's best-scoring id
        let p = model.mlm_predict(g, &refs, &labels, &gt).unwrap();
        let mut per_example = vec![0f32; n];
        for (&pos, &l) in p.positions.iter().zip(&p.loss) {
            per_example[pos / t] += l;
        }
        assert_rel(
            &what(&format!("{key} (forward only)")),
            &per_example,
            &golden.f32(key).1,
            1e-4,
        );
        if key == "loss" {
            for (&pos, &best) in p.positions.iter().zip(&p.predicted) {
                let (e, j) = (pos / t, pos % t);
                if e < 2 {
                    let row = &want[(e * t + j) * v..(e * t + j + 1) * v];
                    let argmax = (0..v).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
                    assert_eq!(best as usize, argmax, "{name}: prediction at {e}:{j}");
                }
            }
        }
    }
}

#[test]
fn masked_lm_heads_match_transformers() {
    for name in [
        "bert",
        "roberta",
        "distilbert",
        "electra",
        "albert",
        "mpnet",
    ] {
        check_mlm(name);
    }
}

#[test]
fn a_checkpoint_without_a_masked_lm_head_is_refused_by_name() {
    let err = Model::load_for_mlm(gpu(), &fixture("tiny-roberta"), false, 4096)
        .err()
        .expect("tiny-roberta is a sequence classifier")
        .to_string();
    assert!(
        err.contains("no masked-LM head: missing lm_head.dense.weight, lm_head.dense.bias")
            && err.contains("lm_head.bias")
            && err.contains("RobertaForMaskedLM"),
        "{err}"
    );
}

/// ELECTRA's discriminator (`ElectraForPreTraining`, tests/goldens/make_mlm_goldens.py)
/// against transformers: each token's logit, each sentence's replaced-token-detection loss
/// (binary cross-entropy summed over its real tokens) with and without head masks, and the
/// per-example gate gradients of that loss.
#[test]
fn the_electra_discriminator_matches_transformers() {
    let g = gpu();
    let golden = Golden::open("tiny-electra-rtd.safetensors");
    let model = Model::load_for_rtd(g, &fixture("tiny-electra-rtd"), true).unwrap();
    let (enc, labels, t) = golden_batch(&golden, "rtd_ids", "rtd_labels");
    let n = enc.len();
    let refs: Vec<&Encoded> = enc.iter().collect();
    let lh = model.config.total_heads();
    check_gate_losses(&model, &golden, &refs, &labels, "electra discriminator");
    let ones = vec![1.0; n * lh];
    // the forward-only path: the logit of every real token, and the same losses
    let p = model.rtd_predict(g, &refs, &labels, &ones).unwrap();
    let want = golden.f32("rtd_logits").1;
    let real: Vec<usize> = (0..n * t).filter(|&i| labels[i] >= 0).collect();
    let pick = |v: &[f32]| real.iter().map(|&i| v[i]).collect::<Vec<f32>>();
    assert_rel(
        "electra discriminator logits",
        &pick(&p.logits),
        &pick(&want),
        1e-4,
    );
    let per_example: Vec<f32> = p.loss.chunks(t).map(|r| r.iter().sum()).collect();
    assert_rel(
        "electra discriminator loss (forward only)",
        &per_example,
        &golden.f32("loss").1,
        1e-4,
    );
    // a checkpoint without the head, or of another family, is refused by name
    let err = Model::load_for_rtd(g, &fixture("tiny-electra"), false)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("no discriminator head: missing discriminator_predictions.dense.weight"),
        "{err}"
    );
    let err = Model::load_for_rtd(g, &fixture("tiny-roberta"), false)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("needs an ELECTRA discriminator"), "{err}");
}

/// Each family's token classifier (tests/goldens/make_family_goldens.py `token_classifiers`):
/// the family's fixture encoder with the golden's 5-tag classifier in place of its sequence
/// head, as transformers' `*ForTokenClassification` loads it: logits with and without a head
/// mask, each sentence's summed loss and its gate gradients.
#[test]
fn token_classifiers_match_transformers() {
    use headroom::io::output::{write_safetensors, OutTensor};
    use headroom::model::TaskHead;
    let g = gpu();
    for name in [
        "distilbert",
        "roberta",
        "xlm-roberta",
        "electra",
        "albert",
        "mpnet",
    ] {
        let golden = Golden::open(&format!("tiny-{name}-tok.safetensors"));
        let src = fixture(&format!("tiny-{name}"));
        let dir = tempdir::TempDir::new(&format!("tok-{name}"));
        // the encoder's tensors and the golden's classifier
        let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut tensors: Vec<OutTensor> = st
            .tensors()
            .into_iter()
            .filter(|(n, _)| !n.starts_with("classifier.") && !n.starts_with("pre_classifier."))
            .map(|(name, v)| OutTensor {
                name,
                dtype: v.dtype(),
                shape: v.shape().to_vec(),
                data: v.data().to_vec(),
            })
            .collect();
        for k in ["classifier.weight", "classifier.bias"] {
            let (shape, v) = golden.f32(k);
            tensors.push(OutTensor::f32(k, shape, &v));
        }
        write_safetensors(&dir.path().join("model.safetensors"), &tensors, &[]).unwrap();
        let mut cfg = read_json(&src.join("config.json"));
        let family = headroom::model::Family::of(cfg["model_type"].as_str().unwrap()).unwrap();
        let tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"];
        cfg["architectures"] =
            serde_json::json!([family.architecture(TaskHead::TokenClassification)]);
        cfg["id2label"] = tags
            .iter()
            .enumerate()
            .map(|(i, t)| (i.to_string(), serde_json::json!(t)))
            .collect();
        cfg["label2id"] = tags
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), serde_json::json!(i)))
            .collect();
        std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
        std::fs::copy(
            src.join("tokenizer.json"),
            dir.path().join("tokenizer.json"),
        )
        .unwrap();

        let model = Model::load_for_gradients(g, dir.path()).unwrap();
        assert_eq!(model.task, TaskHead::TokenClassification, "{name}");
        let enc = encode(&model, &golden);
        let (n, lh) = (enc.len(), model.config.total_heads());
        let t = golden.i64("input_ids").0[1];
        let what = |s: &str| format!("{name} token classifier {s}");
        for (gates, key) in [
            (Gates::Ones, "logits"),
            (Gates::Broadcast(golden.f32("head_mask").1), "logits_hm"),
        ] {
            let r = run_forward(g, &model, &enc, &gates, &ForwardOptions::default()).unwrap();
            let got = real_rows(&r.logits.unwrap(), &enc, r.seq, 5);
            let want = real_rows(&golden.f32(key).1, &enc, t, 5);
            assert_rel(&what(key), &got, &want, 1e-4);
        }
        let refs: Vec<&Encoded> = enc.iter().collect();
        let labels: Vec<i32> = golden
            .i64("token_labels")
            .1
            .iter()
            .map(|&v| v as i32)
            .collect();
        let gates = golden.f32("gates").1;
        assert_eq!(gates.len(), n * lh);
        let out = model.gate_gradients(g, &refs, &labels, &gates).unwrap();
        assert_rel(&what("loss"), &out.loss, &golden.f32("loss").1, 1e-4);
        let got = as_transformers_gate_grads(&model, &out.dgates);
        assert_rel(&what("grad_gates"), &got, &golden.f32("grad_gates").1, 1e-4);
    }
}
