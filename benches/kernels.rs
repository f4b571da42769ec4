//! Criterion benches: matmul at BERT shapes and fused attention, on the adapter headroom picks
//! (set WGPU_ADAPTER_NAME to choose). Throughput is reported in FLOP/s ("elem/s" = FLOP/s).
//! Each iteration submits the dispatch and waits for the queue, so times are end to end.
//! `HEADROOM_BENCH_ALL=1` also runs the variants the adapter was not tuned for;
//! `HEADROOM_BENCH_PROFILE=1` prints GPU time per kernel (timestamp queries) at the end;
//! `HEADROOM_BENCH_SECS=S` sets every group's measurement time (a quick run on a fast GPU);
//! `HEADROOM_BENCH_RANDOM=minilm,base` adds the model group on random classifiers of those shapes.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use headroom::gpu::{AdapterChoice, AttnBwdVariant, Gpu, MatmulVariant};
use headroom::kernels::attention_backward::{attention_bwd_tiled, effective_variant, TiledShape};
use headroom::kernels::{
    attention::texture_possible, attention_bwd_variant, attention_fwd_variant, matmul_variant, Act,
    AttnArgs, AttnBackwardArgs, GateOutputs, LinearWeight, MatmulArgs,
};
use std::time::Duration;

fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

/// A group's measurement time: `default_secs`, or `HEADROOM_BENCH_SECS` when set (a short run on
/// a fast GPU, as scripts/gpu-bench.sh does).
fn measurement(default_secs: u64) -> Duration {
    let secs = std::env::var("HEADROOM_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(default_secs as f64);
    Duration::from_secs_f64(secs)
}

fn bench_matmul(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("matmul");
    group
        .sample_size(10)
        .measurement_time(measurement(8))
        .warm_up_time(Duration::from_secs(2));
    let all = std::env::var_os("HEADROOM_BENCH_ALL").is_some();
    let m = 4096usize;
    for (k, n) in [(768usize, 768usize), (768, 3072), (3072, 768)] {
        let a = gpu.upload_f32("a", &rand_vec(m * k, 1)).unwrap();
        let w = LinearWeight::new(gpu, "w", &rand_vec(n * k, 2), n, k).unwrap();
        let b = gpu.upload_f32("b", &rand_vec(n, 3)).unwrap();
        let out = gpu.empty("c", m * n).unwrap();
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        let mut variants = vec![gpu.tuning.matmul];
        if all {
            variants = vec![MatmulVariant::Tiled, MatmulVariant::Texture];
        }
        for v in variants {
            let id = format!("{v:?}/M{m}_K{k}_N{n}");
            group.bench_function(id, |bencher| {
                bencher.iter(|| {
                    let mut rec = gpu.recorder();
                    let args = MatmulArgs {
                        a: &a,
                        w: &w,
                        bias: Some(&b),
                        m: m as u32,
                        lda: k as u32,
                        act: Act::None,
                        gather: None,
                    };
                    matmul_variant(&mut rec, &args, &out, v);
                    rec.finish();
                    gpu.wait();
                })
            });
        }
    }
    group.finish();
}

/// Packing rows of a storage buffer into the texture the texture kernels read (CPU adapters);
/// throughput in bytes read.
fn bench_pack(c: &mut Criterion, gpu: &Gpu) {
    if !headroom::kernels::matmul::texture_variant_available(gpu) {
        return;
    }
    let mut group = c.benchmark_group("pack_rows");
    group
        .sample_size(10)
        .measurement_time(measurement(3))
        .warm_up_time(Duration::from_secs(1));
    let m = 4096usize;
    for k in [384usize, 1536] {
        let a = gpu.upload_f32("a", &rand_vec(m * k, 4)).unwrap();
        group.throughput(Throughput::Bytes((4 * m * k) as u64));
        group.bench_function(format!("M{m}_K{k}"), |bencher| {
            bencher.iter(|| {
                let mut rec = gpu.recorder();
                let _view = headroom::kernels::matmul::pack_rows(
                    &mut rec, &a, m as u32, k as u32, k as u32,
                );
                rec.finish();
                gpu.wait();
            })
        });
    }
    group.finish();
}

/// The row and elementwise kernels around the matmuls at B32 T128 (4096 rows): GELU forward and
/// backward over the FFN's 1536 columns, add + LayerNorm and its backward over 384. Throughput
/// in bytes read and written.
fn bench_elementwise(c: &mut Criterion, gpu: &Gpu) {
    use headroom::kernels::{add_ln, gelu_backward, gelu_forward, ln_backward, Gelu};
    let mut group = c.benchmark_group("elementwise");
    group
        .sample_size(10)
        .measurement_time(measurement(3))
        .warm_up_time(Duration::from_secs(1));
    let rows = 4096usize;
    let (h, i) = (384usize, 1536usize);
    let x = gpu.upload_f32("x", &rand_vec(rows * i, 5)).unwrap();
    let dy = gpu.upload_f32("dy", &rand_vec(rows * i, 6)).unwrap();
    let out = gpu.empty("out", rows * i).unwrap();
    let gamma = gpu.upload_f32("gamma", &rand_vec(h, 7)).unwrap();
    let beta = gpu.upload_f32("beta", &rand_vec(h, 8)).unwrap();
    let n = (rows * i) as u32;
    let timed = |group: &mut criterion::BenchmarkGroup<_>,
                 name: &str,
                 bytes: usize,
                 f: &dyn Fn(&mut headroom::gpu::Recorder)| {
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                let mut rec = gpu.recorder();
                f(&mut rec);
                rec.finish();
                gpu.wait();
            })
        });
    };
    let (bytes_i, bytes_h) = (4 * rows * i, 4 * rows * h);
    timed(
        &mut group,
        &format!("gelu_forward/R{rows}_N{i}"),
        2 * bytes_i,
        &|rec| gelu_forward(rec, Gelu::Erf, &x, n, &out),
    );
    timed(
        &mut group,
        &format!("gelu_backward/R{rows}_N{i}"),
        3 * bytes_i,
        &|rec| gelu_backward(rec, Gelu::Erf, &x, &dy, n, &out),
    );
    timed(
        &mut group,
        &format!("add_ln/R{rows}_N{h}"),
        3 * bytes_h,
        &|rec| {
            add_ln(
                rec,
                &x,
                &dy,
                &gamma,
                &beta,
                1e-12,
                rows as u32,
                h as u32,
                &out,
            )
        },
    );
    timed(
        &mut group,
        &format!("ln_backward/R{rows}_N{h}"),
        4 * bytes_h,
        &|rec| {
            ln_backward(
                rec,
                &x,
                &dy,
                &dy,
                &gamma,
                1e-12,
                rows as u32,
                h as u32,
                &out,
            )
        },
    );
    group.finish();
}

