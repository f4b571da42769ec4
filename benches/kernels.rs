//! Criterion benches: matmul at BERT shapes and fused attention, on the adapter headroom picks
//! (set WGPU_ADAPTER_NAME to choose). Throughput is reported in FLOP/s ("elem/s" = FLOP/s).
//! Each iteration submits the dispatch and waits for the queue, so times are end to end.
//! `HEADROOM_BENCH_ALL=1` also runs the variants the adapter was not tuned for;
//! `HEADROOM_BENCH_PROFILE=1` prints GPU time per kernel (timestamp queries) at the end.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use headroom::gpu::{AdapterChoice, Gpu, MatmulVariant};
use headroom::kernels::{
    attention::texture_possible, attention_bwd, attention_fwd_variant, matmul_variant, Act,
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

fn bench_matmul(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("matmul");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
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

fn bench_attention(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("attention");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
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

fn bench_attention_backward(c: &mut Criterion, gpu: &Gpu) {
    let mut group = c.benchmark_group("attention_backward");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
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
    group.bench_function(format!("B{b}_T{t}_H{heads}_d{d}"), |bencher| {
        bencher.iter(|| {
            let mut rec = gpu.recorder();
            let a = AttnBackwardArgs {
                fwd: args(),
                out: &out,
                lse: &lse,
                dout: &dout,
            };
            attention_bwd(
                &mut rec,
                &a,
                &dqkv,
                &stats,
                &GateOutputs {
                    dgates: &dgates,
                    entropy_sum: &ent,
                    token_abs: &tokabs,
                    confidence_sum: &conf,
                },
            );
            rec.finish();
            gpu.wait();
        })
    });
    group.finish();
}

/// Forward, and forward + gate backward, of the default model with a classification head
/// (weights/minilm-cls from benches/make_minilm_classifier.py) on 32 examples of exactly 128
/// random tokens. Throughput in examples/s. Skipped when the directory is missing.
fn bench_model(c: &mut Criterion, gpu: &Gpu) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/minilm-cls");
    if !dir.join("model.safetensors").is_file() {
        eprintln!("skipping model benches: run `python3 benches/make_minilm_classifier.py` first");
        return;
    }
    let model = headroom::model::Model::load_for_gradients(gpu, &dir).expect("weights/minilm-cls");
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
    let lh = model.config.total_heads();
    let gates = vec![1.0f32; b * lh];
    let labels: Vec<i32> = (0..b as i32).map(|i| i % 2).collect();
    let mut group = c.benchmark_group("model");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(b as u64));
    group.bench_function(format!("minilm_forward_B{b}_T{t}"), |bencher| {
        bencher.iter(|| model.forward_batch(gpu, &refs, &gates, false).unwrap())
    });
    group.bench_function(
        format!("minilm_forward_gate_backward_B{b}_T{t}"),
        |bencher| bencher.iter(|| model.gate_gradients(gpu, &refs, &labels, &gates).unwrap()),
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
    group.bench_function(format!("minilm_train_step_B{b}_T{t}"), |bencher| {
        bencher.iter(|| {
            model
                .train_step(gpu, &mut tr, &refs, &labels, 1e-5)
                .unwrap()
        })
    });
    group.finish();
    // HEADROOM_BENCH_BASE=1: a random BERT-base-shaped classifier (slow on CPU adapters)
    if std::env::var_os("HEADROOM_BENCH_BASE").is_some() {
        let dir = random_bert_base(&dir);
        let model =
            headroom::model::Model::load_for_gradients(gpu, &dir).expect("random BERT-base");
        let lh = model.config.total_heads();
        let gates = vec![1.0f32; b * lh];
        let mut group = c.benchmark_group("model");
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(30))
            .warm_up_time(Duration::from_secs(3));
        group.throughput(Throughput::Elements(b as u64));
        group.bench_function(format!("bert_base_forward_B{b}_T{t}"), |bencher| {
            bencher.iter(|| model.forward_batch(gpu, &refs, &gates, false).unwrap())
        });
        group.bench_function(
            format!("bert_base_forward_gate_backward_B{b}_T{t}"),
            |bencher| bencher.iter(|| model.gate_gradients(gpu, &refs, &labels, &gates).unwrap()),
        );
        group.finish();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A BERT-base-shaped sequence classifier (12 × 768, 12 heads, FFN 3072) with random weights
/// (normal-ish, std 0.02; LayerNorm γ 1, β 0) in a temporary directory, with the default
/// model's tokenizer (the same uncased vocabulary).
fn random_bert_base(minilm: &std::path::Path) -> std::path::PathBuf {
    use headroom::output::OutTensor;
    let dir = std::env::temp_dir().join(format!("headroom-bert-base-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (h, i, l, v, p) = (768usize, 3072usize, 12usize, 30522usize, 512usize);
    let mut seed = 100;
    let mut rnd = |n: usize| {
        seed += 1;
        rand_vec(n, seed)
            .iter()
            .map(|x| x * 0.07)
            .collect::<Vec<f32>>()
    };
    let mut t = vec![
        OutTensor::f32(
            "bert.embeddings.word_embeddings.weight",
            vec![v, h],
            &rnd(v * h),
        ),
        OutTensor::f32(
            "bert.embeddings.position_embeddings.weight",
            vec![p, h],
            &rnd(p * h),
        ),
        OutTensor::f32(
            "bert.embeddings.token_type_embeddings.weight",
            vec![2, h],
            &rnd(2 * h),
        ),
    ];
    let ln = |name: &str| {
        vec![
            OutTensor::f32(&format!("{name}.weight"), vec![h], &vec![1.0; h]),
            OutTensor::f32(&format!("{name}.bias"), vec![h], &vec![0.0; h]),
        ]
    };
    t.extend(ln("bert.embeddings.LayerNorm"));
    let mut lin = |name: String, n: usize, k: usize| {
        vec![
            OutTensor::f32(&format!("{name}.weight"), vec![n, k], &rnd(n * k)),
            OutTensor::f32(&format!("{name}.bias"), vec![n], &vec![0.0; n]),
        ]
    };
    for li in 0..l {
        let pre = format!("bert.encoder.layer.{li}");
        for part in ["query", "key", "value"] {
            t.extend(lin(format!("{pre}.attention.self.{part}"), h, h));
        }
        t.extend(lin(format!("{pre}.attention.output.dense"), h, h));
        t.extend(lin(format!("{pre}.intermediate.dense"), i, h));
        t.extend(lin(format!("{pre}.output.dense"), h, i));
        t.extend(ln(&format!("{pre}.attention.output.LayerNorm")));
        t.extend(ln(&format!("{pre}.output.LayerNorm")));
    }
    t.extend(lin("bert.pooler.dense".into(), h, h));
    t.extend(lin("classifier".into(), 2, h));
    headroom::output::write_safetensors(&dir.join("model.safetensors"), &t, &[]).unwrap();
    let cfg = serde_json::json!({
        "architectures": ["BertForSequenceClassification"], "model_type": "bert",
        "vocab_size": v, "hidden_size": h, "num_hidden_layers": l, "num_attention_heads": 12,
        "intermediate_size": i, "max_position_embeddings": p, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "hidden_act": "gelu",
    });
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(minilm.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    dir
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
    bench_attention(c, &gpu);
    bench_attention_backward(c, &gpu);
    bench_model(c, &gpu);
    if let Some(r) = gpu.profile_report() {
        eprintln!("{}", r.table());
    }
}

criterion_group!(kernel_benches, benches);
criterion_main!(kernel_benches);
