//! Every kernel against the CPU reference on random inputs, with awkward sizes; outputs are
//! poisoned with NaN before each run so an unwritten element fails.

mod common;
use common::*;
use headroom::gpu::{MatmulVariant, Tensor};
use headroom::kernels::attention;
use headroom::kernels::attention_analysis::token_info;
use headroom::kernels::matmul::texture_variant_available;
use headroom::kernels::*;

fn poisoned(len: usize) -> Tensor {
    let g = gpu();
    let t = g.empty("out", len).unwrap();
    g.fill_f32(&t, f32::NAN);
    t
}

fn check_matmul(rng: &mut Rng, m: usize, n: usize, k: usize, lda: usize, act: Act, bias: bool) {
    let g = gpu();
    let a = rng.vec((m.max(1) - 1) * lda + k, 1.0);
    let w = rng.vec(n * k, 0.5);
    let b = rng.vec(n, 0.5);
    let ta = g.upload_f32("a", &a).unwrap();
    let tw = LinearWeight::new(g, "w", &w, n, k).unwrap();
    let tb = g.upload_f32("b", &b).unwrap();
    let want = matmul_ref(&a, lda, &w, bias.then_some(&b[..]), m, n, k, act as u32);
    for variant in [MatmulVariant::Tiled, MatmulVariant::Texture] {
        let c = poisoned(m * n);
        let mut rec = g.recorder();
        let args = MatmulArgs {
            a: &ta,
            w: &tw,
            bias: bias.then_some(&tb),
            m: m as u32,
            lda: lda as u32,
            act,
            gather: None,
        };
        matmul_variant(&mut rec, &args, &c, variant);
        rec.finish();
        let got = g.read_f32(&c);
        let what = format!("matmul {variant:?} m={m} n={n} k={k} lda={lda} {act:?} bias={bias}");
        assert_close(&what, &got, &want, 2e-5 * (k as f32).sqrt(), 1e-4);
    }
}

