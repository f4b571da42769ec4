//! Backward kernels against the CPU reference and against central finite differences of an
//! f64 CPU forward, on random inputs with awkward sizes; outputs poisoned before each run.

mod common;
use common::*;
use headroom::gpu::{AttnBwdVariant, MatmulVariant, Tensor};
use headroom::kernels::attention_backward;
use headroom::kernels::*;

fn poisoned(len: usize) -> Tensor {
    let g = gpu();
    let t = g.empty("out", len).unwrap();
    g.fill_f32(&t, f32::NAN);
    t
}

/// Central finite difference of `f` at `x` along coordinate `i`.
fn fd(f: &dyn Fn(&[f64]) -> f64, x: &[f64], i: usize, h: f64) -> f64 {
    let mut a = x.to_vec();
    a[i] += h;
    let up = f(&a);
    a[i] -= 2.0 * h;
    (up - f(&a)) / (2.0 * h)
}

fn ln_f64(x: &[f64], gamma: &[f64], beta: &[f64], eps: f64) -> Vec<f64> {
    let h = x.len() as f64;
    let mean = x.iter().sum::<f64>() / h;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / h;
    let rstd = 1.0 / (var + eps).sqrt();
    x.iter()
        .enumerate()
        .map(|(i, v)| (v - mean) * rstd * gamma[i] + beta[i])
        .collect()
}

#[test]
fn layernorm_backward_matches_finite_differences() {
    let g = gpu();
    let mut rng = Rng::new(11);
    for &(rows, h) in &[(1usize, 3usize), (4, 37), (3, 384)] {
        let x = rng.vec(rows * h, 2.0);
        let dy = rng.vec(rows * h, 1.0);
        let gm: Vec<f32> = rng.vec(h, 0.5).iter().map(|v| 1.0 + v).collect();
        let bt = rng.vec(h, 0.5);
        let eps = 1e-12;
        // the forward's input is x + res: split x into two random parts
        let part = rng.vec(rows * h, 1.0);
        let rest: Vec<f32> = x.iter().zip(&part).map(|(a, b)| a - b).collect();
        let x: Vec<f32> = part.iter().zip(&rest).map(|(a, b)| a + b).collect();
        let (tx, tr) = (
            g.upload_f32("x", &part).unwrap(),
            g.upload_f32("res", &rest).unwrap(),
        );
        let (tdy, tg) = (
            g.upload_f32("dy", &dy).unwrap(),
            g.upload_f32("g", &gm).unwrap(),
        );
        let dx = poisoned(rows * h);
        let mut rec = g.recorder();
        ln_backward(
            &mut rec,
            &tx,
            &tr,
            &tdy,
            &tg,
            eps,
            rows as u32,
            h as u32,
            &dx,
        );
        rec.finish();
        let got = g.read_f32(&dx);
        let g64: Vec<f64> = gm.iter().map(|&v| v as f64).collect();
        let b64: Vec<f64> = bt.iter().map(|&v| v as f64).collect();
        let mut want = Vec::new();
        for r in 0..rows {
            let xr: Vec<f64> = x[r * h..(r + 1) * h].iter().map(|&v| v as f64).collect();
            let dyr = &dy[r * h..(r + 1) * h];
            let loss = |v: &[f64]| {
                ln_f64(v, &g64, &b64, eps as f64)
                    .iter()
                    .zip(dyr)
                    .map(|(a, b)| a * *b as f64)
                    .sum::<f64>()
            };
            for i in 0..h {
                want.push(fd(&loss, &xr, i, 1e-5) as f32);
            }
        }
        assert_close(
            &format!("ln_backward rows={rows} h={h}"),
            &got,
            &want,
            1e-4,
            1e-3,
        );
    }
}

#[test]
fn activation_backwards_match_finite_differences() {
    // 1000 runs the vec4 entry points, 1001 the scalar ones
    for n in [1000, 1001] {
        activation_backwards_at(n);
    }
}

