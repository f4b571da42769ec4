//! Learned gates (issue 11) on the tiny classifier: DSP keeps exactly K heads, the run is
//! reproducible from its seed, the frozen model is left unchanged, hard-concrete's L0 penalty
//! closes heads, and bad settings are refused. The host maths (soft top-K and its gradient,
//! hard-concrete moments) are tested in `src/maths/gates.rs`.

mod common;
use common::*;
use headroom::heads::learned::{learn, GateLearner, LearnArgs, Method, Samples, Schedule};
use headroom::model::{run_forward, AdamW, ForwardOptions, Gates, HeadSpec, Model, TrainConfig};
use headroom::tasks::finetune::Optimiser;

fn setup() -> (
    &'static headroom::gpu::Gpu,
    Model,
    headroom::tasks::TaskData,
) {
    let g = gpu();
    let model = Model::load_for_gradients(g, &fixture("tiny-bert")).unwrap();
    // one folder per call: the tests run in parallel, and one writing train.tsv while another
    // reads it made the reader fail now and then
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = tempdir::TempDir::new(&format!("learned-{call}"));
    let dir = tmp.path();
    let mut s = String::from("sentence\tlabel\n");
    for ((t, _), l) in golden_texts("sentences.tsv")
        .iter()
        .zip([0, 1, 2, 2, 1, 0].iter().cycle())
    {
        s.push_str(&format!("{t}\t{l}\n"));
    }
    let path = dir.join("train.tsv");
    std::fs::write(&path, s).unwrap();
    let labels = headroom::tasks::model_labels(&model);
    let data = headroom::tasks::load(&model, &path, &labels).unwrap();
    (g, model, data)
}

fn args(method: Method, heads: usize, seed: u64) -> LearnArgs {
    LearnArgs {
        method,
        heads,
        l0_lambda: 0.0,
        seed,
        batch_size: 2,
        schedule: Schedule {
            epochs: 3,
            lr: 0.5,
            tau0: 1000.0,
            tau_final: 1e-8,
            anneal_steps: None,
            samples: Samples::PerExample,
        },
        joint: None,
    }
}

#[test]
fn dsp_keeps_exactly_k_heads_reproducibly_and_changes_no_weight() {
    let (g, model, data) = setup();
    let logits = || {
        let all = run_forward(
            g,
            &model,
            &data.examples,
            &Gates::Ones,
            &ForwardOptions::default(),
        );
        all.unwrap().logits.unwrap()
    };
    let before = logits();
    for method in [Method::Dsp, Method::DspSte] {
        for samples in [Samples::PerExample, Samples::PerBatch] {
            for k in [1, 3] {
                let mut a = args(method, k, 7);
                a.schedule.samples = samples;
                let r = learn(g, &model, &data, &a, false).unwrap();
                assert_eq!(
                    r.mask.iter().filter(|&&v| v == 1.0).count(),
                    k,
                    "{method:?} K {k}"
                );
                assert!(r.mask.iter().all(|&v| v == 0.0 || v == 1.0));
                let steps = 3 * data.len().div_ceil(2);
                assert_eq!(r.steps.len(), steps, "one step per batch per epoch");
                assert!(r
                    .steps
                    .iter()
                    .all(|s| s.loss.is_finite() && s.kept.len() == k));
                let taus: Vec<f64> = r.steps.iter().map(|s| s.tau.unwrap()).collect();
                assert_eq!(taus[0], 1000.0);
                assert!(
                    taus.windows(2).all(|w| w[1] < w[0]),
                    "τ anneals down: {taus:?}"
                );
                // the same seed gives the same logits and mask; another seed draws other noise
                let again = learn(g, &model, &data, &a, false).unwrap();
                assert_eq!(again.logits, r.logits);
                assert_eq!(again.mask, r.mask);
                let other = learn(
                    g,
                    &model,
                    &data,
                    &LearnArgs {
                        seed: 8,
                        ..a.clone()
                    },
                    false,
                );
                assert_ne!(other.unwrap().logits, r.logits);
            }
        }
    }
    let after = logits();
    assert_eq!(before, after, "a pipelined run changes no weight");
}

/// The tiny classifier loaded for training, with its own head.
fn trainable(model: &Model) -> Model {
    let spec = HeadSpec {
        task: model.task,
        labels: headroom::tasks::model_labels(model).len(),
        seed: 0,
    };
    Model::load_for_training(gpu(), &fixture("tiny-bert"), &spec).unwrap()
}

fn train_config(lr: f32, seed: u64) -> TrainConfig {
    TrainConfig {
        adamw: AdamW {
            lr,
            weight_decay: 0.01,
            ..AdamW::default()
        },
        max_grad_norm: 1.0,
        dropout: 0.1,
        seed,
        freeze_embeddings: false,
    }
}

fn tensors(g: &headroom::gpu::Gpu, m: &Model) -> Vec<(String, Vec<u8>)> {
    m.hf_tensors(g)
        .into_iter()
        .map(|t| (t.name, t.data))
        .collect()
}

