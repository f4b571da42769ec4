//! AdamW against a CPU transcription of torch.optim.AdamW, and the squared-norm reduction.

mod common;
use common::*;
use headroom::kernels::{adamw_step, sum_squares, AdamW};

#[test]
fn adamw_matches_torch_semantics_over_several_steps() {
    let g = gpu();
    let mut rng = Rng::new(21);
    let n = 1001;
    let p0 = rng.vec(n, 1.0);
    let opt = AdamW {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        weight_decay: 0.1,
    };
    let (param, m1, m2) = (
        g.upload_f32("p", &p0).unwrap(),
        g.upload_f32("m1", &vec![0.0; n]).unwrap(),
        g.upload_f32("m2", &vec![0.0; n]).unwrap(),
    );
    let (mut p, mut m, mut v) = (
        p0.iter().map(|&x| x as f64).collect::<Vec<_>>(),
        vec![0f64; n],
        vec![0f64; n],
    );
    let scale = 0.5f32;
    for step in 1..=3u32 {
        let grad = rng.vec(n, 2.0);
        let tg = g.upload_f32("g", &grad).unwrap();
        let mut rec = g.recorder();
        adamw_step(&mut rec, &opt, step, scale, &param, &tg, &m1, &m2);
        rec.finish();
        let (b1, b2, lr) = (opt.beta1 as f64, opt.beta2 as f64, opt.lr as f64);
        let (bc1, bc2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
        for i in 0..n {
            let gi = grad[i] as f64 * scale as f64;
            p[i] *= 1.0 - lr * opt.weight_decay as f64;
            m[i] = b1 * m[i] + (1.0 - b1) * gi;
            v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
            p[i] -= lr / bc1 * m[i] / (v[i].sqrt() / bc2.sqrt() + opt.eps as f64);
        }
        let want: Vec<f32> = p.iter().map(|&x| x as f32).collect();
        assert_close(
            &format!("adamw step {step}"),
            &g.read_f32(&param),
            &want,
            1e-6,
            1e-5,
        );
    }
}

#[test]
fn sum_squares_over_awkward_sizes() {
    let g = gpu();
    let mut rng = Rng::new(22);
    // sizes around the 64-lane width and the 4096-value span of one workgroup
    let parts: Vec<Vec<f32>> = [1usize, 65, 1000, 64, 4096, 4097, 20_000]
        .iter()
        .map(|&n| rng.vec(n, 3.0))
        .collect();
    let tensors: Vec<_> = parts
        .iter()
        .map(|v| g.upload_f32("t", v).unwrap())
        .collect();
    let refs: Vec<_> = tensors.iter().collect();
    let got = sum_squares(g, &refs).unwrap();
    let want: f64 = parts.iter().flatten().map(|&x| x as f64 * x as f64).sum();
    assert!((got - want).abs() <= 1e-5 * want, "{got} vs {want}");
}