fn bench_attention(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("attention");
    group
        .sample_size(10)
        .measurement_time(measurement(8))
        .warm_up_time(Duration::from_secs(2));
    let (b, t, heads, d) = (32usize, 128usize, 12usize, 64usize);
    let hid = heads * d;
    let qkv = gpu
        .upload_f32("qkv", &rand_vec(b * t * 3 * hid, 4))
        .unwrap();
    let lens = gpu.upload_u32("lens", &vec![t as u32; b]).unwrap();
    let gates = gpu.upload_f32("gates", &vec![1.0; b * heads]).unwrap();
    let out = gpu.empty("out", b * t * hid).unwrap();
    let lse = gpu.empty("lse", b * heads * t).unwrap();
    // QK^T and PV: 2 * 2 * B * H * T * T * d
    group.throughput(Throughput::Elements((4 * b * heads * t * t * d) as u64));
    let args = AttnArgs {
        qkv: &qkv,
        lens: &lens,
        gates: &gates,
        batch: b as u32,
        seq: t as u32,
        heads: heads as u32,
        head_dim: d as u32,
        gate_off: 0,
        gate_stride: heads as u32,
        rel_bias: None,
    };
    let tuned = gpu.tuning.cpu && texture_possible(gpu, &args);
    let variants: Vec<bool> = if std::env::var_os("HEADROOM_BENCH_ALL").is_some() {
        vec![false, true]
    } else {
        vec![tuned]
    };
    for texture in variants {
        for (name, open) in [("all_heads", heads), ("half_heads_gated_off", heads / 2)] {
            let g: Vec<f32> = (0..b * heads)
                .map(|i| if i % heads < open { 1.0 } else { 0.0 })
                .collect();
            gpu.write_f32(&gates, &g);
            let v = if texture { "Texture" } else { "Tiled" };
            group.bench_function(format!("{v}/B{b}_T{t}_H{heads}_d{d}/{name}"), |bencher| {
                bencher.iter(|| {
                    let mut rec = gpu.recorder();
                    attention_fwd_variant(&mut rec, &args, &out, &lse, texture);
                    rec.finish();
                    gpu.wait();
                })
            });
        }
    }
    group.finish();
}

