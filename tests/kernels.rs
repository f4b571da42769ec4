//! Kernels against the CPU reference on random inputs, with awkward sizes; outputs are
//! poisoned with NaN before each run so an unwritten element fails. The matmul, attention,
//! LayerNorm, embedding, pooling, row-gather and contrastive checks are `headroom selftest`'s
//! (`src/selftest/`), which `tests/selftest.rs` runs for every variant; this file holds the
//! rest (dispatch splitting, chunked tables past the binding limit, head gathers, the analysis
//! kernel, the vocabulary loss).

mod common;
use common::*;
use headroom::gpu::{MatmulVariant, Tensor};
use headroom::kernels::attention_analysis::token_info;
use headroom::kernels::matmul::texture_variant_available;
use headroom::kernels::*;
use headroom::selftest::reference::AttnShape;

fn poisoned(len: usize) -> Tensor {
    let g = gpu();
    let t = g.empty("out", len).unwrap();
    g.fill_f32(&t, f32::NAN);
    t
}

#[test]
fn lavapipe_uses_the_texture_matmul() {
    // The variant choice is per adapter: CPU adapters with subgroups of 8 get the texture path.
    let g = gpu();
    if g.tuning.cpu && texture_variant_available(g) {
        assert_eq!(g.tuning.matmul, MatmulVariant::Texture);
    } else if !g.tuning.cpu {
        assert_eq!(g.tuning.matmul, MatmulVariant::Tiled);
    }
}

#[test]
fn dispatches_past_the_per_dimension_limit_are_split() {
    // 70 000 rows is more workgroups than one dimension allows (65 535): every row must still
    // be normalised exactly once.
    let g = gpu();
    let (rows, h) = (70_000usize, 4usize);
    assert!(rows as u32 > g.limits.max_compute_workgroups_per_dimension);
    let mut rng = Rng::new(5);
    let x = rng.vec(rows * h, 2.0);
    let r = rng.vec(rows * h, 2.0);
    let (gm, bt) = (vec![1.0f32; h], vec![0.0f32; h]);
    let (tx, tr) = (
        g.upload_f32("x", &x).unwrap(),
        g.upload_f32("r", &r).unwrap(),
    );
    let (tg, tb) = (
        g.upload_f32("g", &gm).unwrap(),
        g.upload_f32("b", &bt).unwrap(),
    );
    let out = poisoned(rows * h);
    let mut rec = g.recorder();
    add_ln(
        &mut rec,
        &tx,
        &tr,
        &tg,
        &tb,
        1e-12,
        rows as u32,
        h as u32,
        &out,
    );
    rec.finish();
    let got = g.read_f32(&out);
    let mut want = Vec::with_capacity(rows * h);
    for i in 0..rows {
        let v: Vec<f64> = (0..h)
            .map(|j| x[i * h + j] as f64 + r[i * h + j] as f64)
            .collect();
        want.extend(layernorm_ref(&v, &gm, &bt, 1e-12));
    }
    assert_close("add_ln 70000 rows", &got, &want, 1e-4, 1e-4);
}

#[test]
fn split_groups_covers_every_workgroup_within_the_limit() {
    use headroom::gpu::split_groups;
    for (total, max) in [
        (1u32, 65535u32),
        (65535, 65535),
        (65536, 65535),
        (200_000, 65535),
        (15, 4),
        (999_999, 1000),
    ] {
        let (x, y) = split_groups(total, max);
        assert!(x <= max && y <= max, "{total}/{max}: ({x},{y})");
        assert!(
            (x as u64) * (y as u64) >= total as u64,
            "{total}/{max}: ({x},{y}) too few"
        );
        assert!(
            (x as u64) * (y as u64 - 1) < total as u64,
            "{total}/{max}: ({x},{y}) a wasted row"
        );
    }
}

