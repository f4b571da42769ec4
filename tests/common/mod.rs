//! Test oracle: plain-Rust CPU references with f64 accumulation, a seeded RNG and the shared
//! device. Not a second runtime: nothing outside tests calls this.
#![allow(dead_code)]

use headroom::gpu::{AdapterChoice, Gpu};
use std::sync::OnceLock;

pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::new(&AdapterChoice::from_flag(None)) {
        Ok(g) => g,
        Err(e) => panic!("tests need a GPU adapter (lavapipe will do): {e}"),
    })
}

/// xorshift64*: deterministic, dependency-free.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform() * scale).collect()
    }
    pub fn below(&mut self, n: u32) -> u32 {
        (self.next_u64() % n as u64) as u32
    }
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(
            0.0f32,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        )
}

/// Asserts |a - b| <= atol + rtol*|b| elementwise (NaN fails), naming the first bad index.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g - w).abs() <= atol + rtol * w.abs();
        assert!(
            ok,
            "{what}: element {i}: got {g}, want {w} (max |diff| {})",
            max_abs_diff(got, want)
        );
    }
}

/// erf from Numerical Recipes' erfc (Chebyshev fit, |relative error| < 1.2e-7): ample for
/// checking f32 kernels, and independent of the kernels' Abramowitz–Stegun form.
pub fn erf(x: f64) -> f64 {
    const C: [f64; 10] = [
        -1.26551223,
        1.00002368,
        0.37409196,
        0.09678418,
        -0.18628806,
        0.27886807,
        -1.13520398,
        1.48851587,
        -0.82215223,
        0.17087277,
    ];
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = C.iter().rev().fold(0.0, |acc, c| acc * t + c);
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 {
        1.0 - r
    } else {
        r - 1.0
    }
}

pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// GELU's tanh approximation (`gelu_new`).
pub fn gelu_tanh(x: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
}

/// y[m, n] = act(sum_k a[m*lda + k] w[n*K + k] + b[n]); act 0 none, 1 gelu, 2 tanh, 3 ReLU,
/// 4 the tanh GELU.
pub fn matmul_ref(
    a: &[f32],
    lda: usize,
    w: &[f32],
    b: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
    act: u32,
) -> Vec<f32> {
    let mut y = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for kk in 0..k {
                s += a[i * lda + kk] as f64 * w[j * k + kk] as f64;
            }
            if let Some(b) = b {
                s += b[j] as f64;
            }
            y[i * n + j] = match act {
                1 => gelu(s),
                2 => s.tanh(),
                3 => s.max(0.0),
                4 => gelu_tanh(s),
                0 => s,
                _ => panic!("unknown activation {act}"),
            } as f32;
        }
    }
    y
}