/// The fused attention backward at BERT-base's shape, id `attention_backward/<variant>/<shape>`:
/// the tuned variant, or under `HEADROOM_BENCH_ALL=1` every variant the adapter can run;
/// `HEADROOM_BENCH_ATTN_BWD_SHAPES=1` adds the tiled variant at other shapes
/// (`Tiled_l<lanes>_wg<workgroup>`).
fn bench_attention_backward(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("attention_backward");
    group
        .sample_size(10)
        .measurement_time(measurement(8))
        .warm_up_time(Duration::from_secs(2));
    let (b, t, heads, d) = (32usize, 128usize, 12usize, 64usize);
    let hid = heads * d;
    let qkv = gpu
        .upload_f32("qkv", &rand_vec(b * t * 3 * hid, 4))
        .unwrap();
    let lens = gpu.upload_u32("lens", &vec![t as u32; b]).unwrap();
    let gates = gpu.upload_f32("gates", &vec![1.0; b * heads]).unwrap();
    let out = gpu.empty("out", b * t * hid).unwrap();
    let lse = gpu.empty("lse", b * heads * t).unwrap();
    let dout = gpu.upload_f32("dout", &rand_vec(b * t * hid, 5)).unwrap();
    let dqkv = gpu.empty("dqkv", b * t * 3 * hid).unwrap();
    let dgates = gpu.empty("dgates", b * heads).unwrap();
    let ent = gpu.empty("entropy", b * heads).unwrap();
    let tokabs = gpu.empty("token_abs", b * heads).unwrap();
    let conf = gpu.empty("confidence", b * heads).unwrap();
    let args = || AttnArgs {
        qkv: &qkv,
        lens: &lens,
        gates: &gates,
        batch: b as u32,
        seq: t as u32,
        heads: heads as u32,
        head_dim: d as u32,
        gate_off: 0,
        gate_stride: heads as u32,
        rel_bias: None,
    };
    let stats = gpu
        .empty(
            "stats",
            headroom::kernels::attention_backward::stats_len(&args()),
        )
        .unwrap();
    let mut rec = gpu.recorder();
    attention_fwd_variant(&mut rec, &args(), &out, &lse, false);
    rec.finish();
    // QK^T twice (q and kv passes), dP = dO V^T twice, dQ, dK, dV: 7 matmul-shaped products
    group.throughput(Throughput::Elements((7 * 2 * b * heads * t * t * d) as u64));
    // the tuned variant, or every variant this adapter can run (none that would fall back)
    let tuned = effective_variant(gpu, &args(), gpu.tuning.attn_bwd);
    let variants: Vec<AttnBwdVariant> = if std::env::var_os("HEADROOM_BENCH_ALL").is_some() {
        [
            AttnBwdVariant::Storage,
            AttnBwdVariant::Texture,
            AttnBwdVariant::Tiled,
        ]
        .into_iter()
        .filter(|&v| effective_variant(gpu, &args(), v) == v)
        .collect()
    } else {
        vec![tuned]
    };
    let a = AttnBackwardArgs {
        fwd: args(),
        out: &out,
        lse: &lse,
        dout: &dout,
    };
    let outs = GateOutputs {
        dgates: &dgates,
        entropy_sum: &ent,
        token_abs: &tokabs,
        confidence_sum: &conf,
    };
    for variant in variants {
        // the shape stays the last path component (gpu_bench_report.py pairs ids by it)
        group.bench_function(format!("{variant:?}/B{b}_T{t}_H{heads}_d{d}"), |bencher| {
            bencher.iter(|| {
                let mut rec = gpu.recorder();
                attention_bwd_variant(&mut rec, &a, &dqkv, &stats, &outs, variant);
                rec.finish();
                gpu.wait();
            })
        });
    }
    // HEADROOM_BENCH_ATTN_BWD_SHAPES=1: the tiled variant at other lanes per row and
    // workgroup sizes than the default (to tune it on a GPU)
    if std::env::var_os("HEADROOM_BENCH_ATTN_BWD_SHAPES").is_some()
        && effective_variant(gpu, &args(), AttnBwdVariant::Tiled) == AttnBwdVariant::Tiled
    {
        for (lanes, workgroup) in [(4, 64), (4, 128), (4, 256), (8, 64), (8, 128), (8, 256)] {
            if lanes > gpu.tuning.subgroup_size
                || workgroup > gpu.limits.max_compute_invocations_per_workgroup
            {
                continue;
            }
            let shape = TiledShape { lanes, workgroup };
            let id = format!("Tiled_l{lanes}_wg{workgroup}/B{b}_T{t}_H{heads}_d{d}");
            group.bench_function(id, |bencher| {
                bencher.iter(|| {
                    let mut rec = gpu.recorder();
                    attention_bwd_tiled(&mut rec, &a, &dqkv, &stats, &outs, shape);
                    rec.finish();
                    gpu.wait();
                })
            });
        }
    }
    group.finish();
}