fn activation_backwards_at(n: usize) {
    let g = gpu();
    let mut rng = Rng::new(12);
    let x = rng.vec(n, 4.0);
    let dy = rng.vec(n, 1.0);
    let (tx, tdy) = (
        g.upload_f32("x", &x).unwrap(),
        g.upload_f32("dy", &dy).unwrap(),
    );
    let dx = poisoned(n);
    let mut rec = g.recorder();
    gelu_backward(&mut rec, Gelu::Erf, &tx, &tdy, n as u32, &dx);
    rec.finish();
    let want: Vec<f32> = (0..n)
        .map(|i| {
            let f = |v: &[f64]| gelu(v[0]);
            (fd(&f, &[x[i] as f64], 0, 1e-4) * dy[i] as f64) as f32
        })
        .collect();
    assert_close("gelu_backward", &g.read_f32(&dx), &want, 2e-5, 1e-4);

    // the tanh form, forward and backward
    let (y, dx) = (poisoned(n), poisoned(n));
    let mut rec = g.recorder();
    gelu_forward(&mut rec, Gelu::Tanh, &tx, n as u32, &y);
    gelu_backward(&mut rec, Gelu::Tanh, &tx, &tdy, n as u32, &dx);
    rec.finish();
    let want_y: Vec<f32> = x.iter().map(|&v| gelu_tanh(v as f64) as f32).collect();
    assert_close("gelu_forward (tanh)", &g.read_f32(&y), &want_y, 1e-6, 1e-5);
    let want: Vec<f32> = (0..n)
        .map(|i| {
            let f = |v: &[f64]| gelu_tanh(v[0]);
            (fd(&f, &[x[i] as f64], 0, 1e-4) * dy[i] as f64) as f32
        })
        .collect();
    assert_close("gelu_backward (tanh)", &g.read_f32(&dx), &want, 2e-5, 1e-4);

    let y: Vec<f32> = x.iter().map(|v| v.tanh()).collect();
    let ty = g.upload_f32("y", &y).unwrap();
    let dx = poisoned(n);
    let mut rec = g.recorder();
    tanh_backward(&mut rec, &ty, &tdy, n as u32, &dx);
    rec.finish();
    let want: Vec<f32> = (0..n)
        .map(|i| (fd(&|v: &[f64]| v[0].tanh(), &[x[i] as f64], 0, 1e-5) * dy[i] as f64) as f32)
        .collect();
    assert_close("tanh_backward", &g.read_f32(&dx), &want, 2e-5, 1e-4);

    // ReLU from its output: x is continuous, so no sample sits on the kink
    let y: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
    assert!(y.contains(&0.0) && y.iter().any(|&v| v > 0.0));
    let ty = g.upload_f32("y", &y).unwrap();
    let dx = poisoned(n);
    let mut rec = g.recorder();
    relu_backward(&mut rec, &ty, &tdy, n as u32, &dx);
    rec.finish();
    let want: Vec<f32> = (0..n)
        .map(|i| (fd(&|v: &[f64]| v[0].max(0.0), &[x[i] as f64], 0, 1e-5) * dy[i] as f64) as f32)
        .collect();
    assert_close("relu_backward", &g.read_f32(&dx), &want, 2e-5, 1e-4);
}