#[test]
fn an_embedding_table_over_the_binding_limit_loads_and_runs() {
    // 250k x 768 f32 is 732 MiB; lavapipe binds at most 128 MiB. The table is split into chunks
    // of whole rows, each bound on its own, and every token is embedded by its chunk. Adapters
    // that bind 2 GiB (NVIDIA) get at least three chunks all the same, so that the chunk edges
    // are tested everywhere.
    let g = gpu();
    let (vocab, h) = (250_000usize, 768usize);
    let rows_per_chunk = ((g.max_binding() / 4) as usize / h).min(vocab.div_ceil(3));
    let value = |row: usize, col: usize| (((row * 31 + col * 17) % 1013) as f32 / 1013.0) - 0.5;
    let mut chunks = Vec::new();
    let mut row0 = 0;
    while row0 < vocab {
        let rows = rows_per_chunk.min(vocab - row0);
        let data: Vec<f32> = (0..rows * h).map(|i| value(row0 + i / h, i % h)).collect();
        chunks.push((
            row0 as u32,
            rows as u32,
            g.upload_f32("word", &data).unwrap(),
        ));
        row0 += rows;
    }
    if g.max_binding() < (vocab * h * 4) as u64 {
        assert!(chunks.len() > 1, "a table over the limit must be chunked");
    }
    let ids: Vec<u32> = vec![
        0,
        1,
        rows_per_chunk as u32 - 1,
        rows_per_chunk as u32,
        123_457,
        249_999,
    ];
    let n = ids.len();
    let mut rng = Rng::new(6);
    let pos = rng.vec(n * h, 1.0);
    let typ = rng.vec(h, 1.0);
    let (gm, bt) = (rng.vec(h, 1.0), rng.vec(h, 1.0));
    let ti = g.upload_u32("ids", &ids).unwrap();
    let tt = g.upload_u32("tt", &vec![0; n]).unwrap();
    let (tp, ty) = (
        g.upload_f32("pos", &pos).unwrap(),
        g.upload_f32("typ", &typ).unwrap(),
    );
    let (tg, tb) = (
        g.upload_f32("g", &gm).unwrap(),
        g.upload_f32("b", &bt).unwrap(),
    );
    let out = poisoned(n * h);
    let mut rec = g.recorder();
    let args = EmbedArgs {
        ids: &ti,
        type_ids: &tt,
        word_chunks: &chunks,
        pos: &tp,
        typ: &ty,
        n_types: 1,
        gamma: &tg,
        beta: &tb,
        eps: 1e-12,
        n_rows: n as u32,
        seq_len: n as u32,
        pos_offset: 0,
        hidden: h as u32,
    };
    embed_ln(&mut rec, &args, &out);
    rec.finish();
    let mut want = Vec::new();
    for (r, &id) in ids.iter().enumerate() {
        let v: Vec<f64> = (0..h)
            .map(|j| value(id as usize, j) as f64 + pos[r * h + j] as f64 + typ[j] as f64)
            .collect();
        want.extend(layernorm_ref(&v, &gm, &bt, 1e-12));
    }
    assert_close(
        "embed_ln over a chunked 250k x 768 table",
        &g.read_f32(&out),
        &want,
        1e-4,
        1e-4,
    );
}

/// The Q|K|V projection over a subset of heads (W rows gathered per section) and the output
/// projection over the same subset (W columns gathered), against products with the gathered
/// weights built on the host.
fn check_head_gather(rng: &mut Rng, m: usize, k: usize, stored: usize, d: usize, active: &[u32]) {
    let g = gpu();
    let a_n = active.len();
    let sw = stored * d;
    // Rows: W [3·sw, k], output [m, 3·a·d]
    let x = rng.vec(m * k, 1.0);
    let w = rng.vec(3 * sw * k, 0.5);
    let b = rng.vec(3 * sw, 0.5);
    let mut wg = Vec::new();
    let mut bg = Vec::new();
    for s in 0..3 {
        for &j in active {
            for e in 0..d {
                let row = s * sw + j as usize * d + e;
                wg.extend_from_slice(&w[row * k..(row + 1) * k]);
                bg.push(b[row]);
            }
        }
    }
    let n = 3 * a_n * d;
    let want = matmul_ref(&x, k, &wg, Some(&bg), m, n, k, 0);
    // Cols: W [k, sw], A [m, a·d]
    let ctx = rng.vec(m * a_n * d, 1.0);
    let wo = rng.vec(k * sw, 0.5);
    let bo = rng.vec(k, 0.5);
    let mut wog = Vec::new();
    for r in 0..k {
        for &j in active {
            let c0 = r * sw + j as usize * d;
            wog.extend_from_slice(&wo[c0..c0 + d]);
        }
    }
    let want_o = matmul_ref(&ctx, a_n * d, &wog, Some(&bo), m, k, a_n * d, 0);
    let (tx, tctx) = (
        g.upload_f32("x", &x).unwrap(),
        g.upload_f32("ctx", &ctx).unwrap(),
    );
    let tw = LinearWeight::new(g, "w", &w, 3 * sw, k).unwrap();
    let two = LinearWeight::new(g, "wo", &wo, k, sw).unwrap();
    let (tb, tbo) = (
        g.upload_f32("b", &b).unwrap(),
        g.upload_f32("bo", &bo).unwrap(),
    );
    let heads = g.upload_u32("heads", active).unwrap();
    let gather = |side| {
        Some(HeadGather {
            heads: &heads,
            side,
            active: a_n as u32,
            stored: stored as u32,
            head_dim: d as u32,
        })
    };
    for variant in [MatmulVariant::Tiled, MatmulVariant::Texture] {
        let c = poisoned(m * n);
        let co = poisoned(m * k);
        let mut rec = g.recorder();
        let rows = MatmulArgs {
            a: &tx,
            w: &tw,
            bias: Some(&tb),
            m: m as u32,
            lda: k as u32,
            act: Act::None,
            gather: gather(GatherSide::Rows),
        };
        matmul_variant(&mut rec, &rows, &c, variant);
        let cols = MatmulArgs {
            a: &tctx,
            w: &two,
            bias: Some(&tbo),
            m: m as u32,
            lda: (a_n * d) as u32,
            act: Act::None,
            gather: gather(GatherSide::Cols),
        };
        matmul_variant(&mut rec, &cols, &co, variant);
        rec.finish();
        let what = format!("{variant:?} m={m} k={k} stored={stored} d={d} heads={active:?}");
        let tol = 2e-5 * (k as f32).sqrt();
        assert_close(
            &format!("Q|K|V rows, {what}"),
            &g.read_f32(&c),
            &want,
            tol,
            1e-4,
        );
        assert_close(
            &format!("output columns, {what}"),
            &g.read_f32(&co),
            &want_o,
            tol,
            1e-4,
        );
    }
}