/// Forward, forward + gate backward, and one fine-tuning step of a classifier on 32 examples of
/// exactly 128 random tokens; throughput in examples/s. The default model with a classification
/// head (weights/minilm-cls from benches/make_minilm_classifier.py; skipped when missing) and,
/// random classifiers of the shapes in `HEADROOM_BENCH_RANDOM` (below).
fn bench_model(c: &mut Criterion, gpu: &Gpu) {
    let (b, t) = (32usize, 128usize);
    let ids = rand_vec(b * t, 7);
    let examples: Vec<headroom::model::Encoded> = (0..b)
        .map(|e| {
            let mut v: Vec<u32> = (0..t)
                .map(|j| 1000 + ((ids[e * t + j] + 0.5) * 20000.0) as u32)
                .collect();
            v[0] = 101;
            v[t - 1] = 102;
            headroom::model::Encoded {
                ids: v,
                type_ids: vec![0; t],
            }
        })
        .collect();
    let refs: Vec<&headroom::model::Encoded> = examples.iter().collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/minilm-cls");
    if dir.join("model.safetensors").is_file() {
        let model =
            headroom::model::Model::load_for_gradients(gpu, &dir).expect("weights/minilm-cls");
        bench_model_steps(c, gpu, "minilm", &model, &refs, 20);
    } else {
        eprintln!("skipping the minilm model benches: run `python3 benches/make_minilm_classifier.py` first");
    }
    // random checkpoints of `headroom bench`'s shapes: HEADROOM_BENCH_RANDOM=minilm,base (slow
    // on CPU adapters)
    let shapes = std::env::var("HEADROOM_BENCH_RANDOM").unwrap_or_default();
    for name in shapes.split(',').filter(|s| !s.is_empty()) {
        let shape = headroom::heads::bench::Shape::parse(name)
            .expect("HEADROOM_BENCH_RANDOM: minilm, base");
        let dir = std::env::temp_dir().join(format!("headroom-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        headroom::heads::bench::random_checkpoint(&dir, &shape, 100).unwrap();
        let model =
            headroom::model::Model::load_for_gradients(gpu, &dir).expect("random checkpoint");
        bench_model_steps(c, gpu, &format!("random_{name}"), &model, &refs, 30);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn bench_model_steps(
    c: &mut Criterion,
    gpu: &Gpu,
    name: &str,
    model: &headroom::model::Model,
    refs: &[&headroom::model::Encoded],
    secs: u64,
) {
    let (b, t) = (refs.len(), refs[0].ids.len());
    let gates = vec![1.0f32; b * model.config.total_heads()];
    let labels: Vec<i32> = (0..b as i32).map(|i| i % 2).collect();
    let mut group = c.benchmark_group("model");
    group
        .sample_size(10)
        .measurement_time(measurement(secs))
        .warm_up_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(b as u64));
    group.bench_function(format!("{name}_forward_B{b}_T{t}"), |bencher| {
        bencher.iter(|| model.forward_batch(gpu, refs, &gates, false).unwrap())
    });
    group.bench_function(
        format!("{name}_forward_gate_backward_B{b}_T{t}"),
        |bencher| bencher.iter(|| model.gate_gradients(gpu, refs, &labels, &gates).unwrap()),
    );
    // one fine-tuning step: forward with dropout, full backward, clipping, AdamW
    let cfg = headroom::model::TrainConfig {
        adamw: headroom::kernels::AdamW {
            lr: 1e-5,
            weight_decay: 0.0,
            ..Default::default()
        },
        max_grad_norm: 1.0,
        dropout: 0.1,
        seed: 1,
        freeze_embeddings: false,
    };
    let mut tr = model.trainer(gpu, cfg).unwrap();
    group.bench_function(format!("{name}_train_step_B{b}_T{t}"), |bencher| {
        bencher.iter(|| model.train_step(gpu, &mut tr, refs, &labels, 1e-5).unwrap())
    });
    group.finish();
}

/// The head-pruning grid of `headroom bench` under criterion: the default model's shape with
/// random weights, B8 T128, heads pruned per layer at random (seeded), in the dense, skip and
/// compact modes: the whole encoder and the attention blocks alone.
/// HEADROOM_BENCH_PRUNE_SHAPE=base for BERT-base's shape.
fn bench_pruning(c: &mut Criterion, gpu: &Gpu) {
    use headroom::heads::bench::{random_checkpoint, random_examples, random_mask, Shape};
    use headroom::model::{HeadSkip, Model};
    let name = std::env::var("HEADROOM_BENCH_PRUNE_SHAPE").unwrap_or_else(|_| "minilm".into());
    let shape = Shape::parse(&name).expect("minilm or base");
    let dir = std::env::temp_dir().join(format!("headroom-prune-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let src = dir.join("random");
    std::fs::create_dir_all(&src).unwrap();
    random_checkpoint(&src, &shape, 0).unwrap();
    let model = Model::load(gpu, &src).unwrap();
    let (nl, nh) = (shape.layers, shape.heads);
    let (b, t) = (8usize, 128usize);
    let examples = random_examples(b, t, model.config.vocab_size, 0);
    let refs: Vec<&headroom::model::Encoded> = examples.iter().collect();
    let mut group = c.benchmark_group(format!("pruning_{name}_B{b}_T{t}"));
    group
        .sample_size(10)
        .measurement_time(measurement(10))
        .warm_up_time(Duration::from_secs(2));
    for frac in [0.0, 0.25, 0.5, 0.75, 0.9] {
        let k = (frac * nh as f64).round() as usize;
        let mask = random_mask(nl, nh, k, 0);
        let gates: Vec<f32> = (0..b).flat_map(|_| mask.iter().copied()).collect();
        for (mode, skip) in [("dense", HeadSkip::Dense), ("skip", HeadSkip::Skip)] {
            group.bench_function(format!("encoder_{mode}_pruned{frac}"), |bencher| {
                bencher.iter(|| {
                    model
                        .forward_batch_with(gpu, &refs, &gates, false, skip)
                        .unwrap();
                    gpu.wait();
                })
            });
            group.bench_function(format!("attention_{mode}_pruned{frac}"), |bencher| {
                bencher.iter(|| {
                    model
                        .run_attention_blocks(gpu, &refs, &gates, skip)
                        .unwrap()
                })
            });
        }
        let out = dir.join(format!("compact-{k}"));
        headroom::heads::export::export(&headroom::heads::export::ExportArgs {
            model: src.clone(),
            mask: mask.clone(),
            mask_path: "(bench mask)".into(),
            out: out.clone(),
            force: true,
        })
        .unwrap();
        let small = Model::load(gpu, &out).unwrap();
        let ones = vec![1f32; b * nl * nh];
        group.bench_function(format!("encoder_compact_pruned{frac}"), |bencher| {
            bencher.iter(|| {
                small
                    .forward_batch_with(gpu, &refs, &ones, false, HeadSkip::Skip)
                    .unwrap();
                gpu.wait();
            })
        });
        group.bench_function(format!("attention_compact_pruned{frac}"), |bencher| {
            bencher.iter(|| {
                small
                    .run_attention_blocks(gpu, &refs, &ones, HeadSkip::Skip)
                    .unwrap()
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn benches(c: &mut Criterion) {
    let gpu = Gpu::new(&AdapterChoice::from_flag(None)).expect("a GPU adapter (lavapipe will do)");
    eprintln!("adapter: {}", gpu.describe());
    eprintln!("tuning: {:?}", gpu.tuning);
    // HEADROOM_BENCH_PROFILE=1: also time each kernel with timestamp queries and print the table.
    let profile = std::env::var_os("HEADROOM_BENCH_PROFILE").is_some();
    if profile {
        gpu.enable_profiling().expect("timestamp queries");
    }
    bench_matmul(c, &gpu);
    bench_pack(c, &gpu);
    bench_elementwise(c, &gpu);
    bench_attention(c, &gpu);
    bench_attention_backward(c, &gpu);
    bench_model(c, &gpu);
    bench_pruning(c, &gpu);
    if let Some(r) = gpu.profile_report() {
        eprintln!("{}", r.table());
    }
}

criterion_group!(kernel_benches, benches);
criterion_main!(kernel_benches);