#[test]
fn matmul_matches_reference_on_awkward_shapes() {
    let mut rng = Rng::new(1);
    for &(m, n, k) in &[
        (1, 1, 1),
        (3, 5, 7),
        (64, 64, 16),
        (65, 63, 17),
        (130, 96, 384),
        (7, 200, 33),
        (128, 1536, 384),
        (9, 129, 6),
    ] {
        check_matmul(&mut rng, m, n, k, k, Act::None, true);
    }
    check_matmul(&mut rng, 37, 70, 50, 50, Act::Gelu, true);
    check_matmul(&mut rng, 37, 70, 50, 50, Act::GeluTanh, true);
    check_matmul(&mut rng, 37, 70, 50, 50, Act::Tanh, true);
    check_matmul(&mut rng, 37, 70, 50, 50, Act::Relu, true);
    check_matmul(&mut rng, 29, 33, 40, 40, Act::None, false);
    // strided rows, as the pooler reads each example's [CLS] row
    check_matmul(&mut rng, 5, 24, 32, 32 * 9, Act::Tanh, true);
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

fn check_attention(
    rng: &mut Rng,
    lens: &[u32],
    t: usize,
    heads: usize,
    d: usize,
    gates: &[f32],
    layer: usize,
    n_layers: usize,
) {
    let g = gpu();
    let b = lens.len();
    let hid = heads * d;
    let qkv = rng.vec(b * t * 3 * hid, 1.5);
    let (tq, tl, tg) = (
        g.upload_f32("qkv", &qkv).unwrap(),
        g.upload_u32("lens", lens).unwrap(),
        g.upload_f32("gates", gates).unwrap(),
    );
    let (want, want_lse) = attention_ref(&qkv, lens, gates, b, t, heads, d, layer, n_layers);
    for texture in [false, true] {
        let out = poisoned(b * t * hid);
        let lse = poisoned(b * heads * t);
        let mut rec = g.recorder();
        let args = AttnArgs {
            qkv: &tq,
            lens: &tl,
            gates: &tg,
            batch: b as u32,
            seq: t as u32,
            heads: heads as u32,
            head_dim: d as u32,
            gate_off: (layer * heads) as u32,
            gate_stride: (n_layers * heads) as u32,
            rel_bias: None,
        };
        let texture = texture && attention::texture_possible(g, &args);
        attention_fwd_variant(&mut rec, &args, &out, &lse, texture);
        rec.finish();
        let what = format!("attention texture={texture} lens={lens:?} t={t} heads={heads} d={d}");
        assert_close(&what, &g.read_f32(&out), &want, 2e-5, 1e-4);
        // lse is defined for heads that run; skipped heads write 0
        let got_lse = g.read_f32(&lse);
        for bi in 0..b {
            for h in 0..heads {
                let gate = gates[(bi * n_layers + layer) * heads + h];
                for q in 0..t {
                    let i = (bi * heads + h) * t + q;
                    let w = if gate == 0.0 { 0.0 } else { want_lse[i] };
                    assert!(
                        (got_lse[i] - w).abs() <= 1e-4 + 1e-5 * w.abs(),
                        "{what}: lse[{i}] {} vs {w}",
                        got_lse[i]
                    );
                }
            }
        }
    }
}

#[test]
fn attention_matches_reference() {
    let mut rng = Rng::new(2);
    // T = 1, one head, d = 32
    check_attention(&mut rng, &[1], 1, 1, 32, &[1.0], 0, 1);
    // T not a multiple of the tile; batch of very different lengths; d = 64; fractional and zero gates
    let lens = [77u32, 3, 40, 1];
    let (heads, layers) = (3usize, 2usize);
    let gates: Vec<f32> = (0..lens.len() * layers * heads)
        .map(|i| [1.0, 0.0, 0.5, 0.25, 1.0][i % 5])
        .collect();
    check_attention(&mut rng, &lens, 77, heads, 64, &gates, 1, layers);
    // d = 32, 12 heads, T spanning several query blocks
    let lens = [130u32, 129];
    let gates = vec![1.0f32; 2 * 12];
    check_attention(&mut rng, &lens, 130, 12, 32, &gates, 0, 1);
    // an odd head dim
    check_attention(&mut rng, &[9, 5], 9, 2, 20, &[1.0, 0.75, 0.0, 1.0], 0, 1);
}

#[test]
fn add_layernorm_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(3);
    for &(rows, h) in &[(1usize, 1usize), (5, 384), (3, 37), (17, 768), (2, 1000)] {
        let x = rng.vec(rows * h, 2.0);
        let r = rng.vec(rows * h, 2.0);
        let gm = rng.vec(h, 1.0);
        let bt = rng.vec(h, 1.0);
        let tx = g.upload_f32("x", &x).unwrap();
        let tr = g.upload_f32("r", &r).unwrap();
        let tg = g.upload_f32("g", &gm).unwrap();
        let tb = g.upload_f32("b", &bt).unwrap();
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
        let mut want = Vec::new();
        for i in 0..rows {
            let v: Vec<f64> = (0..h)
                .map(|j| x[i * h + j] as f64 + r[i * h + j] as f64)
                .collect();
            want.extend(layernorm_ref(&v, &gm, &bt, 1e-12));
        }
        // h = 1 normalises to exactly beta
        assert_close(
            &format!("add_ln rows={rows} h={h}"),
            &g.read_f32(&out),
            &want,
            2e-5,
            1e-4,
        );
    }
}