#[test]
fn head_gathers_match_products_with_gathered_weights() {
    let mut rng = Rng::new(11);
    check_head_gather(&mut rng, 1, 16, 1, 8, &[0]);
    check_head_gather(&mut rng, 37, 24, 5, 8, &[0, 2, 4]);
    check_head_gather(&mut rng, 70, 40, 5, 8, &[3]);
    check_head_gather(&mut rng, 19, 12, 4, 6, &[1, 2]); // d not a multiple of 4: tiled only
    check_head_gather(&mut rng, 130, 384, 12, 32, &[0, 1, 5, 6, 7, 11]);
}

#[test]
fn bias_rows_fills_every_row_with_the_bias() {
    let g = gpu();
    let mut rng = Rng::new(12);
    for &(m, n) in &[(1, 1), (65, 33), (3, 384)] {
        let b = rng.vec(n, 1.0);
        let tb = g.upload_f32("b", &b).unwrap();
        let c = poisoned(m * n);
        let mut rec = g.recorder();
        bias_rows(&mut rec, &tb, m as u32, n as u32, &c);
        rec.finish();
        let want: Vec<f32> = (0..m).flat_map(|_| b.iter().copied()).collect();
        assert_eq!(g.read_f32(&c), want, "bias_rows m={m} n={n}");
    }
}

/// The analysis kernel's per-query sieve ratios and word masses against an f64 softmax.
#[test]
fn attention_analysis_matches_reference() {
    use headroom::kernels::attention_analysis::SIEVES;
    let g = gpu();
    let mut rng = Rng::new(21);
    let (t, heads, d) = (13usize, 3usize, 8usize);
    let lens = [13u32, 1, 7, 10];
    let b = lens.len();
    let hid = heads * d;
    let qkv = rng.vec(b * t * 3 * hid, 1.5);
    // example 3 is a pair: [CLS] a a a [SEP] b b b b [SEP]; the others single sentences
    let mut info = vec![0u32; b * t];
    let mut word_of = vec![None; b * t];
    let n_words = 6usize;
    for (e, &n) in lens.iter().enumerate() {
        let n = n as usize;
        let mid = if e == 3 { Some(4) } else { None };
        let mut w = 0usize;
        for j in 0..n {
            let cls = j == 0;
            let sep = j == n - 1 || Some(j) == mid;
            let seg = mid.is_some_and(|m| j > m) as u32;
            let word = if cls || sep {
                None
            } else {
                // words of one or two sub-tokens
                let this = w.min(n_words - 1);
                if rng.below(2) == 0 {
                    w += 1;
                }
                Some(this)
            };
            word_of[e * t + j] = word;
            info[e * t + j] = token_info(word, seg, cls, sep);
        }
    }
    let tq = g.upload_f32("qkv", &qkv).unwrap();
    let tl = g.upload_u32("lens", &lens).unwrap();
    let ti = g.upload_u32("tok", &info).unwrap();
    let sieve = poisoned(b * heads * t * SIEVES);
    let words = poisoned(b * heads * t * n_words);
    let mut rec = g.recorder();
    let args = AnalysisArgs {
        qkv: &tq,
        lens: &tl,
        tokens: &ti,
        batch: b as u32,
        seq: t as u32,
        heads: heads as u32,
        head_dim: d as u32,
        n_words: n_words as u32,
        rel_bias: None,
    };
    attention_analysis(&mut rec, &args, &sieve, &words);
    rec.finish();
    let (gs, gw) = (g.read_f32(&sieve), g.read_f32(&words));
    let shape = AttnShape {
        batch: b,
        seq: t,
        heads,
        head_dim: d,
        layer: 0,
        layers: 1,
    };
    for e in 0..b {
        let n = lens[e] as usize;
        for h in 0..heads {
            for i in 0..t {
                let row = (e * heads + h) * t + i;
                let mut want_s = [0f64; SIEVES];
                let mut want_w = vec![0f64; n_words];
                if i < n {
                    let (prow, _) = shape.probabilities(&qkv, e, h, i, n);
                    want_s = sieve_ref(&prow, i, &info[e * t..e * t + n]);
                    for j in 0..n {
                        if let Some(w) = word_of[e * t + j] {
                            want_w[w] += prow[j];
                        }
                    }
                }
                for k in 0..SIEVES {
                    let got = gs[row * SIEVES + k] as f64;
                    assert!(
                        (got - want_s[k]).abs() <= 1e-4 * (1.0 + want_s[k].abs()),
                        "sieve {k} example {e} head {h} query {i}: {got} vs {}",
                        want_s[k]
                    );
                }
                for w in 0..n_words {
                    let got = gw[row * n_words + w] as f64;
                    assert!(
                        (got - want_w[w]).abs() <= 1e-5,
                        "word {w} example {e} head {h} query {i}: {got} vs {}",
                        want_w[w]
                    );
                }
            }
        }
    }
}

