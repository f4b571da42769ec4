//! Test oracle: plain-Rust CPU references with f64 accumulation (the kernels' own are in
//! `headroom::selftest::reference`), a seeded RNG and the shared device. Not a second runtime:
//! nothing on the model path calls this.
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

// The f64 references the self-test uses (`headroom selftest`) are the suite's oracle too.
#[allow(unused_imports)]
pub use headroom::selftest::reference::{
    attention_ref, contrastive_ref, erf, gelu, gelu_tanh, layernorm_ref, matmul_ref, pool_ref,
};

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