pub fn layernorm_ref(x: &[f64], gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f32> {
    let h = x.len() as f64;
    let mean = x.iter().sum::<f64>() / h;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / h;
    let rstd = 1.0 / (var + eps).sqrt();
    x.iter()
        .enumerate()
        .map(|(i, v)| ((v - mean) * rstd * gamma[i] as f64 + beta[i] as f64) as f32)
        .collect()
}

/// Attention reference. qkv [B*T, 3H]; gates [B, L, heads]; returns (out [B*T, H], lse [B, heads, T]).
#[allow(clippy::too_many_arguments)]
pub fn attention_ref(
    qkv: &[f32],
    lens: &[u32],
    gates: &[f32],
    b: usize,
    t: usize,
    heads: usize,
    d: usize,
    layer: usize,
    n_layers: usize,
) -> (Vec<f32>, Vec<f32>) {
    let hid = heads * d;
    let mut out = vec![0f32; b * t * hid];
    let mut lse = vec![0f32; b * heads * t];
    let scale = 1.0 / (d as f64).sqrt();
    for bi in 0..b {
        let len = lens[bi] as usize;
        for h in 0..heads {
            let g = gates[(bi * n_layers + layer) * heads + h] as f64;
            for qi in 0..t {
                if g == 0.0 {
                    continue;
                }
                let q = &qkv[(bi * t + qi) * 3 * hid + h * d..][..d];
                let scores: Vec<f64> = (0..len)
                    .map(|kj| {
                        let k = &qkv[(bi * t + kj) * 3 * hid + hid + h * d..][..d];
                        q.iter()
                            .zip(k)
                            .map(|(a, b)| *a as f64 * *b as f64)
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|s| (s - mx).exp()).sum();
                lse[(bi * heads + h) * t + qi] = (mx + z.ln()) as f32;
                for i in 0..d {
                    let mut acc = 0f64;
                    for (kj, s) in scores.iter().enumerate() {
                        acc += (s - mx).exp() / z
                            * qkv[(bi * t + kj) * 3 * hid + 2 * hid + h * d + i] as f64;
                    }
                    out[(bi * t + qi) * hid + h * d + i] = (acc * g) as f32;
                }
            }
        }
    }
    (out, lse)
}

/// A golden safetensors file read whole: f32 tensors as f32, int64 tensors as i64.
pub struct Golden {
    pub path: std::path::PathBuf,
    bytes: Vec<u8>,
}

impl Golden {
    pub fn open(name: &str) -> Golden {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/goldens")
            .join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Golden { path, bytes }
    }
    fn view(&self, name: &str) -> (Vec<usize>, safetensors::Dtype, Vec<u8>) {
        let st = safetensors::SafeTensors::deserialize(&self.bytes).unwrap();
        let v = st
            .tensor(name)
            .unwrap_or_else(|_| panic!("{}: no tensor {name}", self.path.display()));
        (v.shape().to_vec(), v.dtype(), v.data().to_vec())
    }
    #[allow(dead_code)]
    pub fn names(&self) -> Vec<String> {
        safetensors::SafeTensors::deserialize(&self.bytes)
            .unwrap()
            .names()
            .into_iter()
            .map(|s| s.to_string())
            .collect()
    }
    pub fn has(&self, name: &str) -> bool {
        safetensors::SafeTensors::deserialize(&self.bytes)
            .unwrap()
            .tensor(name)
            .is_ok()
    }
    pub fn f32(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        let (shape, dt, data) = self.view(name);
        assert_eq!(dt, safetensors::Dtype::F32, "{name}");
        (
            shape,
            data.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }
    pub fn i64(&self, name: &str) -> (Vec<usize>, Vec<i64>) {
        let (shape, dt, data) = self.view(name);
        assert_eq!(dt, safetensors::Dtype::I64, "{name}");
        (
            shape,
            data.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        )
    }
}

pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn golden_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/goldens")
        .join(name)
}

/// A data file or folder by its path under the data folder (`"ud"`, `"sst2/dev.tsv"`):
/// `../shared/data/<rel>` beside the checkout when it exists (the full data), else the small
/// sample shipped in the repository's `data/<rel>`. Panics naming both when neither exists.
/// `is_shared_data` tells which one a returned path is.
pub fn data_file(rel: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/data").join(rel);
    if shared.exists() {
        return shared;
    }
    let shipped = root.join("data").join(rel);
    assert!(
        shipped.exists(),
        "neither {} nor {} exists",
        shared.display(),
        shipped.display()
    );
    shipped
}

/// Whether a path from `data_file` is the full data in ../shared/data (else a shipped sample).
pub fn is_shared_data(path: &std::path::Path) -> bool {
    !path.starts_with(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data"))
}

/// The default model, fetched by weights/fetch.sh.
pub fn default_model_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: run weights/fetch.sh (the README's test command does)",
        dir.display()
    );
    dir
}

/// Reads the `sentence` (and `sentence2`) columns of a golden TSV.
pub fn golden_texts(name: &str) -> Vec<(String, Option<String>)> {
    headroom::io::input::read_sentences(&golden_path(name)).unwrap()
}
pub mod minilm;

/// Asserts a clean user error: exit 2, exactly one `error:` line mentioning `needle`, no panic.
#[allow(dead_code)]
pub fn assert_user_error(out: &std::process::Output, needle: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: exit code; stderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: panicked:\n{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors.len(),
        1,
        "{what}: want one error line, got:\n{stderr}"
    );
    assert!(
        errors[0].contains(needle),
        "{what}: error line {:?} should mention {needle:?}",
        errors[0]
    );
}

/// The role sieves of one query (see shaders/attention_analysis.wgsl): `p` is the query's
/// attention over the n real tokens, `info` their token descriptions (bits 16 segment, 17
/// [CLS], 18 [SEP]). Each value is the mass on a set over the set's share under uniform
/// attention (0 for an empty set): local (|j − i| ≤ 2), [CLS], [SEP], both, own segment
/// without special tokens.
#[allow(dead_code)]
pub fn sieve_ref(p: &[f64], i: usize, info: &[u32]) -> [f64; 5] {
    let n = p.len();
    let seg = |j: usize| (info[j] >> 16) & 1;
    let special = |j: usize| info[j] >> 17 != 0;
    let sets: [&dyn Fn(usize) -> bool; 5] = [
        &|j| i.abs_diff(j) <= 2,
        &|j| (info[j] >> 17) & 1 == 1,
        &|j| (info[j] >> 18) & 1 == 1,
        &|j| special(j),
        &|j| !special(j) && seg(j) == seg(i),
    ];
    let mut out = [0f64; 5];
    for (k, set) in sets.iter().enumerate() {
        let members: Vec<usize> = (0..n).filter(|&j| set(j)).collect();
        if !members.is_empty() {
            let mass: f64 = members.iter().map(|&j| p[j]).sum();
            out[k] = mass * n as f64 / members.len() as f64;
        }
    }
    out
}

/// Runs the headroom binary.
pub fn headroom(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_headroom"))
        .args(args)
        .output()
        .unwrap()
}

/// A path as a command-line argument.
pub fn p(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

/// A JSON file's contents.
pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// How many heads an exported checkpoint's config.json lists under `pruned_heads`.
pub fn pruned_head_count(config: &serde_json::Value) -> usize {
    config["pruned_heads"]
        .as_object()
        .expect("pruned_heads is an object")
        .values()
        .map(|v| v.as_array().expect("a list of heads").len())
        .sum()
}

/// The heads kept at each point of a `prune` curve.json.
pub fn curve_heads_kept(curve: &serde_json::Value) -> Vec<u64> {
    curve["curve"]["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|q| q["heads_kept"].as_u64().expect("heads_kept"))
        .collect()
}

pub mod tempdir {
    /// A directory removed on drop.
    pub struct TempDir(std::path::PathBuf);
    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            let p =
                std::env::temp_dir().join(format!("headroom-test-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