/// The sieve definitions on attention with known roles: uniform attention scores 1 on every
/// sieve; a ±2 band scores n / |window| on local and 0 on far delimiters; attention all on
/// [CLS] scores n on [CLS] and n / 2 on the delimiters together.
#[test]
fn sieves_of_synthetic_attention() {
    let n = 12;
    let info: Vec<u32> = (0..n)
        .map(|j| {
            token_info(
                if j == 0 || j == n - 1 {
                    None
                } else {
                    Some(j - 1)
                },
                0,
                j == 0,
                j == n - 1,
            )
        })
        .collect();
    for i in 0..n {
        let uniform = vec![1.0 / n as f64; n];
        for v in sieve_ref(&uniform, i, &info) {
            assert!((v - 1.0).abs() < 1e-12, "uniform attention, query {i}: {v}");
        }
        let window: Vec<usize> = (0..n).filter(|&j| i.abs_diff(j) <= 2).collect();
        let band: Vec<f64> = (0..n)
            .map(|j| {
                if window.contains(&j) {
                    1.0 / window.len() as f64
                } else {
                    0.0
                }
            })
            .collect();
        let s = sieve_ref(&band, i, &info);
        assert!((s[0] - n as f64 / window.len() as f64).abs() < 1e-12);
        if (3..n - 3).contains(&i) {
            assert_eq!((s[1], s[2], s[3]), (0.0, 0.0, 0.0), "query {i}");
        }
        let mut on_cls = vec![0.0; n];
        on_cls[0] = 1.0;
        let s = sieve_ref(&on_cls, i, &info);
        assert_eq!(
            (s[1], s[2], s[3], s[4]),
            (n as f64, 0.0, n as f64 / 2.0, 0.0)
        );
    }
}