#[test]
fn a_gated_step_with_every_gate_at_one_is_the_finetune_step() {
    let (g, model, data) = setup();
    let (a, b) = (trainable(&model), trainable(&model));
    let mut ta = a.trainer(g, train_config(1e-2, 3)).unwrap();
    let mut tb = b.trainer(g, train_config(1e-2, 3)).unwrap();
    let refs: Vec<_> = data.examples.iter().collect();
    let ys = data.batch_labels(&(0..data.len()).collect::<Vec<_>>());
    let lh = model.config.total_heads();
    let before = tensors(g, &a);
    let sa = a.train_step(g, &mut ta, &refs, &ys, 1e-2).unwrap();
    let ones = vec![1f32; refs.len() * lh];
    let (sb, dgates) = b
        .train_step_gated(g, &mut tb, &refs, &ys, &ones, 1e-2)
        .unwrap();
    assert_eq!(sa.loss, sb.loss);
    assert_eq!(sa.grad_norm, sb.grad_norm);
    let (after_a, after_b) = (tensors(g, &a), tensors(g, &b));
    assert_eq!(after_a, after_b, "the same step, the same weights");
    assert_ne!(after_a, before, "the step moved the weights");
    assert_eq!(dgates.len(), refs.len() * lh);
    assert!(dgates.iter().all(|v| v.is_finite()) && dgates.iter().any(|&v| v != 0.0));
}

#[test]
fn a_joint_runs_first_step_is_a_finetune_step_plus_the_logit_update() {
    let (g, model, data) = setup();
    // one batch of every example, one epoch: a single step, at the peak rate (no warm-up)
    let mut a = args(Method::Dsp, 2, 11);
    a.batch_size = data.len();
    a.schedule.epochs = 1;
    a.joint = Some(Optimiser {
        lr: 1e-2,
        warmup_ratio: 0.0,
        weight_decay: 0.01,
        max_grad_norm: 1.0,
        dropout: Some(0.1),
        freeze_embeddings: false,
    });
    let joint = trainable(&model);
    let before = tensors(g, &joint);
    let r = learn(g, &joint, &data, &a, false).unwrap();
    assert_eq!(r.steps.len(), 1);
    // by hand: the learner's first draw, one gated finetune step, the logits' update
    let by_hand = trainable(&model);
    let lengths: Vec<usize> = data.examples.iter().map(|e| e.ids.len()).collect();
    let batches = headroom::model::batch::plan_for(g, &by_hand, &lengths, a.batch_size).unwrap();
    assert_eq!(batches.len(), 1);
    let refs: Vec<_> = batches[0].iter().map(|&i| &data.examples[i]).collect();
    let ys = data.batch_labels(&batches[0]);
    let mut learner = GateLearner::new(&by_hand, &a).unwrap();
    let draw = learner.draw(refs.len(), a.schedule.tau0);
    assert!(
        draw.gates.iter().any(|&v| v != 0.0 && v != 1.0),
        "soft gates at τ₀"
    );
    let mut tr = by_hand.trainer(g, train_config(1e-2, 11)).unwrap();
    let (stats, dgates) = by_hand
        .train_step_gated(g, &mut tr, &refs, &ys, &draw.gates, 1e-2)
        .unwrap();
    learner.update(0, &draw, stats.loss, &dgates, 1.0).unwrap();
    let want = learner.finish();
    let after = tensors(g, &joint);
    assert_eq!(
        after,
        tensors(g, &by_hand),
        "the weights of a finetune step"
    );
    assert_ne!(after, before, "the joint step trained the weights");
    assert_eq!(r.logits, want.logits, "the logits of the same update");
    assert!(r.logits.iter().all(|&w| w != 0.0), "every logit moved");
    assert_eq!(r.steps[0].loss, stats.loss);
}

#[test]
fn hard_concrete_l0_penalty_closes_heads() {
    let (g, model, data) = setup();
    let open = learn(g, &model, &data, &args(Method::HardConcrete, 0, 3), false).unwrap();
    let mut strong = args(Method::HardConcrete, 0, 3);
    strong.l0_lambda = 50.0;
    strong.schedule.epochs = 20;
    let closed = learn(g, &model, &data, &strong, false).unwrap();
    let kept = |m: &[f32]| m.iter().filter(|&&v| v == 1.0).count();
    assert_eq!(
        kept(&open.mask),
        4,
        "without a penalty every head stays open"
    );
    assert!(
        kept(&closed.mask) < 4,
        "λ = 50 closes heads: {:?}",
        closed.mask
    );
    assert!(closed.steps.iter().all(|s| s.tau.is_none()));
}

#[test]
fn bad_settings_are_refused_with_the_flag_named() {
    let (g, model, data) = setup();
    let with = |mut a: LearnArgs, f: &dyn Fn(&mut LearnArgs)| {
        f(&mut a);
        a
    };
    let cases: Vec<(LearnArgs, &str)> = vec![
        (args(Method::Dsp, 0, 0), "--heads 0"),
        (args(Method::Dsp, 5, 0), "--heads 5"),
        (
            with(args(Method::Dsp, 2, 0), &|a| a.schedule.tau0 = 0.0),
            "--tau0",
        ),
        (
            with(args(Method::Dsp, 2, 0), &|a| a.schedule.tau_final = 2000.0),
            "--tau-final 2000",
        ),
        (
            with(args(Method::HardConcrete, 0, 0), &|a| a.l0_lambda = -1.0),
            "--l0-lambda",
        ),
    ];
    for (a, flag) in cases {
        let e = learn(g, &model, &data, &a, false)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains(flag), "{flag}: {e}");
    }
}
