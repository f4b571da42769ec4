//! Learned gates (issue 11) on the tiny classifier: DSP keeps exactly K heads, the run is
//! reproducible from its seed, the frozen model is left unchanged, hard-concrete's L0 penalty
//! closes heads, and bad settings are refused. The host maths (soft top-K and its gradient,
//! hard-concrete moments) are tested in `src/maths/gates.rs`.

mod common;
use common::*;
use headroom::heads::learned::{learn, LearnArgs, Method, Samples, Schedule};
use headroom::model::{run_forward, ForwardOptions, Gates, Model};

fn setup() -> (
    &'static headroom::gpu::Gpu,
    Model,
    headroom::tasks::TaskData,
) {
    let g = gpu();
    let model = Model::load_for_gradients(g, &fixture("tiny-bert")).unwrap();
    let dir = std::env::temp_dir().join(format!("headroom-learned-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