#[test]
fn vocabulary_cross_entropy_over_chunks_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(23);
    // 7 rows over a vocabulary of 203 ids in chunks of 64, 64, 64 and 11 (the last narrower
    // than the workgroup); one ignored row; a tie for the argmax across two chunks
    let (rows, vocab, chunk) = (7usize, 203usize, 64usize);
    let mut logits = rng.vec(rows * vocab, 6.0);
    logits[3 * vocab + 10] = 9.5;
    logits[3 * vocab + 150] = 9.5;
    let labels: Vec<i32> = vec![0, 202, 64, 10, -100, 127, 63];
    let tl = g
        .upload_u32(
            "labels",
            &labels.iter().map(|&y| y as u32).collect::<Vec<_>>(),
        )
        .unwrap();
    let state = poisoned(VOCAB_STATE_ROWS * rows);
    let loss = poisoned(rows);
    let vl = VocabLoss {
        labels: &tl,
        state: &state,
        rows: rows as u32,
    };
    let chunk_of = |c0: usize| -> Vec<f32> {
        let w = chunk.min(vocab - c0);
        (0..rows)
            .flat_map(|r| logits[r * vocab + c0..r * vocab + c0 + w].to_vec())
            .collect()
    };
    let scale = 0.5f32;
    let mut grads = vec![0f32; rows * vocab];
    let mut rec = g.recorder();
    let chunks: Vec<(usize, Tensor)> = (0..vocab)
        .step_by(chunk)
        .map(|c0| (c0, g.upload_f32("logits", &chunk_of(c0)).unwrap()))
        .collect();
    for (c0, t) in &chunks {
        vl.fold(&mut rec, t, chunk.min(vocab - c0) as u32, *c0 as u32);
    }
    vl.finish(&mut rec, &loss);
    for (c0, t) in &chunks {
        vl.grad(&mut rec, t, chunk.min(vocab - c0) as u32, *c0 as u32, scale);
    }
    rec.finish();
    for (c0, t) in &chunks {
        let w = chunk.min(vocab - c0);
        let d = g.read_f32(t);
        for r in 0..rows {
            grads[r * vocab + c0..r * vocab + c0 + w].copy_from_slice(&d[r * w..(r + 1) * w]);
        }
    }
    let st = g.read_f32(&state);
    let (mut want_loss, mut want_grad) = (vec![0f32; rows], vec![0f32; rows * vocab]);
    for r in 0..rows {
        let row: Vec<f64> = logits[r * vocab..(r + 1) * vocab]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let m = row.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        let best = row.iter().position(|&v| v == m).unwrap();
        assert_eq!(st[4 * rows + r] as usize, best, "argmax of row {r}");
        assert!(
            (st[5 * rows + r] as f64 - lse).abs() < 1e-4,
            "lse of row {r}"
        );
        if labels[r] < 0 {
            continue;
        }
        let y = labels[r] as usize;
        want_loss[r] = (lse - row[y]) as f32;
        for (j, v) in row.iter().enumerate() {
            let onehot = if j == y { 1.0 } else { 0.0 };
            want_grad[r * vocab + j] = (scale as f64 * ((v - lse).exp() - onehot)) as f32;
        }
    }
    assert_eq!(st[4 * rows + 3] as usize, 10, "a tie goes to the lower id");
    assert_close("vocab loss", &g.read_f32(&loss), &want_loss, 1e-4, 1e-5);
    assert_close("vocab dlogits", &grads, &want_grad, 1e-6, 1e-4);
}

/// `--profile` on a CPU adapter times a dispatch by the host clock around a submission of its
/// own. lavapipe's timestamps put a GELU that follows a matmul at well under a millisecond for
/// 4 M values (hundreds of GB/s on two cores; the table summed to a fifth of the wall time):
/// the profile must account for most of the wall time of such a chain, and for no more.
#[test]
fn profiled_kernel_times_account_for_the_wall_time_on_cpu_adapters() {
    let g = headroom::gpu::Gpu::new(&headroom::gpu::AdapterChoice::from_flag(None)).unwrap();
    if !g.tuning.cpu || g.enable_profiling().is_err() {
        return; // a real GPU's timestamps time its kernels
    }
    let (m, k, n) = (1024usize, 8usize, 4096usize);
    let mut rng = Rng::new(3);
    let a = g.upload_f32("a", &rng.vec(m * k, 1.0)).unwrap();
    let w = LinearWeight::new(&g, "w", &rng.vec(n * k, 1.0), n, k).unwrap();
    let out = |label: &str| {
        let t = g.empty(label, m * n).unwrap();
        g.fill_f32(&t, f32::NAN);
        t
    };
    let (c, y) = (out("c"), out("y"));
    let rounds = 6;
    let started = std::time::Instant::now();
    let mut rec = g.recorder();
    for _ in 0..rounds {
        let args = MatmulArgs {
            a: &a,
            w: &w,
            bias: None,
            m: m as u32,
            lda: k as u32,
            act: Act::None,
            gather: None,
        };
        matmul(&mut rec, &args, &c);
        gelu_forward(&mut rec, Gelu::Erf, &c, (m * n) as u32, &y);
    }
    rec.finish();
    g.wait();
    let wall = started.elapsed().as_secs_f64();
    let report = g.profile_report().unwrap();
    let seconds = |name: &str| {
        let (_, stat) = report.kernels.iter().find(|(k, _)| k == name).unwrap();
        assert_eq!(stat.calls, rounds, "{name}");
        stat.total_ns * 1e-9
    };
    let gelu = seconds("gelu_forward");
    let total: f64 = report.kernels.iter().map(|(_, s)| s.total_ns * 1e-9).sum();
    assert!(
        total > 0.5 * wall && total <= wall && gelu > 0.1 * wall,
        "profiled {total:.4} s (GELU {gelu:.4} s) of {wall:.4} s of wall time"
    );
}
