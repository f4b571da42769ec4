//! `headroom prune` end to end on the tiny classifier: every strategy's curve, the chosen mask
//! re-evaluated by `headroom eval --head-mask`, baselines, plots and bad input.

mod common;
use common::tempdir::TempDir;
use common::*;
use std::path::Path;

/// A labelled TSV of the golden sentences (labels of the tiny 3-class model).
fn data(dir: &Path, name: &str, labels: &[usize]) -> std::path::PathBuf {
    let mut s = String::from("sentence\tlabel\n");
    for ((t, _), l) in golden_texts("sentences.tsv")
        .iter()
        .zip(labels.iter().cycle())
    {
        s.push_str(&format!("{t}\t{l}\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, s).unwrap();
    path
}

/// `headroom prune --model M --score-data S --eval-data E --out O` followed by `extra`.
fn prune_args(model: &Path, score: &Path, eval: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["prune", "--model", p(model), "--score-data", p(score)]
        .iter()
        .chain(&["--eval-data", p(eval), "--out", p(out)])
        .map(|s| s.to_string())
        .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run_args(a: &[String]) -> std::process::Output {
    headroom(&a.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn prune_strategies_trace_curves_and_choose_masks() {
    let tmp = TempDir::new("prune");
    let dir = tmp.path();
    let model = fixture("tiny-bert");
    let score = data(dir, "score.tsv", &[0, 1, 2, 2, 1, 0]);
    let eval = data(dir, "eval.tsv", &[2, 1, 0, 0, 1, 2]);
    let run = |strategy: &str, extra: &[&str]| {
        let out = dir.join(strategy);
        let mut a = vec!["--strategy", strategy, "--step", "0.25"];
        a.extend_from_slice(extra);
        let r = run_args(&prune_args(&model, &score, &eval, &out, &a));
        assert!(
            r.status.success(),
            "{strategy}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(!String::from_utf8_lossy(&r.stderr).contains("same file"));
        (out.clone(), read_json(&out.join("curve.json")))
    };
    // one-shot: 4 heads, one per step, down to none
    let (out, c) = run("oneshot", &["--baselines", "--keep", "0.5"]);
    let pts = c["curve"]["points"].as_array().unwrap();
    assert_eq!(curve_heads_kept(&c), vec![4, 3, 2, 1, 0]);
    for q in pts {
        let m: Vec<Vec<f32>> = serde_json::from_value(q["mask"].clone()).unwrap();
        assert_eq!((m.len(), m[0].len()), (2, 2));
        let ones = m.iter().flatten().filter(|&&v| v == 1.0).count() as u64;
        assert_eq!(ones, q["heads_kept"].as_u64().unwrap());
    }
    // masks are nested: once pruned, a head stays pruned
    for w in pts.windows(2) {
        let a: Vec<f32> = serde_json::from_value::<Vec<Vec<f32>>>(w[0]["mask"].clone())
            .unwrap()
            .concat();
        let b: Vec<f32> = serde_json::from_value::<Vec<Vec<f32>>>(w[1]["mask"].clone())
            .unwrap()
            .concat();
        assert!(a.iter().zip(&b).all(|(x, y)| x >= y));
    }
    let baselines: Vec<String> = c["baselines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["importance"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(baselines, vec!["random", "entropy"]);
    // the chosen point: the largest pruning whose accuracy stays >= keep × unpruned
    let base = c["unpruned_metric"].as_f64().unwrap();
    let chosen = c["chosen"].as_u64().unwrap() as usize;
    for (i, q) in pts.iter().enumerate() {
        if q["metric"].as_f64().unwrap() >= 0.5 * base {
            assert!(
                q["pruned"].as_u64() <= pts[chosen]["pruned"].as_u64(),
                "point {i}"
            );
        }
    }
    // mask.json is the chosen mask, and `eval --head-mask` reproduces its metric
    let mask: Vec<Vec<f32>> = serde_json::from_value(read_json(&out.join("mask.json"))).unwrap();
    let want: Vec<Vec<f32>> = serde_json::from_value(pts[chosen]["mask"].clone()).unwrap();
    assert_eq!(mask, want);
    let r = headroom(&[
        "eval",
        "--model",
        p(&model),
        "--data",
        p(&eval),
        "--head-mask",
        p(&out.join("mask.json")),
    ]);
    let e: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(e["accuracy"].as_f64(), pts[chosen]["metric"].as_f64());
    for f in ["curve.svg", "curve.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert!(std::fs::read_to_string(out.join("curve.svg"))
        .unwrap()
        .contains("heads kept"));

    // iterative with at least one head per layer: stops at 2 heads
    let (_, c) = run("iterative", &["--min-heads-per-layer", "1"]);
    let kept = curve_heads_kept(&c);
    assert_eq!(kept, vec![4, 3, 2]);
    // --export writes the chosen mask (here the most pruned: 2 heads) as a physically pruned
    // checkpoint that evaluates alike, and pruning it again starts from its own 2 heads
    let exported = dir.join("exported");
    let (_, c) = run(
        "iterative",
        &[
            "--min-heads-per-layer",
            "1",
            "--keep",
            "0.01",
            "--export",
            p(&exported),
        ],
    );
    let chosen = &c["curve"]["points"][c["chosen"].as_u64().unwrap() as usize];
    assert_eq!(chosen["heads_kept"].as_u64(), Some(2));
    let cfg = read_json(&exported.join("config.json"));
    assert_eq!(pruned_head_count(&cfg), 2);
    let r = headroom(&["eval", "--model", p(&exported), "--data", p(&eval)]);
    let e: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(e["accuracy"].as_f64(), chosen["metric"].as_f64());
    let again = dir.join("again");
    let r = headroom(&[
        "prune",
        "--model",
        p(&exported),
        "--score-data",
        p(&score),
        "--eval-data",
        p(&eval),
        "--step",
        "0.25",
        "--out",
        p(&again),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let c2 = read_json(&again.join("curve.json"));
    let kept = curve_heads_kept(&c2);
    assert_eq!(
        kept,
        vec![2, 1, 0],
        "a pruned checkpoint's removed heads start pruned"
    );
    assert_eq!(
        c2["curve"]["points"][0]["metric"].as_f64(),
        chosen["metric"].as_f64()
    );
    // an existing export target is refused before any work
    let r = headroom(&[
        "prune",
        "--model",
        p(&model),
        "--score-data",
        p(&score),
        "--eval-data",
        p(&eval),
        "--out",
        p(&dir.join("refused")),
        "--export",
        p(&exported),
    ]);
    assert_user_error(
        &r,
        "already exists (pass --force",
        "an existing --export target",
    );
    assert!(!dir.join("refused").exists());
    // threshold: stops at the first point below keep × unpruned
    let (_, c) = run("threshold", &["--keep", "1.0"]);
    let pts = c["curve"]["points"].as_array().unwrap();
    let base = c["unpruned_metric"].as_f64().unwrap();
    for q in &pts[..pts.len() - 1] {
        assert!(q["metric"].as_f64().unwrap() >= base);
    }
    // trials: the unpruned point plus one per k; the best on eval data is chosen
    let (_, c) = run("trials", &["--trials", "1,3"]);
    let pts = c["curve"]["points"].as_array().unwrap();
    assert_eq!(pts.len(), 3);
    let best = pts
        .iter()
        .map(|q| q["metric"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert_eq!(
        pts[c["chosen"].as_u64().unwrap() as usize]["metric"]
            .as_f64()
            .unwrap(),
        best
    );

    // bad input and the same-file warning
    let out = dir.join("bad");
    let a = prune_args(&model, &score, &eval, &out, &["--keep", "1.5"]);
    assert_user_error(&run_args(&a), "--keep 1.5", "keep outside (0, 1]");
    let a = prune_args(&model, &score, &eval, &out, &["--strategy", "trials"]);
    assert_user_error(&run_args(&a), "--trials", "trials without k");
    assert!(!out.exists());
    let same = dir.join("same");
    let r = run_args(&prune_args(
        &model,
        &score,
        &score,
        &same,
        &["--step", "0.5"],
    ));
    assert!(r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("same file"));
    assert!(!read_json(&same.join("curve.json"))["notes"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn ablation_is_the_loss_increase_of_each_head_alone() {
    use headroom::heads::importance;
    use headroom::model::{Gates, Model};
    use headroom::tasks;
    let g = gpu();
    let tmp = TempDir::new("ablation");
    let dir = tmp.path();
    let path = data(dir, "d.tsv", &[0, 1, 2, 2, 1, 0]);
    let model = Model::load_for_gradients(g, &fixture("tiny-bert")).unwrap();
    let labels = tasks::model_labels(&model);
    let split = tasks::load(&model, &path, &labels).unwrap();
    // one pass with per-example gates (examples repeated per head) ...
    let a = importance::ablation(g, &model, &split, None, 4, false).unwrap();
    // ... against one broadcast-masked evaluation per head
    let base = tasks::evaluate(g, &model, &split, &labels, &Gates::Ones, 32, false).unwrap();
    for k in 0..4 {
        let mut mask = vec![1f32; 4];
        mask[k] = 0.0;
        let m = tasks::evaluate(
            g,
            &model,
            &split,
            &labels,
            &Gates::Broadcast(mask),
            32,
            false,
        )
        .unwrap();
        let want = m.loss - base.loss;
        assert!(
            (a.increase[k] as f64 - want).abs() < 1e-5,
            "head {k}: {} vs {want}",
            a.increase[k]
        );
    }
    // under a mask, heads already off score 0 and the base is the masked model
    let mask = [1.0, 0.0, 1.0, 1.0];
    let am = importance::ablation(g, &model, &split, Some(&mask), 4, false).unwrap();
    assert_eq!(am.increase[1], 0.0);
    let base_m = tasks::evaluate(
        g,
        &model,
        &split,
        &labels,
        &Gates::Broadcast(mask.to_vec()),
        32,
        false,
    )
    .unwrap();
    let both = tasks::evaluate(
        g,
        &model,
        &split,
        &labels,
        &Gates::Broadcast(vec![1.0, 0.0, 0.0, 1.0]),
        32,
        false,
    )
    .unwrap();
    assert!((am.increase[2] as f64 - (both.loss - base_m.loss)).abs() < 1e-5);

    // prune --importance ablation reports the agreement of each gradient variant
    let out = dir.join("abl");
    let r = headroom(&[
        "prune",
        "--model",
        p(&fixture("tiny-bert")),
        "--score-data",
        p(&path),
        "--eval-data",
        p(&path),
        "--importance",
        "ablation",
        "--step",
        "0.5",
        "--out",
        p(&out),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let c = read_json(&out.join("curve.json"));
    let ag = c["agreement"].as_array().unwrap();
    assert_eq!(ag.len(), 4);
    for x in ag {
        let rho = x["spearman"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&rho));
        let has_ci = !x["ci95"].is_null();
        assert_eq!(has_ci, x["granularity"] != "batch", "{x}");
    }
}

#[test]
fn learned_strategies_keep_exactly_k_heads_and_write_their_logits() {
    let tmp = TempDir::new("prune-learned");
    let dir = tmp.path();
    let model = fixture("tiny-bert");
    let score = data(dir, "score.tsv", &[0, 1, 2, 2, 1, 0]);
    let eval = data(dir, "eval.tsv", &[2, 1, 0, 0, 1, 2]);
    let args = |strategy: &str, out: &Path, extra: &[&str]| -> Vec<String> {
        let mut a = vec!["--strategy", strategy, "--batch-size", "2", "--epochs", "2"];
        a.extend_from_slice(extra);
        prune_args(&model, &score, &eval, out, &a)
    };
    // two budgets × two seeds: every run's mask holds exactly K heads; mask.json is one of them
    let out = dir.join("dsp");
    let r = run_args(&args("dsp", &out, &["--heads", "1,3", "--seeds", "0,1"]));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let c = read_json(&out.join("curve.json"));
    let runs = c["learned"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    for (run, k) in runs.iter().zip([1, 1, 3, 3]) {
        assert_eq!(run["heads"].as_u64(), Some(k));
        assert_eq!(run["heads_kept"].as_u64(), Some(k));
        let steps = run["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 2 * 3, "2 epochs of 3 batches");
        assert!(steps.iter().all(|s| s["tau"].as_f64().unwrap() > 0.0));
    }
    let budgets = c["budgets"].as_array().unwrap();
    assert_eq!(budgets.len(), 2);
    assert!(budgets.iter().all(|b| b["seeds"].as_u64() == Some(2)));
    let mask: Vec<Vec<f32>> = serde_json::from_value(read_json(&out.join("mask.json"))).unwrap();
    let kept = mask.iter().flatten().filter(|&&v| v == 1.0).count() as u64;
    let chosen = &runs[c["chosen"].as_u64().unwrap() as usize];
    assert_eq!(Some(kept), chosen["heads_kept"].as_u64());
    let npy = std::fs::read(out.join("learned_importance.npy")).unwrap();
    assert_eq!(npy.len(), 128 + 4 * 4, "an [2, 2] f32 npy");
    for f in ["curve.svg", "curve.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // the same seed gives the same mask
    let again = dir.join("dsp-again");
    let r = run_args(&args("dsp-ste", &again, &["--heads", "2", "--seeds", "5"]));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // ... and --export writes that mask as a checkpoint with 2 heads, which evaluates alike
    let exported = dir.join("dsp-exported");
    let r = run_args(&args(
        "dsp-ste",
        &dir.join("dsp-again-2"),
        &["--heads", "2", "--seeds", "5", "--export", p(&exported)],
    ));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        read_json(&again.join("mask.json")),
        read_json(&dir.join("dsp-again-2").join("mask.json"))
    );
    let pruned = read_json(&exported.join("config.json"))["pruned_heads"].clone();
    let removed: usize = pruned
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_array().unwrap().len())
        .sum();
    assert_eq!(removed, 2, "{pruned}");
    let c = read_json(&again.join("curve.json"));
    let r = headroom(&["eval", "--model", p(&exported), "--data", p(&eval)]);
    let e: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(e["accuracy"].as_f64(), c["learned"][0]["metric"].as_f64());
    // hard-concrete: one run per λ; the report gives the count each reached
    let hc = dir.join("hc");
    let r = run_args(&args(
        "hard-concrete",
        &hc,
        &["--l0-lambda", "0,50", "--samples", "per-batch"],
    ));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let c = read_json(&hc.join("curve.json"));
    assert_eq!(c["learned"][0]["heads_kept"].as_u64(), Some(4));
    assert!(c["learned"][1]["heads_kept"].as_u64().is_some());
    // bad input: one line, exit 2, nothing written
    let bad = dir.join("bad");
    for (extra, what) in [
        (vec!["--strategy", "dsp", "--heads", "0"], "--heads 0"),
        (vec!["--strategy", "dsp", "--heads", "5"], "--heads 5"),
        (vec!["--strategy", "dsp"], "--heads K1,K2"),
        (
            vec!["--strategy", "dsp", "--heads", "2", "--tau0", "0"],
            "--tau0",
        ),
        (
            vec!["--strategy", "dsp", "--heads", "2", "--tau-final", "5000"],
            "--tau-final",
        ),
        (
            vec!["--strategy", "hard-concrete", "--l0-lambda", "-1"],
            "--l0-lambda",
        ),
        (
            vec!["--strategy", "dsp", "--heads", "2", "--samples", "each"],
            "--samples",
        ),
    ] {
        let mut a = args("oneshot", &bad, &[]);
        // the strategy given here replaces the default one above
        let at = a.iter().position(|s| s == "--strategy").unwrap();
        a.drain(at..at + 2);
        a.extend(extra.iter().map(|s| s.to_string()));
        assert_user_error(&run_args(&a), what, what);
        assert!(!bad.exists(), "{what}: nothing written");
    }
}

#[test]
fn joint_runs_train_the_weights_and_export_them() {
    let tmp = TempDir::new("prune-joint");
    let dir = tmp.path();
    let model = fixture("tiny-bert");
    let score = data(dir, "score.tsv", &[0, 1, 2, 2, 1, 0]);
    let eval = data(dir, "eval.tsv", &[2, 1, 0, 0, 1, 2]);
    let joint = [
        "--strategy",
        "dsp",
        "--joint",
        "--batch-size",
        "2",
        "--epochs",
        "2",
    ];
    let out = dir.join("joint");
    let exported = dir.join("joint-exported");
    let mut extra = joint.to_vec();
    extra.extend([
        "--heads",
        "2",
        "--weight-lr",
        "1e-2",
        "--export",
        p(&exported),
    ]);
    let r = run_args(&prune_args(&model, &score, &eval, &out, &extra));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let c = read_json(&out.join("curve.json"));
    assert_eq!(c["learned"][0]["heads_kept"].as_u64(), Some(2));
    assert!(
        !out.join(".joint-weights").exists(),
        "the staging copy is gone"
    );
    // the export holds the trained weights: they differ from the checkpoint's, and evaluate
    // as the run's mask did on them
    let table = "bert.embeddings.word_embeddings.weight";
    let raw = |dir: &Path| {
        let w = headroom::model::Weights::open(
            &dir.join("model.safetensors"),
            &headroom::model::family::BERT,
        )
        .unwrap();
        w.raw(table).unwrap().2.to_vec()
    };
    assert_ne!(raw(&model), raw(&exported), "trained embeddings exported");
    let r = headroom(&["eval", "--model", p(&exported), "--data", p(&eval)]);
    let e: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let run = &c["learned"][0];
    assert_eq!(e["accuracy"].as_f64(), run["metric"].as_f64());
    let (got, want) = (e["loss"].as_f64().unwrap(), run["loss"].as_f64().unwrap());
    assert!((got - want).abs() < 1e-5, "loss {got} against {want}");
    // refused: one line, exit 2, nothing written
    let bad = dir.join("bad");
    let minilm = default_model_dir();
    for (model, extra, what) in [
        (&minilm, vec!["--heads", "24"], "--task"),
        (
            &model,
            vec!["--heads", "2", "--seeds", "0,1", "--export", p(&bad)],
            "one seed",
        ),
        (
            &model,
            vec!["--heads", "2", "--weight-lr", "0"],
            "--weight-lr",
        ),
        (&model, vec!["--heads", "2", "--warmup", "1"], "--warmup"),
    ] {
        let mut a = joint.to_vec();
        a.extend(extra);
        assert_user_error(
            &run_args(&prune_args(model, &score, &eval, &bad, &a)),
            what,
            what,
        );
        assert!(!bad.exists(), "{what}: nothing written");
    }
    let mut a = vec!["--strategy", "oneshot", "--joint"];
    a.extend(["--batch-size", "2"]);
    assert_user_error(
        &run_args(&prune_args(&model, &score, &eval, &bad, &a)),
        "--joint",
        "oneshot",
    );
}

#[test]
fn pre_training_objectives_rank_heads_and_judge_masks() {
    let tmp = TempDir::new("prune-obj");
    let dir = tmp.path();
    let model = fixture("tiny-bert");
    let sentences = golden_path("sentences.tsv");
    let pairs = golden_path("pairs.tsv");
    let simcse = [
        "--objective",
        "simcse",
        "--mask-seed",
        "7",
        "--batch-size",
        "3",
    ];
    // the simcse importance `score` gives with the same seed and batches
    let scored = dir.join("score");
    let mut a = vec!["score", "--model", p(&model), "--data", p(&sentences)];
    a.extend(["--out", p(&scored)]);
    a.extend(simcse);
    let r = headroom(&a);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let report = read_json(&dir.join("score/report.json"));
    let ranked: Vec<f64> =
        serde_json::from_value(report["variants"]["example"]["per_layer_l2"].clone()).unwrap();
    // prune the pre-trained model by it down to 2 of 4 heads, judged by in-batch top-1 on
    // the pairs' first sentences, and export the pruned checkpoint
    let out = dir.join("simcse");
    let exported = dir.join("exported");
    let mut extra = vec!["--heads", "2", "--export", p(&exported)];
    extra.extend(simcse);
    let r = run_args(&prune_args(&model, &sentences, &pairs, &out, &extra));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let c = read_json(&out.join("curve.json"));
    assert_eq!(c["metric"], "in-batch top-1");
    assert_eq!(
        (c["objective"].as_str(), c["mask_seed"].as_u64()),
        (Some("simcse"), Some(7))
    );
    let pts = c["curve"]["points"].as_array().unwrap();
    let chosen = c["chosen"].as_u64().unwrap() as usize;
    assert_eq!(chosen, pts.len() - 1, "--heads K chooses the last point");
    assert_eq!(pts[chosen]["heads_kept"], 2);
    let mask: Vec<f32> = serde_json::from_value::<Vec<Vec<f32>>>(pts[chosen]["mask"].clone())
        .unwrap()
        .concat();
    let mut order: Vec<usize> = (0..4).collect();
    order.sort_by(|&i, &j| ranked[i].total_cmp(&ranked[j]));
    let want: Vec<f32> = (0..4)
        .map(|i| if order[..2].contains(&i) { 0.0 } else { 1.0 })
        .collect();
    assert_eq!(mask, want, "the two heads of lowest simcse importance go");
    let config = read_json(&exported.join("config.json"));
    let pruned = config["pruned_heads"].as_object().unwrap();
    assert_eq!(
        pruned.values().flat_map(|v| v.as_array().unwrap()).count(),
        2
    );
    // `eval` under the same objective and mask gives the chosen point's metric and loss
    let mask_file = out.join("mask.json");
    let mut a = vec!["eval", "--model", p(&model), "--data", p(&pairs)];
    a.extend(["--head-mask", p(&mask_file)]);
    a.extend(simcse);
    let r = headroom(&a);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let e: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(e["in_batch_top1"].as_f64(), pts[chosen]["metric"].as_f64());
    assert_eq!(e["loss"].as_f64(), pts[chosen]["loss"].as_f64());
    // the masked-LM objective on a checkpoint with that head
    let out = dir.join("mlm");
    let mlm = fixture("tiny-bert-mlm");
    let long = golden_path("long-sentences.tsv");
    let extra = [
        "--objective",
        "mlm",
        "--strategy",
        "trials",
        "--trials",
        "1,3",
    ];
    let r = run_args(&prune_args(&mlm, &long, &sentences, &out, &extra));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let c = read_json(&out.join("curve.json"));
    assert_eq!(c["metric"], "masked-token accuracy");
    let kept = curve_heads_kept(&c);
    assert_eq!(kept, vec![6, 5, 3]);
    // bad input: one line, exit 2, nothing written
    let bad = |extra: &[&str], needle: &str, what: &str| {
        let out = dir.join("bad");
        let r = run_args(&prune_args(&model, &sentences, &pairs, &out, extra));
        assert_user_error(&r, needle, what);
        assert!(!out.exists(), "{what}: no output");
    };
    let with = |more: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["--objective", "simcse"];
        v.extend(more);
        v
    };
    bad(
        &with(&["--strategy", "dsp", "--heads", "2"]),
        "need the task objective",
        "a learned strategy under simcse",
    );
    bad(
        &with(&["--importance", "ablation"]),
        "need the task objective",
        "ablation under simcse",
    );
    bad(
        &with(&["--strategy", "trials", "--trials", "1", "--heads", "2"]),
        "--heads applies to",
        "--heads with trials",
    );
    bad(
        &with(&["--heads", "1,2"]),
        "one --heads count",
        "two counts",
    );
    bad(
        &with(&["--heads", "4"]),
        "fewer than the 4 heads",
        "no head pruned",
    );
    bad(
        &with(&["--dropout", "0"]),
        "dropout",
        "simcse without dropout",
    );
    bad(
        &["--objective", "mlm"],
        "no masked-LM head",
        "mlm without its head",
    );
    std::fs::remove_dir_all(dir).ok();
}