#[test]
fn cross_entropy_matches_finite_differences_and_ignores_minus_100() {
    let g = gpu();
    let mut rng = Rng::new(13);
    for &(rows, classes) in &[(1usize, 2usize), (70, 3), (9, 9)] {
        let logits = rng.vec(rows * classes, 3.0);
        let labels: Vec<i32> = (0..rows)
            .map(|r| {
                if r % 4 == 3 {
                    -100
                } else {
                    rng.below(classes as u32) as i32
                }
            })
            .collect();
        let scale = 0.5f32;
        let tl = g.upload_f32("logits", &logits).unwrap();
        let ty = g
            .upload_u32(
                "labels",
                &labels.iter().map(|&v| v as u32).collect::<Vec<_>>(),
            )
            .unwrap();
        let (loss, dl) = (poisoned(rows), poisoned(rows * classes));
        let mut rec = g.recorder();
        cross_entropy(
            &mut rec,
            &tl,
            &ty,
            rows as u32,
            classes as u32,
            scale,
            &loss,
            &dl,
        );
        rec.finish();
        let (got_loss, got_d) = (g.read_f32(&loss), g.read_f32(&dl));
        let mut want_loss = Vec::new();
        let mut want_d = Vec::new();
        for r in 0..rows {
            let row: Vec<f64> = logits[r * classes..(r + 1) * classes]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let y = labels[r];
            let ce = |v: &[f64]| {
                if y < 0 {
                    return 0.0;
                }
                let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                m + v.iter().map(|a| (a - m).exp()).sum::<f64>().ln() - v[y as usize]
            };
            want_loss.push(ce(&row) as f32);
            for c in 0..classes {
                want_d.push((scale as f64 * fd(&ce, &row, c, 1e-5)) as f32);
            }
        }
        assert_close(
            &format!("cross_entropy loss rows={rows} C={classes}"),
            &got_loss,
            &want_loss,
            1e-5,
            1e-5,
        );
        assert_close(
            &format!("cross_entropy dlogits rows={rows} C={classes}"),
            &got_d,
            &want_d,
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn matmul_input_gradient_through_the_transposed_weight() {
    // dX = dY·W for y = x·Wᵀ + b: a matmul of dY against Wᵀ kept in Linear layout.
    let g = gpu();
    let mut rng = Rng::new(14);
    for &(m, n, k) in &[(1usize, 1usize, 1usize), (33, 70, 20), (130, 96, 384)] {
        let x = rng.vec(m * k, 1.0);
        let w = rng.vec(n * k, 0.5);
        let dy = rng.vec(m * n, 1.0);
        let wt = LinearWeight::with_transpose(g, "w", &w, n, k).unwrap();
        let tdy = g.upload_f32("dy", &dy).unwrap();
        // reference: dX[i, c] = sum_j dY[i, j] W[j, c], checked against FD of the f64 forward
        let mut want = vec![0f32; m * k];
        for i in 0..m {
            for c in 0..k {
                want[i * k + c] = (0..n)
                    .map(|j| dy[i * n + j] as f64 * w[j * k + c] as f64)
                    .sum::<f64>() as f32;
            }
        }
        let row0: Vec<f64> = x[..k].iter().map(|&v| v as f64).collect();
        let loss = |v: &[f64]| {
            (0..n)
                .map(|j| dy[j] as f64 * (0..k).map(|c| v[c] * w[j * k + c] as f64).sum::<f64>())
                .sum::<f64>()
        };
        for (c, &wc) in want.iter().enumerate().take(k.min(8)) {
            let f = fd(&loss, &row0, c, 1e-3);
            assert!(
                (f as f32 - wc).abs() < 1e-4 * (1.0 + f.abs() as f32),
                "FD {f} vs {wc}"
            );
        }
        for variant in [MatmulVariant::Tiled, MatmulVariant::Texture] {
            let dx = poisoned(m * k);
            let mut rec = g.recorder();
            let out = MatmulOut::default();
            input_grad_variant(&mut rec, &tdy, &wt, m as u32, &dx, out, variant);
            rec.finish();
            assert_close(
                &format!("dX {variant:?} m={m} n={n} k={k}"),
                &g.read_f32(&dx),
                &want,
                2e-5 * (n as f32).sqrt(),
                1e-4,
            );
        }
    }
}

/// f64 forward of the gated attention: out [B*T, H].
#[allow(clippy::too_many_arguments)]
fn attn_f64(
    qkv: &[f64],
    gates: &[f64],
    lens: &[u32],
    b: usize,
    t: usize,
    heads: usize,
    d: usize,
    layer: usize,
    nl: usize,
) -> Vec<f64> {
    let hid = heads * d;
    let mut out = vec![0f64; b * t * hid];
    let scale = 1.0 / (d as f64).sqrt();
    for bi in 0..b {
        let len = lens[bi] as usize;
        for h in 0..heads {
            let gt = gates[(bi * nl + layer) * heads + h];
            for q in 0..t {
                let s: Vec<f64> = (0..len)
                    .map(|j| {
                        (0..d)
                            .map(|i| {
                                qkv[(bi * t + q) * 3 * hid + h * d + i]
                                    * qkv[(bi * t + j) * 3 * hid + hid + h * d + i]
                            })
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                for i in 0..d {
                    let o: f64 = (0..len)
                        .map(|j| {
                            (s[j] - m).exp() / z * qkv[(bi * t + j) * 3 * hid + 2 * hid + h * d + i]
                        })
                        .sum();
                    out[(bi * t + q) * hid + h * d + i] = gt * o;
                }
            }
        }
    }
    out
}

/// One way of running the attention backward.
#[derive(Clone, Copy, Debug)]
enum AttnRun {
    /// `attention_bwd_variant` with this variant.
    Variant(AttnBwdVariant),
    /// `attention_bwd_tiled` with this shape.
    Tiled(attention_backward::TiledShape),
}

/// Every variant, plus tiled shapes other than the default (1, 2 and 8 lanes; small and
/// large workgroups) where the adapter and head_dim allow them.
fn attention_runs(fwd: &AttnArgs) -> Vec<AttnRun> {
    let g = gpu();
    let mut runs = vec![
        AttnRun::Variant(AttnBwdVariant::Storage),
        AttnRun::Variant(AttnBwdVariant::Tiled),
    ];
    if attention::texture_possible(g, fwd) {
        runs.push(AttnRun::Variant(AttnBwdVariant::Texture));
    }
    if g.tuning.subgroups {
        // the adapter has subgroups: the tiled variant must run, not fall back
        assert_eq!(
            attention_backward::effective_variant(g, fwd, AttnBwdVariant::Tiled),
            AttnBwdVariant::Tiled,
            "the tiled attention backward falls back on head_dim {}",
            fwd.head_dim
        );
        for (lanes, workgroup) in [(1, 32), (2, 64), (8, 256), (8, 32)] {
            let l = &g.limits;
            if lanes <= g.tuning.subgroup_size
                && fwd.head_dim <= 16 * lanes
                && workgroup <= l.max_compute_invocations_per_workgroup
            {
                runs.push(AttnRun::Tiled(attention_backward::TiledShape {
                    lanes,
                    workgroup,
                }));
            }
        }
    }
    runs
}

#[allow(clippy::too_many_arguments)]
fn check_attention_backward(
    rng: &mut Rng,
    lens: &[u32],
    t: usize,
    heads: usize,
    d: usize,
    gates: &[f32],
    layer: usize,
    nl: usize,
) {
    let g = gpu();
    let b = lens.len();
    let hid = heads * d;
    let qkv = rng.vec(b * t * 3 * hid, 1.0);
    let dout = rng.vec(b * t * hid, 1.0);
    let (tq, tl, tg, td) = (
        g.upload_f32("qkv", &qkv).unwrap(),
        g.upload_u32("lens", lens).unwrap(),
        g.upload_f32("gates", gates).unwrap(),
        g.upload_f32("dout", &dout).unwrap(),
    );
    let fwd = || AttnArgs {
        qkv: &tq,
        lens: &tl,
        gates: &tg,
        batch: b as u32,
        seq: t as u32,
        heads: heads as u32,
        head_dim: d as u32,
        gate_off: (layer * heads) as u32,
        gate_stride: (nl * heads) as u32,
        rel_bias: None,
    };
    let out = poisoned(b * t * hid);
    let lse = poisoned(b * heads * t);
    let mut rec = g.recorder();
    attention_fwd(&mut rec, &fwd(), &out, &lse);
    rec.finish();
    let want = attention_wants(&qkv, &dout, gates, lens, (b, t, heads, d, layer, nl));
    // the storage variant's dqkv and stats, which every other run must match element-wise
    let mut reference: Option<(Vec<f32>, Vec<f32>)> = None;
    for run in attention_runs(&fwd()) {
        let dqkv = poisoned(b * t * 3 * hid);
        let stats = poisoned(attention_backward::stats_len(&fwd()));
        let dgates = g
            .upload_f32("dgates", &vec![f32::NAN; b * nl * heads])
            .unwrap();
        let ent = g
            .upload_f32("entropy", &vec![f32::NAN; b * nl * heads])
            .unwrap();
        let tokabs = poisoned(b * nl * heads);
        let conf = poisoned(b * nl * heads);
        let mut rec = g.recorder();
        let args = AttnBackwardArgs {
            fwd: fwd(),
            out: &out,
            lse: &lse,
            dout: &td,
        };
        let outs = GateOutputs {
            dgates: &dgates,
            entropy_sum: &ent,
            token_abs: &tokabs,
            confidence_sum: &conf,
        };
        match run {
            AttnRun::Variant(v) => attention_bwd_variant(&mut rec, &args, &dqkv, &stats, &outs, v),
            AttnRun::Tiled(shape) => attention_backward::attention_bwd_tiled(
                &mut rec, &args, &dqkv, &stats, &outs, shape,
            ),
        }
        rec.finish();
        let what = format!("attention backward {run:?} lens={lens:?} t={t} heads={heads} d={d}");
        let got_dqkv = g.read_f32(&dqkv);
        let got_stats = g.read_f32(&stats);
        assert!(
            got_dqkv.iter().all(|v| v.is_finite()),
            "{what}: unwritten dqkv"
        );
        assert!(
            got_stats.iter().all(|v| v.is_finite()),
            "{what}: unwritten stats"
        );
        let got_dg = g.read_f32(&dgates);
        for &(idx, w) in &want.dgates {
            let got = got_dg[idx];
            assert!(
                (got as f64 - w).abs() <= 1e-3 * (1.0 + w.abs()),
                "{what}: dgate[{idx}] {got} vs FD {w}"
            );
        }
        for &(idx, w) in &want.dqkv {
            let got = got_dqkv[idx] as f64;
            assert!(
                (got - w).abs() <= 2e-3 * (1.0 + w.abs()),
                "{what}: dqkv[{idx}] {got} vs FD {w}"
            );
        }
        // entropy and confidence over real query tokens, Σ_t |⟨dO_t, O_t⟩| over all rows,
        // from the f64 attention probabilities (no map is kept on the device)
        let (e, tabs, cf) = (g.read_f32(&ent), g.read_f32(&tokabs), g.read_f32(&conf));
        for &(k, (we, wc, wa)) in &want.per_head {
            let close = |got: f32, w: f64, name: &str| {
                assert!(
                    (got as f64 - w).abs() <= 2e-4 * (1.0 + w.abs()),
                    "{name} {what} (gate index {k}): {got} vs {w}"
                )
            };
            close(e[k], we, "entropy");
            close(cf[k], wc, "confidence");
            close(tabs[k], wa, "token |<dO,O>|");
        }
        match &reference {
            None => reference = Some((got_dqkv, got_stats)),
            Some((rd, rs)) => {
                let n = b * heads * t;
                for (i, (x, r)) in got_dqkv.iter().zip(rd).enumerate() {
                    assert!(
                        (x - r).abs() <= 1e-4 * (1.0 + r.abs()),
                        "{what}: dqkv[{i}] {x} vs storage {r}"
                    );
                }
                for (i, (x, r)) in got_stats.iter().zip(rs).enumerate() {
                    assert!(
                        (x - r).abs() <= 1e-4 * (1.0 + r.abs()),
                        "{what}: stats plane {} row {} {x} vs storage {r}",
                        i / n,
                        i % n
                    );
                }
            }
        }
    }
}

/// What every variant must give: finite differences of the gates and of a spread of Q, K and
/// V coordinates, and per (example, head) the entropy, confidence and Σ_t |⟨dO_t, O_t⟩|.
struct AttnWants {
    dgates: Vec<(usize, f64)>,
    dqkv: Vec<(usize, f64)>,
    /// (gate index, (entropy, confidence, token |<dO,O>|))
    per_head: Vec<(usize, (f64, f64, f64))>,
}

fn attention_wants(
    qkv: &[f32],
    dout: &[f32],
    gates: &[f32],
    lens: &[u32],
    (b, t, heads, d, layer, nl): (usize, usize, usize, usize, usize, usize),
) -> AttnWants {
    // Finite differences of L = sum dout * out(qkv, gates), in f64.
    let q64: Vec<f64> = qkv.iter().map(|&v| v as f64).collect();
    let g64: Vec<f64> = gates.iter().map(|&v| v as f64).collect();
    let loss = |q: &[f64], gs: &[f64]| {
        attn_f64(q, gs, lens, b, t, heads, d, layer, nl)
            .iter()
            .zip(dout)
            .map(|(o, w)| o * *w as f64)
            .sum::<f64>()
    };
    let hid = heads * d;
    let mut w = AttnWants {
        dgates: Vec::new(),
        dqkv: Vec::new(),
        per_head: Vec::new(),
    };
    // every gate of this layer
    for bi in 0..b {
        for h in 0..heads {
            let idx = (bi * nl + layer) * heads + h;
            w.dgates
                .push((idx, fd(&|gs: &[f64]| loss(&q64, gs), &g64, idx, 1e-4)));
        }
    }
    // a spread of Q, K and V coordinates, including padded rows and keys
    let n = qkv.len();
    for s in 0..60 {
        let idx = (s * 7919 + 13) % n;
        w.dqkv
            .push((idx, fd(&|q: &[f64]| loss(q, &g64), &q64, idx, 1e-3)));
    }
    let scale = 1.0 / (d as f64).sqrt();
    let at = |bi: usize, tk: usize, part: usize, h: usize, i: usize| {
        qkv[(bi * t + tk) * 3 * hid + part * hid + h * d + i] as f64
    };
    for bi in 0..b {
        let len = lens[bi] as usize;
        for h in 0..heads {
            let (mut we, mut wc, mut wa) = (0f64, 0f64, 0f64);
            for q in 0..t {
                let s: Vec<f64> = (0..len)
                    .map(|j| {
                        (0..d)
                            .map(|i| at(bi, q, 0, h, i) * at(bi, j, 1, h, i))
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                let pr: Vec<f64> = s.iter().map(|v| (v - m).exp() / z).collect();
                let gp: f64 = (0..d)
                    .map(|i| {
                        let o: f64 = (0..len).map(|j| pr[j] * at(bi, j, 2, h, i)).sum();
                        o * dout[(bi * t + q) * hid + h * d + i] as f64
                    })
                    .sum();
                wa += gp.abs();
                if q < len {
                    we -= pr
                        .iter()
                        .map(|p| if *p > 0.0 { p * p.ln() } else { 0.0 })
                        .sum::<f64>();
                    wc += pr.iter().cloned().fold(0.0, f64::max);
                }
            }
            w.per_head
                .push(((bi * nl + layer) * heads + h, (we, wc, wa)));
        }
    }
    w
}

/// Gates of `nl` layers × `heads` heads × `b` examples cycling through 1, 0, 0.5, 0.8.
fn cycling_gates(b: usize, nl: usize, heads: usize) -> Vec<f32> {
    (0..b * nl * heads)
        .map(|i| [1.0, 0.0, 0.5, 0.8][i % 4])
        .collect()
}

#[test]
fn attention_backward_matches_finite_differences() {
    let mut rng = Rng::new(15);
    // T = 1, one head
    check_attention_backward(&mut rng, &[1], 1, 1, 32, &[1.0], 0, 1);
    // lengths of very different sizes, T not a multiple of the block, zero and fractional gates
    let lens = [21u32, 3, 1];
    let (heads, nl) = (2usize, 2usize);
    let gates = cycling_gates(lens.len(), nl, heads);
    check_attention_backward(&mut rng, &lens, 21, heads, 8, &gates, 1, nl);
    // d = 64
    check_attention_backward(&mut rng, &[5, 9], 9, 1, 64, &[0.7, 0.0], 0, 1);
}

/// Sizes aimed at the tiled variant's tiles: at d = 64 a staged tile holds 16 rows and a
/// workgroup 32 queries / keys, so T = 37 takes three tiles (the last one partial) and two
/// workgroups per head; d = 24 and d = 6 are not powers of two (6 not even a multiple of 4,
/// where the texture variant cannot run); d = 80 takes 8 lanes per row; d = 8 stages 64 rows.
#[test]
fn attention_backward_tiled_at_awkward_sizes() {
    let mut rng = Rng::new(16);
    let (heads, nl) = (3usize, 2usize);
    let lens = [37u32, 1, 20, 33];
    let gates = cycling_gates(lens.len(), nl, heads);
    check_attention_backward(&mut rng, &lens, 37, heads, 64, &gates, 0, nl);
    let lens = [17u32, 1, 9];
    let gates = cycling_gates(lens.len(), 1, 2);
    check_attention_backward(&mut rng, &lens, 17, 2, 24, &gates, 0, 1);
    let lens = [70u32, 66, 2];
    let gates = cycling_gates(lens.len(), 1, 1);
    check_attention_backward(&mut rng, &lens, 70, 1, 8, &gates, 0, 1);
    let lens = [13u32, 4];
    let gates = [0.0f32, 1.0, 0.25, 0.0];
    check_attention_backward(&mut rng, &lens, 13, 2, 6, &gates, 0, 1);
    let lens = [11u32, 25];
    let gates = cycling_gates(lens.len(), 1, 2);
    check_attention_backward(&mut rng, &lens, 25, 2, 80, &gates, 0, 1);
}

#[test]
fn weight_and_bias_gradients_match_the_reference_and_accumulate() {
    let g = gpu();
    let mut rng = Rng::new(16);
    for &(m, n, k) in &[(1usize, 1usize, 1usize), (70, 33, 20), (130, 96, 65)] {
        let x = rng.vec(m * k, 1.0);
        let dy = rng.vec(m * n, 1.0);
        let (tx, tdy) = (
            g.upload_f32("x", &x).unwrap(),
            g.upload_f32("dy", &dy).unwrap(),
        );
        let ones = g.upload_f32("ones", &vec![1.0; m]).unwrap();
        // reference, checked against FD of L = Σ dY ⊙ (X Wᵀ + b) at a few weights
        let mut want_dw = vec![0f32; n * k];
        for j in 0..n {
            for c in 0..k {
                want_dw[j * k + c] = (0..m)
                    .map(|i| dy[i * n + j] as f64 * x[i * k + c] as f64)
                    .sum::<f64>() as f32;
            }
        }
        let want_db: Vec<f32> = (0..n)
            .map(|j| (0..m).map(|i| dy[i * n + j] as f64).sum::<f64>() as f32)
            .collect();
        let w0 = vec![0f64; k];
        for (c, &wc) in want_dw.iter().enumerate().take(k.min(4)) {
            let loss = |w: &[f64]| {
                (0..m)
                    .map(|i| {
                        dy[i * n] as f64
                            * (0..k).map(|cc| x[i * k + cc] as f64 * w[cc]).sum::<f64>()
                    })
                    .sum::<f64>()
            };
            let f = fd(&loss, &w0, c, 1e-3);
            assert!(
                (f as f32 - wc).abs() <= 1e-4 * (1.0 + f.abs() as f32),
                "FD {f} vs {wc}"
            );
        }
        let dw = poisoned(n * k);
        let db = poisoned(n);
        let mut rec = g.recorder();
        let kk = k as u32;
        weight_grad(&mut rec, &tdy, &tx, kk, m as u32, n as u32, kk, false, &dw);
        bias_grad(&mut rec, &tdy, &ones, m as u32, n as u32, false, &db);
        rec.finish();
        let tol = 2e-5 * (m as f32).sqrt();
        assert_close(
            &format!("dW m={m} n={n} k={k}"),
            &g.read_f32(&dw),
            &want_dw,
            tol,
            1e-4,
        );
        assert_close(
            &format!("db m={m} n={n}"),
            &g.read_f32(&db),
            &want_db,
            tol,
            1e-4,
        );
        // accumulating a second batch doubles them
        let mut rec = g.recorder();
        weight_grad(
            &mut rec, &tdy, &tx, k as u32, m as u32, n as u32, k as u32, true, &dw,
        );
        bias_grad(&mut rec, &tdy, &ones, m as u32, n as u32, true, &db);
        rec.finish();
        let twice = |v: &[f32]| v.iter().map(|a| 2.0 * a).collect::<Vec<f32>>();
        assert_close(
            &format!("dW accumulated m={m}"),
            &g.read_f32(&dw),
            &twice(&want_dw),
            2.0 * tol,
            1e-4,
        );
        assert_close(
            &format!("db accumulated m={m}"),
            &g.read_f32(&db),
            &twice(&want_db),
            2.0 * tol,
            1e-4,
        );
    }
}

#[test]
fn layernorm_parameter_gradients_match_finite_differences() {
    let g = gpu();
    let mut rng = Rng::new(17);
    for &(rows, h) in &[(1usize, 3usize), (70, 37), (5, 384)] {
        let xa = rng.vec(rows * h, 1.0);
        let xb = rng.vec(rows * h, 1.0);
        let dy = rng.vec(rows * h, 1.0);
        let gm: Vec<f64> = rng.vec(h, 0.5).iter().map(|v| 1.0 + *v as f64).collect();
        let bt: Vec<f64> = rng.vec(h, 0.5).iter().map(|&v| v as f64).collect();
        let eps = 1e-12;
        let u: Vec<f64> = xa
            .iter()
            .zip(&xb)
            .map(|(a, b)| *a as f64 + *b as f64)
            .collect();
        // L(γ, β) = Σ dy ⊙ LN(u; γ, β): FD over γ and β
        let loss = |gb: &[f64]| {
            (0..rows)
                .map(|r| {
                    let y = ln_f64(&u[r * h..(r + 1) * h], &gb[..h], &gb[h..], eps);
                    y.iter()
                        .zip(&dy[r * h..(r + 1) * h])
                        .map(|(a, b)| a * *b as f64)
                        .sum::<f64>()
                })
                .sum::<f64>()
        };
        let gb: Vec<f64> = gm.iter().chain(&bt).copied().collect();
        let want: Vec<f32> = (0..2 * h).map(|i| fd(&loss, &gb, i, 1e-4) as f32).collect();
        let (ta, tb, td) = (
            g.upload_f32("x", &xa).unwrap(),
            g.upload_f32("res", &xb).unwrap(),
            g.upload_f32("dy", &dy).unwrap(),
        );
        let stats = poisoned(2 * rows);
        let (dgm, dbt) = (poisoned(h), poisoned(h));
        let mut rec = g.recorder();
        ln_param_grad(
            &mut rec,
            &ta,
            &tb,
            &td,
            eps as f32,
            rows as u32,
            h as u32,
            &stats,
            false,
            &dgm,
            &dbt,
        );
        rec.finish();
        let got: Vec<f32> = g
            .read_f32(&dgm)
            .into_iter()
            .chain(g.read_f32(&dbt))
            .collect();
        assert_close(
            &format!("ln dgamma|dbeta rows={rows} h={h}"),
            &got,
            &want,
            1e-4 * (rows as f32).sqrt(),
            1e-3,
        );
    }
}

#[test]
fn dropout_is_deterministic_unbiased_and_its_own_adjoint() {
    let g = gpu();
    let mut rng = Rng::new(18);
    let n = 20_000;
    let p = 0.1f32;
    let x = rng.vec(n, 1.0);
    let dy = rng.vec(n, 1.0);
    let (tx, tdy) = (
        g.upload_f32("x", &x).unwrap(),
        g.upload_f32("dy", &dy).unwrap(),
    );
    let run = |t: &Tensor, seed: u32| {
        let y = poisoned(n);
        let mut rec = g.recorder();
        dropout(&mut rec, t, n as u32, seed, p, &y);
        rec.finish();
        g.read_f32(&y)
    };
    let (a, b, c) = (run(&tx, 7), run(&tx, 7), run(&tx, 8));
    assert_eq!(a, b, "same seed, same mask");
    assert_ne!(a, c, "another seed, another mask");
    let dropped = a.iter().filter(|v| **v == 0.0).count() as f64;
    let sd = (n as f64 * 0.1 * 0.9).sqrt();
    assert!(
        (dropped - n as f64 * 0.1).abs() < 5.0 * sd,
        "{dropped} of {n} dropped"
    );
    for (yi, xi) in a.iter().zip(&x) {
        assert!(
            *yi == 0.0 || (yi - xi / (1.0 - p)).abs() <= 1e-6,
            "{yi} vs {xi}"
        );
    }
    // backward = the same call on dy: <dy, D(x)> == <D(dy), x>
    let ddy = run(&tdy, 7);
    let lhs: f64 = dy.iter().zip(&a).map(|(u, v)| *u as f64 * *v as f64).sum();
    let rhs: f64 = ddy.iter().zip(&x).map(|(u, v)| *u as f64 * *v as f64).sum();
    assert!(
        (lhs - rhs).abs() < 1e-6 * (1.0 + lhs.abs()),
        "{lhs} vs {rhs}"
    );
    // the scalar entry (a length not a multiple of 4) draws the vec4 entry's mask
    let y = poisoned(n - 1);
    let mut rec = g.recorder();
    dropout(&mut rec, &tx, n as u32 - 1, 7, p, &y);
    rec.finish();
    assert_eq!(g.read_f32(&y), a[..n - 1]);
    // p = 0 is the identity
    let y = poisoned(n);
    let mut rec = g.recorder();
    dropout(&mut rec, &tx, n as u32, 3, 0.0, &y);
    rec.finish();
    assert_eq!(g.read_f32(&y), x);
}

#[test]
fn scatter_add_rows_sums_embedding_gradients_per_row() {
    // Embedding gradients: dWord[id] += du[r] for every token r with that id, also when the
    // table is split into chunks.
    let g = gpu();
    let mut rng = Rng::new(19);
    let (rows, width, vocab) = (300usize, 37usize, 50u32);
    let du = rng.vec(rows * width, 1.0);
    let keys: Vec<u32> = (0..rows).map(|_| rng.below(vocab)).collect();
    let start = rng.vec(vocab as usize * width, 1.0);
    let mut want: Vec<f64> = start.iter().map(|&v| v as f64).collect();
    for (r, &k) in keys.iter().enumerate() {
        for c in 0..width {
            want[k as usize * width + c] += du[r * width + c] as f64;
        }
    }
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    let tdu = g.upload_f32("du", &du).unwrap();
    // whole table, then in chunks [0, 20) and [20, 50)
    for chunks in [vec![(0u32, vocab)], vec![(0, 20), (20, 30)]] {
        let mut got = Vec::new();
        for (key0, n) in chunks {
            let part = g
                .upload_f32(
                    "table.grad",
                    &start[key0 as usize * width..(key0 + n) as usize * width],
                )
                .unwrap();
            let mut rec = g.recorder();
            scatter_add_rows(&mut rec, &tdu, &keys, key0, n, width as u32, &part).unwrap();
            rec.finish();
            got.extend(g.read_f32(&part));
        }
        assert_close("scatter_add_rows", &got, &want, 1e-5, 1e-5);
    }
}

#[test]
fn weight_textures_follow_the_buffer_after_refresh() {
    // The optimizer updates W's buffer in place; refresh() re-packs W and Wᵀ on the device, and
    // both the forward matmul and the input gradient (strided, accumulating) then see the new W.
    let g = gpu();
    let mut rng = Rng::new(15);
    let (m, n, k) = (37usize, 20usize, 44usize);
    let w0 = rng.vec(n * k, 0.5);
    let w1 = rng.vec(n * k, 0.5);
    let x = rng.vec(m * k, 1.0);
    let dy = rng.vec(m * n, 1.0);
    let lw = LinearWeight::with_transpose(g, "w", &w0, n, k).unwrap();
    g.write_f32(&lw.buffer, &w1);
    let mut rec = g.recorder();
    lw.refresh(&mut rec);
    rec.finish();
    let (tx, tdy) = (
        g.upload_f32("x", &x).unwrap(),
        g.upload_f32("dy", &dy).unwrap(),
    );
    let mut want_y = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            want_y[i * n + j] = (0..k)
                .map(|c| x[i * k + c] as f64 * w1[j * k + c] as f64)
                .sum::<f64>() as f32;
        }
    }
    // dX written with row stride 2k into a buffer pre-filled with ones, accumulating.
    let ldc = 2 * k;
    let mut want_dx = vec![1f32; m * ldc];
    for i in 0..m {
        for c in 0..k {
            want_dx[i * ldc + c] += (0..n)
                .map(|j| dy[i * n + j] as f64 * w1[j * k + c] as f64)
                .sum::<f64>() as f32;
        }
    }
    for variant in [MatmulVariant::Tiled, MatmulVariant::Texture] {
        let y = poisoned(m * n);
        let dx = g.upload_f32("dx", &vec![1f32; m * ldc]).unwrap();
        let mut rec = g.recorder();
        let args = MatmulArgs {
            a: &tx,
            w: &lw,
            bias: None,
            m: m as u32,
            lda: k as u32,
            act: Act::None,
            gather: None,
        };
        matmul_variant(&mut rec, &args, &y, variant);
        let out = MatmulOut {
            ldc: ldc as u32,
            accumulate: true,
        };
        input_grad_variant(&mut rec, &tdy, &lw, m as u32, &dx, out, variant);
        rec.finish();
        assert_close(
            &format!("y {variant:?}"),
            &g.read_f32(&y),
            &want_y,
            1e-5,
            1e-4,
        );
        assert_close(
            &format!("dX {variant:?}"),
            &g.read_f32(&dx),
            &want_dx,
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn embed_sum_is_the_pre_layernorm_sum_across_word_chunks() {
    let g = gpu();
    let mut rng = Rng::new(18);
    let (vocab, h, t, b, types) = (50usize, 24usize, 7usize, 3usize, 2usize);
    let word = rng.vec(vocab * h, 1.0);
    let pos = rng.vec(16 * h, 1.0);
    let typ = rng.vec(types * h, 1.0);
    let ids: Vec<u32> = (0..b * t).map(|_| rng.below(vocab as u32)).collect();
    let tts: Vec<u32> = (0..b * t).map(|_| rng.below(types as u32)).collect();
    // the word table in chunks of 17 rows, as a table over the binding limit is split
    let chunks: Vec<(u32, u32, Tensor)> = word
        .chunks(17 * h)
        .enumerate()
        .map(|(c, rows)| {
            (
                (c * 17) as u32,
                (rows.len() / h) as u32,
                g.upload_f32("w", rows).unwrap(),
            )
        })
        .collect();
    let (tids, ttts) = (
        g.upload_u32("ids", &ids).unwrap(),
        g.upload_u32("tt", &tts).unwrap(),
    );
    let (tpos, ttyp) = (
        g.upload_f32("pos", &pos).unwrap(),
        g.upload_f32("typ", &typ).unwrap(),
    );
    let ones = g.upload_f32("gamma", &vec![1.0; h]).unwrap();
    let out = poisoned(b * t * h);
    let args = EmbedArgs {
        ids: &tids,
        type_ids: &ttts,
        word_chunks: &chunks,
        pos: &tpos,
        typ: &ttyp,
        n_types: types as u32,
        gamma: &ones,
        beta: &ones,
        eps: 1e-12,
        n_rows: (b * t) as u32,
        seq_len: t as u32,
        pos_offset: 0,
        hidden: h as u32,
    };
    let mut rec = g.recorder();
    embed_sum(&mut rec, &args, &out);
    rec.finish();
    let mut want = vec![0f32; b * t * h];
    for r in 0..b * t {
        for i in 0..h {
            want[r * h + i] =
                word[ids[r] as usize * h + i] + pos[(r % t) * h + i] + typ[tts[r] as usize * h + i];
        }
    }
    assert_close("embed_sum", &g.read_f32(&out), &want, 1e-6, 1e-6);
}
