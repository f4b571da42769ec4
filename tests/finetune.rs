//! `headroom finetune` end to end on the tiny model: a synthetic task only attention can solve
//! is learnt; the written HF directory reloads with the same dev accuracy; token
//! classification trains and evaluates (seqeval); every user-caused failure is one line.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;

struct Tmp(PathBuf);
impl Tmp {
    fn new(tag: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("headroom-ft-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ok(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The tiny fixture as a plain BertModel: no classifier, no id2label.
fn base_model(tmp: &Tmp) -> PathBuf {
    let dst = tmp.join("base");
    std::fs::create_dir_all(&dst).unwrap();
    let src = fixture("tiny-bert");
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("classifier."))
        .map(|(n, v)| (n.trim_start_matches("bert.").to_string(), v))
        .collect();
    std::fs::write(
        dst.join("model.safetensors"),
        safetensors::serialize(kept, None).unwrap(),
    )
    .unwrap();
    let mut cfg: serde_json::Value = read_json(&src.join("config.json"));
    let obj = cfg.as_object_mut().unwrap();
    obj.insert("architectures".into(), serde_json::json!(["BertModel"]));
    obj.remove("id2label");
    obj.remove("label2id");
    std::fs::write(dst.join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(src.join("tokenizer.json"), dst.join("tokenizer.json")).unwrap();
    dst
}

/// Whole-word vocabulary entries of the tiny tokenizer.
fn words() -> Vec<String> {
    std::fs::read_to_string(fixture("tiny-bert").join("vocab.txt"))
        .unwrap()
        .lines()
        .filter(|w| w.len() >= 3 && w.chars().all(|c| c.is_ascii_lowercase()))
        .take(60)
        .map(String::from)
        .collect()
}

/// Sentences of 3–10 filler words; label 1 when the marker word occurs (anywhere), else 0.
/// The [CLS] row sees the marker only through attention, so only attention solves it.
fn marker_task(n: usize, seed: u64, marker: &str, filler: &[String]) -> String {
    let mut rng = Rng::new(seed);
    let mut s = String::from("sentence\tlabel\n");
    for i in 0..n {
        let len = 3 + rng.below(8) as usize;
        let mut w: Vec<&str> = (0..len)
            .map(|_| filler[rng.below(filler.len() as u32) as usize].as_str())
            .collect();
        let label = i % 2;
        if label == 1 {
            let at = rng.below(len as u32) as usize;
            w[at] = marker;
        }
        s.push_str(&format!("{}\t{label}\n", w.join(" ")));
    }
    s
}

#[test]
fn a_tiny_model_learns_a_task_only_attention_solves() {
    let tmp = Tmp::new("marker");
    let model = base_model(&tmp);
    let vocab = words();
    let (marker, filler) = (vocab[0].clone(), &vocab[1..]);
    let train = tmp.write("train.tsv", &marker_task(320, 1, &marker, filler));
    let dev = tmp.write("dev.tsv", &marker_task(96, 2, &marker, filler));
    let out = tmp.join("ft");
    let args = [
        "finetune",
        "--model",
        p(&model),
        "--task",
        "seq-cls",
        "--train",
        p(&train),
        "--dev",
        p(&dev),
        "--out",
        p(&out),
        "--epochs",
        "6",
        "--batch-size",
        "16",
        "--lr",
        "2e-3",
        "--warmup",
        "0.1",
        "--dropout",
        "0",
        "--seed",
        "3",
    ];
    ok(&headroom(&args), "finetune");
    let log = read_json(&out.join("finetune.json"));
    let epochs = log["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 6);
    let first = epochs[0]["train_loss"].as_f64().unwrap();
    let last = epochs[5]["train_loss"].as_f64().unwrap();
    let best = log["best_dev"].as_f64().unwrap();
    assert!(last < 0.5 * first, "train loss {first} -> {last}");
    assert!(best >= 0.9, "best dev accuracy {best}: {log}");

    // an HF directory: config with architectures / id2label / label2id, no extra head keys
    let cfg = read_json(&out.join("config.json"));
    assert_eq!(cfg["architectures"][0], "BertForSequenceClassification");
    assert_eq!(cfg["id2label"]["1"], "LABEL_1");
    assert_eq!(cfg["label2id"]["LABEL_0"], 0);
    for f in ["model.safetensors", "tokenizer.json"] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    // the checkpoint reloads with the best epoch's dev accuracy
    let eval = ok(
        &headroom(&["eval", "--model", p(&out), "--data", p(&dev)]),
        "eval",
    );
    let e: serde_json::Value = serde_json::from_str(&eval).unwrap();
    assert!(
        (e["accuracy"].as_f64().unwrap() - best).abs() < 1e-9,
        "reloaded {e} vs best {best}"
    );
    // fine-tuning the fine-tuned checkpoint again starts from its head (same labels)
    let again = tmp.join("ft2");
    let args2 = [
        "finetune",
        "--model",
        p(&out),
        "--task",
        "seq-cls",
        "--train",
        p(&train),
        "--dev",
        p(&dev),
        "--out",
        p(&again),
        "--max-steps",
        "2",
    ];
    ok(&headroom(&args2), "finetune from a checkpoint");
    // the same seed gives the same run
    let out3 = tmp.join("ft3");
    let mut args3 = args.to_vec();
    let i = args3.iter().position(|a| *a == p(&out)).unwrap();
    args3[i] = p(&out3);
    let i = args3.iter().position(|a| *a == "6").unwrap();
    args3[i] = "1";
    ok(&headroom(&args3), "finetune, one epoch");
    let out4 = tmp.join("ft4");
    let i = args3.iter().position(|a| *a == p(&out3)).unwrap();
    args3[i] = p(&out4);
    ok(&headroom(&args3), "finetune, one epoch again");
    assert_eq!(
        std::fs::read(out3.join("model.safetensors")).unwrap(),
        std::fs::read(out4.join("model.safetensors")).unwrap(),
        "same seed, same adapter: same weights"
    );
}

fn conll(sentences: &[&[(&str, &str)]]) -> String {
    let mut s = String::new();
    for sent in sentences {
        for (w, t) in *sent {
            s.push_str(&format!("{w}\t{t}\n"));
        }
        s.push('\n');
    }
    s
}

#[test]
fn token_classification_trains_and_evaluates_entities() {
    let tmp = Tmp::new("tok");
    let model = fixture("tiny-bert-tok");
    // the fixture's labels: B-PER I-PER B-LOC I-LOC O
    let s1: &[(&str, &str)] = &[
        ("john", "B-PER"),
        ("smith", "I-PER"),
        ("went", "O"),
        ("to", "O"),
        ("paris", "B-LOC"),
    ];
    let s2: &[(&str, &str)] = &[
        ("the", "O"),
        ("city", "O"),
        ("of", "O"),
        ("london", "B-LOC"),
    ];
    let s3: &[(&str, &str)] = &[("mary", "B-PER"), ("was", "O"), ("here", "O")];
    let data = conll(&[s1, s2, s3, s1, s2, s3]);
    let train = tmp.write("train.conll", &data);
    let dev = tmp.write("dev.conll", &conll(&[s1, s2, s3]));
    let out = tmp.join("ft");
    let args = [
        "finetune",
        "--model",
        p(model.as_path()),
        "--task",
        "token-cls",
        "--train",
        p(&train),
        "--dev",
        p(&dev),
        "--out",
        p(&out),
        "--epochs",
        "30",
        "--batch-size",
        "3",
        "--lr",
        "3e-3",
        "--dropout",
        "0",
    ];
    ok(&headroom(&args), "token finetune");
    let log = read_json(&out.join("finetune.json"));
    let cfg = read_json(&out.join("config.json"));
    assert_eq!(cfg["architectures"][0], "BertForTokenClassification");
    assert_eq!(cfg["id2label"]["4"], "O");
    let eval = ok(
        &headroom(&["eval", "--model", p(&out), "--data", p(&dev)]),
        "eval",
    );
    let e: serde_json::Value = serde_json::from_str(&eval).unwrap();
    // memorising 3 sentences: every entity found
    assert_eq!(e["f1"].as_f64().unwrap(), 1.0, "{e}\n{log}");
    assert_eq!(e["token_accuracy"].as_f64().unwrap(), 1.0, "{e}");
    assert_eq!(
        e["f1"], log["best_dev"],
        "reloaded F1 equals the best epoch's"
    );
    // no pooler in a token classifier's checkpoint, as transformers writes it
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(st.names().iter().all(|n| !n.contains("pooler")));
    assert!(st
        .names()
        .contains(&"bert.encoder.layer.1.attention.self.key.weight"));
}

#[test]
fn finetune_bad_inputs_fail_cleanly() {
    let tmp = Tmp::new("bad");
    let model = base_model(&tmp);
    let vocab = words();
    let train = tmp.write("train.tsv", &marker_task(32, 1, &vocab[0], &vocab[1..]));
    let out = tmp.join("out");
    let run = |train: &Path, dev: &Path, task: &str, extra: &[&str]| {
        let mut a = vec![
            "finetune",
            "--model",
            p(&model),
            "--task",
            task,
            "--train",
            p(train),
            "--dev",
            p(dev),
            "--out",
            p(&out),
            "--max-steps",
            "2",
        ];
        a.extend_from_slice(extra);
        headroom(&a)
    };
    let empty = tmp.write("empty.tsv", "sentence\tlabel\n");
    assert_user_error(
        &run(&train, &empty, "seq-cls", &[]),
        "empty.tsv",
        "empty dev split",
    );
    assert_user_error(
        &run(&empty, &train, "seq-cls", &[]),
        "empty",
        "empty train split",
    );
    let no_tab = tmp.write("bad.conll", "john\tB-PER\nsmith I-PER\n\n");
    assert_user_error(
        &run(&no_tab, &no_tab, "token-cls", &[]),
        "line 2",
        "CoNLL line without a tab",
    );
    let out_before = out.exists();
    assert!(!out_before, "failed runs write no output");
    assert_user_error(&run(&train, &train, "ner", &[]), "unknown task", "bad task");
    // a label outside a fine-tuned model's id2label
    let tok = fixture("tiny-bert-tok");
    let weird = tmp.write("weird.conll", "john\tB-FOO\n\n");
    let good = tmp.write("good.conll", "john\tB-PER\n\n");
    let a = [
        "finetune",
        "--model",
        p(tok.as_path()),
        "--task",
        "token-cls",
        "--train",
        p(&good),
        "--dev",
        p(&weird),
        "--out",
        p(&out),
        "--max-steps",
        "1",
    ];
    assert_user_error(&headroom(&a), "B-FOO", "unknown tag");
    let a = ["eval", "--model", p(tok.as_path()), "--data", p(&weird)];
    assert_user_error(&headroom(&a), "B-FOO", "eval: unknown tag");
    // Divergence: one step per epoch at a huge learning rate. Epoch 1's step is finite (its
    // checkpoint is written); epoch 2's loss is not: the run stops naming the step and keeps
    // epoch 1's checkpoint, which still loads.
    let r = run(
        &train,
        &train,
        "seq-cls",
        &["--lr", "1e30", "--warmup", "0"],
    );
    assert_user_error(&r, "at step 2", "divergence");
    assert_user_error(&r, "epoch 1", "divergence keeps the last good checkpoint");
    let e = headroom(&["eval", "--model", p(&out), "--data", p(&train)]);
    ok(&e, "eval of the kept checkpoint");
    // an existing output is refused without --force; the model directory is never the output
    assert_user_error(
        &run(&train, &train, "seq-cls", &[]),
        "--force",
        "existing output",
    );
    let a = [
        "finetune",
        "--model",
        p(&model),
        "--task",
        "seq-cls",
        "--train",
        p(&train),
        "--dev",
        p(&train),
        "--out",
        p(&model),
        "--force",
    ];
    assert_user_error(
        &headroom(&a),
        "refusing to overwrite",
        "model dir as output",
    );
}