#[test]
fn embed_layernorm_matches_reference_with_a_chunked_table() {
    let g = gpu();
    let mut rng = Rng::new(4);
    let (vocab, h, npos, ntypes) = (50usize, 48usize, 16usize, 2usize);
    let (b, t) = (3usize, 7usize);
    let word = rng.vec(vocab * h, 1.0);
    let pos = rng.vec(npos * h, 1.0);
    let typ = rng.vec(ntypes * h, 1.0);
    let gm = rng.vec(h, 1.0);
    let bt = rng.vec(h, 1.0);
    let ids: Vec<u32> = (0..b * t).map(|_| rng.below(vocab as u32)).collect();
    let tts: Vec<u32> = (0..b * t).map(|_| rng.below(ntypes as u32)).collect();
    // positions from 0 (BERT) and from padding_idx + 1 (RoBERTa)
    for offset in [0usize, 2] {
        let mut want = Vec::new();
        for r in 0..b * t {
            let v: Vec<f64> = (0..h)
                .map(|j| {
                    word[ids[r] as usize * h + j] as f64
                        + pos[(r % t + offset) * h + j] as f64
                        + typ[tts[r] as usize * h + j] as f64
                })
                .collect();
            want.extend(layernorm_ref(&v, &gm, &bt, 1e-12));
        }
        // one chunk, and the table split into uneven chunks as for a table over the binding limit
        for splits in [vec![vocab], vec![17, 17, 16], vec![1, 48, 1]] {
            let mut chunks = Vec::new();
            let mut row0 = 0usize;
            for rows in splits {
                let t = g
                    .upload_f32("word", &word[row0 * h..(row0 + rows) * h])
                    .unwrap();
                chunks.push((row0 as u32, rows as u32, t));
                row0 += rows;
            }
            let (ti, tt) = (
                g.upload_u32("ids", &ids).unwrap(),
                g.upload_u32("tt", &tts).unwrap(),
            );
            let (tp, ty) = (
                g.upload_f32("pos", &pos).unwrap(),
                g.upload_f32("typ", &typ).unwrap(),
            );
            let (tg, tb) = (
                g.upload_f32("g", &gm).unwrap(),
                g.upload_f32("b", &bt).unwrap(),
            );
            let out = poisoned(b * t * h);
            let mut rec = g.recorder();
            let args = EmbedArgs {
                ids: &ti,
                type_ids: &tt,
                word_chunks: &chunks,
                pos: &tp,
                typ: &ty,
                n_types: ntypes as u32,
                gamma: &tg,
                beta: &tb,
                eps: 1e-12,
                n_rows: (b * t) as u32,
                seq_len: t as u32,
                pos_offset: offset as u32,
                hidden: h as u32,
            };
            embed_ln(&mut rec, &args, &out);
            rec.finish();
            assert_close(
                &format!("embed_ln chunks={} offset={offset}", chunks.len()),
                &g.read_f32(&out),
                &want,
                2e-5,
                1e-4,
            );
        }
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
    let scale = 1.0 / (d as f64).sqrt();
    for e in 0..b {
        let n = lens[e] as usize;
        for h in 0..heads {
            for i in 0..t {
                let row = (e * heads + h) * t + i;
                let mut want_s = [0f64; SIEVES];
                let mut want_w = vec![0f64; n_words];
                if i < n {
                    let q = |j: usize, part: usize, k: usize| {
                        qkv[(e * t + j) * 3 * hid + part * hid + h * d + k] as f64
                    };
                    let s: Vec<f64> = (0..n)
                        .map(|j| (0..d).map(|k| q(i, 0, k) * q(j, 1, k)).sum::<f64>() * scale)
                        .collect();
                    let mx = s.iter().cloned().fold(f64::MIN, f64::max);
                    let z: f64 = s.iter().map(|v| (v - mx).exp()).sum();
                    let prow: Vec<f64> = s.iter().map(|v| (v - mx).exp() / z).collect();
                    want_s = sieve_ref(&prow, i, &info[e * t..e * t + n]);
                    for j in 0..n {
                        if let Some(w) = word_of[e * t + j] {
                            want_w[w] += (s[j] - mx).exp() / z;
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
fn pooling_matches_reference_for_every_mode() {
    let g = gpu();
    let mut rng = Rng::new(21);
    // awkward sizes: H not a multiple of the 64 invocations, one example of length 1
    let (b, t, h) = (5usize, 9usize, 70usize);
    let x = rng.vec(b * t * h, 2.0);
    let lens: Vec<u32> = vec![9, 1, 4, 7, 2];
    let (tx, tl) = (
        g.upload_f32("x", &x).unwrap(),
        g.upload_u32("lens", &lens).unwrap(),
    );
    for mode in [
        Pooling::Mean,
        Pooling::First,
        Pooling::Max,
        Pooling::MeanSqrtLen,
    ] {
        for normalize in [false, true] {
            let want: Vec<f32> = pool_ref(&x, &lens, (b, t, h), mode, normalize)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let out = poisoned(b * h);
            let mut rec = g.recorder();
            pool(
                &mut rec,
                &tx,
                &tl,
                (b as u32, t as u32, h as u32),
                mode,
                normalize,
                &out,
            );
            rec.finish();
            let what = format!("pool {mode:?} normalize={normalize}");
            assert_close(&what, &g.read_f32(&out), &want, 1e-5, 1e-5);
        }
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

#[test]
fn gather_rows_copies_the_listed_rows() {
    let g = gpu();
    let mut rng = Rng::new(24);
    let (n, width) = (11usize, 70usize);
    let src = rng.vec(n * width, 1.0);
    let rows: Vec<u32> = vec![10, 0, 3, 3, 7];
    let out = poisoned(rows.len() * width);
    let (ts, tr) = (
        g.upload_f32("src", &src).unwrap(),
        g.upload_u32("rows", &rows).unwrap(),
    );
    let mut rec = g.recorder();
    gather_rows(&mut rec, &ts, &tr, rows.len() as u32, width as u32, &out);
    rec.finish();
    let want: Vec<f32> = rows
        .iter()
        .flat_map(|&r| src[r as usize * width..(r as usize + 1) * width].to_vec())
        .collect();
    assert_eq!(g.read_f32(&out), want);
}

#[test]
fn contrastive_loss_and_backward_match_reference_and_finite_differences() {
    let g = gpu();
    let mut rng = Rng::new(29);
    // 5 pairs, H = 37 (not a multiple of the workgroup), padded length 6, one sequence of length 1
    let (b, t, h) = (5usize, 6usize, 37usize);
    let lens: Vec<u32> = vec![6, 1, 4, 5, 2, 3, 6, 2, 4, 5];
    let x32 = rng.vec(2 * b * t * h, 1.0);
    let x: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
    let (tx, tl) = (
        g.upload_f32("x", &x32).unwrap(),
        g.upload_u32("lens", &lens).unwrap(),
    );
    for (mode, symmetric) in [
        (Pooling::Mean, false),
        (Pooling::Mean, true),
        (Pooling::First, true),
        (Pooling::MeanSqrtLen, false),
    ] {
        let args = ContrastiveArgs {
            pairs: b as u32,
            hidden: h as u32,
            seq: t as u32,
            scale: 20.0,
            symmetric,
            pooling: mode,
        };
        let (pooled, unit) = (poisoned(2 * b * h), poisoned(2 * b * h));
        let (loss, probs) = (poisoned(args.anchors()), poisoned(args.anchors() * b));
        let dx = poisoned(2 * b * t * h);
        let mut rec = g.recorder();
        let shape = ((2 * b) as u32, t as u32, h as u32);
        pool(&mut rec, &tx, &tl, shape, mode, false, &pooled);
        pool(&mut rec, &tx, &tl, shape, mode, true, &unit);
        contrastive_loss(&mut rec, &args, &unit, &loss, &probs);
        contrastive_backward(&mut rec, &args, &unit, &probs, &pooled, &tl, &dx);
        rec.finish();
        let what = format!("contrastive {mode:?} symmetric={symmetric}");
        let (want_loss, want_probs) = contrastive_ref(&x, &lens, (b, t, h), 20.0, symmetric, mode);
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
        assert_close(
            &format!("{what} loss"),
            &g.read_f32(&loss),
            &f(&want_loss),
            1e-4,
            1e-4,
        );
        assert_close(
            &format!("{what} probs"),
            &g.read_f32(&probs),
            &f(&want_probs),
            1e-5,
            1e-4,
        );
        // the total: Σ anchors, each direction weighing 1/2 when symmetric
        let weight = if symmetric { 0.5 } else { 1.0 };
        let total = |x: &[f64]| -> f64 {
            let (l, _) = contrastive_ref(x, &lens, (b, t, h), 20.0, symmetric, mode);
            weight * l.iter().sum::<f64>()
        };
        let got = g.read_f32(&dx);
        // central differences in f64 at every element of a few rows, padding included
        let mut xp = x.clone();
        let eps = 1e-5;
        for r in [0usize, 3, 6, 9] {
            for s in 0..t {
                for c in [0usize, 17, 36] {
                    let i = (r * t + s) * h + c;
                    xp[i] = x[i] + eps;
                    let up = total(&xp);
                    xp[i] = x[i] - eps;
                    let down = total(&xp);
                    xp[i] = x[i];
                    let fd = (up - down) / (2.0 * eps);
                    assert!(
                        (got[i] as f64 - fd).abs() <= 1e-4 + 1e-3 * fd.abs(),
                        "{what}: dx[{r},{s},{c}] = {} but finite differences give {fd}",
                        got[i]
                    );
                }
            }
        }
    }
}
