//! The CLI end to end, and every user-caused failure: one line naming the file and the problem,
//! exit code 2, no panic, no output file.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Tmp(PathBuf);
impl Tmp {
    fn new(tag: &str) -> Tmp {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let i = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("headroom-cli-{tag}-{}-{i}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// A copy of a fixture model directory.
    fn model(&self, fixture_name: &str) -> PathBuf {
        let dst = self.join("model");
        std::fs::create_dir_all(&dst).unwrap();
        for f in ["config.json", "model.safetensors", "tokenizer.json"] {
            std::fs::copy(fixture(fixture_name).join(f), dst.join(f)).unwrap();
        }
        dst
    }
    fn write(&self, name: &str, content: &[u8]) -> PathBuf {
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

fn headroom(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_headroom"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn forward_args<'a>(model: &'a str, data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec!["forward", "--model", model, "--data", data, "--out", out]
}

fn read_out(path: &Path) -> (Vec<u8>, Vec<String>) {
    let bytes = std::fs::read(path).unwrap();
    let names = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap()
        .names()
        .into_iter()
        .map(|s| s.to_string())
        .collect();
    (bytes, names)
}

fn out_f32(bytes: &[u8], name: &str) -> (Vec<usize>, Vec<f32>) {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let v = st.tensor(name).unwrap();
    (
        v.shape().to_vec(),
        v.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[test]
fn forward_writes_logits_pooled_and_hidden_matching_transformers() {
    let tmp = Tmp::new("fwd");
    let out = tmp.join("out.safetensors");
    let model = fixture("tiny-bert");
    let data = golden_path("sentences.tsv");
    let mut args = forward_args(p(&model), p(&data), p(&out));
    args.extend(["--hidden", "--batch-size", "4"]);
    let res = headroom(&args, &[]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let (bytes, names) = read_out(&out);
    for n in [
        "logits",
        "pooled",
        "last_hidden_state",
        "attention_mask",
        "input_ids",
    ] {
        assert!(names.iter().any(|x| x == n), "missing {n} in {names:?}");
    }
    let golden = Golden::open("tiny-bert.safetensors");
    let (shape, logits) = out_f32(&bytes, "logits");
    assert_eq!(shape, vec![6, 3]);
    assert_close("cli logits", &logits, &golden.f32("logits").1, 1e-4, 0.0);
    let (shape, _) = out_f32(&bytes, "last_hidden_state");
    assert_eq!(shape, vec![6, 53, 64]);
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(stdout.contains("6 examples"), "{stdout}");
    assert!(stdout.contains("predicted labels"), "{stdout}");
    // no temporary file left beside the output
    let left: Vec<_> = std::fs::read_dir(&tmp.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn forward_with_json_and_npy_head_masks_matches_transformers() {
    let tmp = Tmp::new("mask");
    let model = fixture("tiny-bert");
    let data = golden_path("sentences.tsv");
    let golden = Golden::open("tiny-bert.safetensors");
    let (_, hm) = golden.f32("head_mask"); // [[1,0],[0.5,1]]
    let json = tmp.write(
        "mask.json",
        format!("[[{},{}],[{},{}]]", hm[0], hm[1], hm[2], hm[3]).as_bytes(),
    );
    // a .npy [2,2] float32
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let pad = 64 - (10 + header.len() + 1) % 64;
    let hlen = header.len() + pad + 1;
    npy.extend((hlen as u16).to_le_bytes());
    npy.extend(header.as_bytes());
    npy.extend(std::iter::repeat_n(b' ', pad));
    npy.push(b'\n');
    for v in &hm {
        npy.extend(v.to_le_bytes());
    }
    let npy = tmp.write("mask.npy", &npy);
    for mask in [json, npy] {
        let out = tmp.join("out.safetensors");
        let mut args = forward_args(p(&model), p(&data), p(&out));
        args.extend(["--head-mask", p(&mask)]);
        let res = headroom(&args, &[]);
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let (bytes, _) = read_out(&out);
        assert_close(
            &format!("logits with {}", mask.display()),
            &out_f32(&bytes, "logits").1,
            &golden.f32("logits_hm").1,
            1e-4,
            0.0,
        );
    }
}

#[test]
fn profile_prints_a_kernel_table_and_writes_a_trace() {
    let tmp = Tmp::new("prof");
    let out = tmp.join("out.safetensors");
    let trace = tmp.join("trace.json");
    let model = fixture("tiny-bert");
    let data = golden_path("sentences.tsv");
    let mut args = vec!["--profile", "--trace", p(&trace)];
    args.extend(forward_args(p(&model), p(&data), p(&out)));
    let res = headroom(&args, &[]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let stdout = String::from_utf8_lossy(&res.stdout);
    for k in [
        "attention_fwd",
        "add_ln",
        "embed_ln",
        "matmul+gelu",
        "total GPU time",
    ] {
        assert!(stdout.contains(k), "profile table lacks {k}:\n{stdout}");
    }
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let events = t["traceEvents"].as_array().unwrap();
    // 2 layers × (3 matmul + attention + 2 LN + ...) dispatches at least
    assert!(events.len() >= 14, "{} events", events.len());
    assert!(events.iter().all(|e| e["dur"].as_f64().unwrap() >= 0.0));
}

#[test]
fn info_lists_adapters_limits_and_features() {
    let res = headroom(&["info"], &[]);
    assert!(res.status.success());
    let s = String::from_utf8_lossy(&res.stdout);
    assert!(s.contains("chosen: "), "{s}");
    assert!(s.contains("max_storage_buffer_binding_size"), "{s}");
    assert!(s.contains("enabled features"), "{s}");
}

#[test]
fn no_adapter_is_one_line_naming_the_fix() {
    // No Metal on Linux: wgpu finds no adapter on that backend.
    let res = headroom(&["info"], &[("WGPU_BACKEND", "metal")]);
    assert_user_error(&res, "mesa-vulkan-drivers", "no adapter");
    let res = headroom(&["info"], &[("WGPU_ADAPTER_NAME", "no-such-gpu-xyz")]);
    assert_user_error(&res, "no-such-gpu-xyz", "unmatched adapter name");
}

/// Runs forward with a broken input and checks the error and that no output appeared.
fn expect_forward_error(
    tmp: &Tmp,
    model: &Path,
    data: &Path,
    extra: &[&str],
    needle: &str,
    what: &str,
) {
    let out = tmp.join("never.safetensors");
    let mut args = forward_args(p(model), p(data), p(&out));
    args.extend(extra);
    let res = headroom(&args, &[]);
    assert_user_error(&res, needle, what);
    assert!(!out.exists(), "{what}: an output file was written");
    let stray: Vec<_> = std::fs::read_dir(&tmp.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(stray.is_empty(), "{what}: temporary files left: {stray:?}");
}

fn rewrite_tensors(path: &Path, f: impl Fn(&str) -> Option<String>) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .filter_map(|(n, v)| f(&n).map(|n2| (n2, v)))
        .collect();
    let out = safetensors::serialize(kept, None).unwrap();
    std::fs::write(path, out).unwrap();
}

#[test]
fn bad_model_files_fail_cleanly() {
    let data = golden_path("sentences.tsv");

    let tmp = Tmp::new("trunc");
    let m = tmp.model("tiny-bert");
    let st = m.join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() / 2]).unwrap();
    expect_forward_error(
        &tmp,
        &m,
        &data,
        &[],
        "model.safetensors: corrupt or truncated",
        "truncated safetensors",
    );

    let tmp = Tmp::new("corrupt");
    let m = tmp.model("tiny-bert");
    std::fs::write(
        m.join("model.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all",
    )
    .unwrap();
    expect_forward_error(
        &tmp,
        &m,
        &data,
        &[],
        "corrupt or truncated",
        "corrupt safetensors",
    );

    let tmp = Tmp::new("missing");
    let m = tmp.model("tiny-bert");
    rewrite_tensors(&m.join("model.safetensors"), |n| {
        (n != "bert.encoder.layer.1.output.dense.bias").then(|| n.to_string())
    });
    expect_forward_error(
        &tmp,
        &m,
        &data,
        &[],
        "missing tensor bert.encoder.layer.1.output.dense.bias",
        "missing tensor",
    );

    // config.json edited so that it disagrees with the weights or the tokenizer, or asks for
    // what headroom does not run
    for (fixture, tag, from, to, needle, what) in [
        (
            "tiny-bert",
            "shape",
            "\"intermediate_size\": 128",
            "\"intermediate_size\": 100",
            "config.json implies [100, 64]",
            "shape mismatch",
        ),
        (
            "tiny-bert",
            "mtype",
            "\"model_type\": \"bert\"",
            "\"model_type\": \"gpt2\"",
            "unknown model_type \"gpt2\"; supported: bert, distilbert, roberta, xlm-roberta, electra, albert",
            "unknown model_type",
        ),
        (
            "tiny-bert",
            "act",
            "\"hidden_act\": \"gelu\"",
            "\"hidden_act\": \"relu\"",
            "hidden_act \"relu\" is not supported",
            "another activation",
        ),
        (
            "tiny-albert",
            "inner",
            "\"inner_group_num\": 1",
            "\"inner_group_num\": 2",
            "inner_group_num 2 is not supported",
            "ALBERT with two layers per group",
        ),
        (
            "tiny-albert",
            "groups",
            "\"num_hidden_groups\": 2",
            "\"num_hidden_groups\": 3",
            "num_hidden_layers 4 is not a multiple of num_hidden_groups 3",
            "ALBERT with uneven groups",
        ),
        (
            "tiny-roberta",
            "pad",
            "\"pad_token_id\": 1",
            "\"pad_token_id\": 0",
            "the padding token <pad> is id 1 but config.json's pad_token_id is 0",
            "a tokenizer whose padding token disagrees with config.json",
        ),
        (
            "tiny-bert",
            "vocab",
            "\"vocab_size\": 3000",
            "\"vocab_size\": 2000",
            "tokenizer.json: the tokenizer has 3000 tokens but config.json's vocab_size is 2000",
            "tokenizer of another model",
        ),
    ] {
        let tmp = Tmp::new(tag);
        let m = tmp.model(fixture);
        let cfg = std::fs::read_to_string(m.join("config.json")).unwrap();
        assert!(cfg.contains(from), "{tag}: {from} in the fixture's config.json");
        std::fs::write(m.join("config.json"), cfg.replace(from, to)).unwrap();
        expect_forward_error(&tmp, &m, &data, &[], needle, what);
    }

    let tmp = Tmp::new("nodir");
    expect_forward_error(
        &tmp,
        &tmp.join("nope"),
        &data,
        &[],
        "no such model directory",
        "missing model dir",
    );

    let tmp = Tmp::new("notok");
    let m = tmp.model("tiny-bert");
    std::fs::remove_file(m.join("tokenizer.json")).unwrap();
    expect_forward_error(
        &tmp,
        &m,
        &data,
        &[],
        "tokenizer.json: missing",
        "missing tokenizer",
    );
}

#[test]
fn bad_data_and_masks_fail_cleanly() {
    let tmp = Tmp::new("data");
    let m = fixture("tiny-bert");
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "nocol.tsv",
            b"text\tlabel\nhello\t1\n",
            "no `sentence` column",
        ),
        ("empty.tsv", b"", "empty file"),
        ("header.tsv", b"sentence\tlabel\n", "no examples"),
        (
            "ragged.tsv",
            b"sentence\tlabel\ngood\t1\nbad line without tab\n",
            "line 3: 1 tab-separated fields",
        ),
        (
            "blank.tsv",
            b"sentence\tlabel\n \t1\n",
            "line 2: empty sentence",
        ),
    ];
    for (name, content, needle) in cases {
        let d = tmp.write(name, content);
        expect_forward_error(&tmp, &m, &d, &[], &format!("{name}: {needle}"), name);
    }
    let data = golden_path("sentences.tsv");
    let masks: [(&str, &str, &str); 4] = [
        (
            "shape.json",
            "[[1,1],[1,1],[1,1]]",
            "head mask has shape 3×2; the model has 2 layers × 2 heads",
        ),
        (
            "range.json",
            "[[1,1.5],[1,1]]",
            "head mask value 1.5 at layer 0, head 1 is outside [0, 1]",
        ),
        ("ragged.json", "[[1,1],[1]]", "row 1 has 1 values"),
        ("junk.json", "{\"a\": 1}", "expected a JSON array of arrays"),
    ];
    for (name, content, needle) in masks {
        let mk = tmp.write(name, content.as_bytes());
        expect_forward_error(
            &tmp,
            &m,
            &data,
            &["--head-mask", p(&mk)],
            &format!("{name}: {needle}"),
            name,
        );
    }
    let bad_npy = tmp.write("bad.npy", b"\x93NUMPY\x01\x00garbage");
    expect_forward_error(
        &tmp,
        &m,
        &data,
        &["--head-mask", p(&bad_npy)],
        "bad.npy: not a readable .npy",
        "bad npy",
    );
}

#[test]
fn refuses_to_overwrite_an_input() {
    let tmp = Tmp::new("overwrite");
    let data = tmp.write("in.tsv", b"sentence\nhello world\n");
    let before = std::fs::read(&data).unwrap();
    let m = fixture("tiny-bert");
    let res = headroom(&forward_args(p(&m), p(&data), p(&data)), &[]);
    assert_user_error(&res, "refusing to overwrite", "out == data");
    assert_eq!(std::fs::read(&data).unwrap(), before);
}

#[test]
fn long_texts_are_truncated_with_a_warning() {
    let tmp = Tmp::new("long");
    let long = vec!["word"; 200].join(" ");
    let data = tmp.write(
        "long.tsv",
        format!("sentence\n{long}\nshort one\n").as_bytes(),
    );
    let out = tmp.join("out.safetensors");
    let m = fixture("tiny-bert"); // 64 positions
    let res = headroom(
        &[forward_args(p(&m), p(&data), p(&out)), vec!["--hidden"]].concat(),
        &[],
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 of 2 examples were longer than the model's 64 tokens"),
        "{stderr}"
    );
    let (bytes, _) = read_out(&out);
    assert_eq!(out_f32(&bytes, "last_hidden_state").0, vec![2, 64, 64]);
}

#[test]
fn a_tensor_over_the_binding_limit_is_a_clean_error() {
    let g = gpu();
    let too_big = (g.max_binding() / 4 + 1) as usize;
    let err = g
        .empty("activations", too_big)
        .err()
        .expect("over the limit must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("activations") && msg.contains("binding limit"),
        "{msg}"
    );
}

fn read_npy_f32(path: &Path) -> Vec<f32> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "npy header alignment");
    b[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// head_importance.npy and attn_entropy.npy in `out` against golden tensors (importance
/// relative to its largest value, 1e-4); returns the importance.
fn check_score_files(out: &Path, golden: &Golden, importance: &str, entropy: &str) -> Vec<f32> {
    let imp = read_npy_f32(&out.join("head_importance.npy"));
    let want = golden.f32(importance).1;
    let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
    assert!(
        max_abs_diff(&imp, &want) / scale <= 1e-4,
        "{imp:?} vs {want:?}"
    );
    let ent = read_npy_f32(&out.join("attn_entropy.npy"));
    assert_close("attn_entropy.npy", &ent, &golden.f32(entropy).1, 1e-4, 1e-4);
    imp
}

#[test]
fn score_writes_importance_matching_transformers() {
    let tmp = Tmp::new("score");
    let golden = Golden::open("tiny-bert-grad.safetensors");
    let labels = golden.i64("labels").1;
    let names = ["neg", "neu", "pos"];
    let texts = golden_texts("sentences.tsv");
    // labels as id2label names and as indices, mixed
    let mut tsv = String::from("sentence\tlabel\n");
    for (i, (s, _)) in texts.iter().enumerate() {
        let l = labels[i] as usize;
        let field = if i % 2 == 0 {
            names[l].to_string()
        } else {
            l.to_string()
        };
        tsv.push_str(&format!("{s}\t{field}\n"));
    }
    let data = tmp.write("labelled.tsv", tsv.as_bytes());
    let out = tmp.join("scores");
    let m = fixture("tiny-bert");
    let res = headroom(
        &[
            "score",
            "--model",
            p(&m),
            "--data",
            p(&data),
            "--out",
            p(&out),
            "--batch-size",
            "4",
        ],
        &[],
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    check_score_files(&out, &golden, "importance", "entropy");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["examples"], 6);
    assert_eq!(
        report["variants"]["example"]["rank"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // a label the model does not know
    let bad = tmp.write("bad.tsv", b"sentence\tlabel\nfine\tpos\nodd\tmaybe\n");
    let res = headroom(
        &[
            "score",
            "--model",
            p(&m),
            "--data",
            p(&bad),
            "--out",
            p(&tmp.join("x")),
        ],
        &[],
    );
    assert_user_error(&res, "bad.tsv: line 3: label \"maybe\"", "unknown label");
    assert!(!tmp.join("x").exists());
}

#[test]
fn score_token_classifier_from_conll_with_bootstrap_and_heatmaps() {
    let tmp = Tmp::new("score-tok");
    let golden = Golden::open("tiny-bert-tok-score.safetensors");
    let data = golden_path("tok.conll");
    let out = tmp.join("scores");
    let m = fixture("tiny-bert-tok");
    let res = headroom(
        &[
            "score",
            "--model",
            p(&m),
            "--data",
            p(&data),
            "--out",
            p(&out),
            "--task",
            "token-cls",
            "--bootstrap",
            "200",
            "--batch-size",
            "3",
        ],
        &[],
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    // per-example importance (loss summed over first sub-tokens) and entropy: transformers
    let imp = check_score_files(&out, &golden, "importance_example", "attn_entropy");
    let conf = read_npy_f32(&out.join("attn_confidence.npy"));
    assert!(conf.iter().all(|&c| c > 0.0 && c <= 1.0 + 1e-6), "{conf:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["task"], "token-cls");
    assert_eq!(report["examples"], 4);
    for g in ["example", "token", "fisher"] {
        let v = &report["variants"][g];
        let raw: Vec<f64> = serde_json::from_value(v["raw"].clone()).unwrap();
        let b = &v["bootstrap_95"];
        let lo: Vec<f64> = serde_json::from_value(b["score_lo"].clone()).unwrap();
        let hi: Vec<f64> = serde_json::from_value(b["score_hi"].clone()).unwrap();
        let rlo: Vec<usize> = serde_json::from_value(b["rank_lo"].clone()).unwrap();
        let rhi: Vec<usize> = serde_json::from_value(b["rank_hi"].clone()).unwrap();
        for k in 0..raw.len() {
            assert!(lo[k] <= hi[k] && rlo[k] <= rhi[k], "{g} head {k}");
            assert!(
                lo[k] <= raw[k] * (1.0 + 1e-6) + 1e-12 && raw[k] <= hi[k] * (1.0 + 1e-6) + 1e-12,
                "{g} head {k}: {} not in [{}, {}]",
                raw[k],
                lo[k],
                hi[k]
            );
        }
        // with 4 examples some interval is wide: resampling really happened
        assert!(
            (0..raw.len()).any(|k| hi[k] > lo[k] * 1.01),
            "{g}: degenerate intervals"
        );
    }
    // token-level importance Σ_t |<O,dO>| bounds the example-level |Σ_t <O,dO>|
    let tok: Vec<f64> = serde_json::from_value(report["variants"]["token"]["raw"].clone()).unwrap();
    for (k, (&t, &e)) in tok.iter().zip(&imp).enumerate() {
        assert!(t + 1e-6 >= e as f64, "head {k}: token {t} < example {e}");
    }
    assert!(report["variants"]["batch"].get("bootstrap_95").is_none());
    let svg = std::fs::read_to_string(out.join("head_importance.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("layer 1") && svg.matches("<rect").count() >= 4
    );
    let png = std::fs::read(out.join("head_importance.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // --task disagreeing with the checkpoint
    let res = headroom(
        &[
            "score",
            "--model",
            p(&m),
            "--data",
            p(&data),
            "--out",
            p(&tmp.join("y")),
            "--task",
            "seq-cls",
        ],
        &[],
    );
    assert_user_error(&res, "token-cls model", "task mismatch");
}

#[test]
fn eval_reports_accuracy_with_and_without_a_head_mask() {
    let tmp = Tmp::new("eval");
    let golden = Golden::open("tiny-bert.safetensors");
    let texts = golden_texts("sentences.tsv");
    let labels = [0usize, 1, 2, 2, 1, 0];
    let mut tsv = String::from("sentence\tlabel\n");
    for (i, (s, _)) in texts.iter().enumerate() {
        tsv.push_str(&format!("{s}\t{}\n", labels[i]));
    }
    let data = tmp.write("labelled.tsv", tsv.as_bytes());
    let (_, hm) = golden.f32("head_mask");
    let mask = tmp.write(
        "mask.json",
        format!("[[{},{}],[{},{}]]", hm[0], hm[1], hm[2], hm[3]).as_bytes(),
    );
    let m = fixture("tiny-bert");
    let mut accuracy = Vec::new();
    for (extra, logits_name) in [
        (vec![], "logits"),
        (vec!["--head-mask", p(&mask)], "logits_hm"),
    ] {
        let want_logits = golden.f32(logits_name).1;
        let correct = want_logits
            .chunks(3)
            .zip(labels)
            .filter(|(row, y)| {
                row.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .unwrap()
                    .0
                    == *y
            })
            .count();
        let mut args = vec!["eval", "--model", p(&m), "--data", p(&data)];
        args.extend(extra);
        let res = headroom(&args, &[]);
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
        assert_eq!(report["correct"], correct, "{logits_name}: {report}");
        assert_eq!(report["examples"], 6);
        accuracy.push(correct as f64 / 6.0);
    }
    // the masked run against every head, paired over the same six sentences
    let eval = ["eval", "--model", p(&m), "--data", p(&data)];
    let res = headroom(
        &[
            &eval[..],
            &["--head-mask", p(&mask)],
            &["--paired-bootstrap", "300"],
        ]
        .concat(),
        &[],
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let pb = &report["paired_bootstrap"];
    assert_eq!(pb["metric"], "accuracy");
    assert_eq!(pb["every_head"], accuracy[0]);
    assert_eq!(pb["with_head_mask"], accuracy[1]);
    let d = pb["difference"].as_f64().unwrap();
    assert!((d - (accuracy[1] - accuracy[0])).abs() < 1e-12, "{pb}");
    let (lo, hi) = (
        pb["ci95"][0].as_f64().unwrap(),
        pb["ci95"][1].as_f64().unwrap(),
    );
    assert!(lo <= d && d <= hi, "{pb}");
    assert_eq!(pb["resamples"], 300);
    let res = headroom(&[&eval[..], &["--paired-bootstrap", "10"]].concat(), &[]);
    assert_user_error(
        &res,
        "--head-mask",
        "a paired bootstrap without a head mask",
    );
}
