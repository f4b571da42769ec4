//! `headroom selftest`: every kernel variant on this adapter against the CPU oracle. The
//! oracle's failure detection is unit-tested in `src/selftest/mod.rs`.

mod common;
use common::tempdir::TempDir;
use common::*;
use std::collections::BTreeSet;

#[test]
fn selftest_passes_for_every_variant_and_reports_each() {
    let dir = TempDir::new("selftest");
    let json = dir.path().join("checks.json");
    let r = headroom(&["selftest", "--every-variant", "--json", p(&json)]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let report = read_json(&json);
    let checks = report["checks"].as_array().unwrap();
    let ran: BTreeSet<(String, String)> = checks
        .iter()
        .map(|c| {
            assert_eq!(c["pass"], true, "{c}");
            assert!(c["cases"].as_u64().unwrap() > 0, "{c}");
            let ratio = c["worst_ratio"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&ratio), "{c}");
            (
                c["kernel"].as_str().unwrap().to_string(),
                c["variant"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let g = gpu();
    let mut want = vec![
        ("matmul", "tiled"),
        ("matmul.dX", "tiled"),
        ("matmul.dW+db", "tiled"),
        ("attention", "storage"),
        ("attention backward", "storage"),
        ("add_ln", ""),
        ("ln_backward+params", ""),
        ("gelu fwd+bwd", "erf"),
        ("gelu fwd+bwd", "tanh"),
        ("tanh, relu bwd", ""),
        ("cross_entropy", ""),
        ("embed_ln", ""),
        ("pool", ""),
        ("gather/scatter rows", ""),
        ("adamw", ""),
        ("contrastive fwd+bwd", ""),
    ];
    if headroom::kernels::matmul::texture_variant_available(g) {
        // lavapipe: the CPU variants and, with its subgroups of 8, the GPU ones
        want.extend([
            ("matmul", "texture"),
            ("matmul.dX", "texture"),
            ("matmul.dW+db", "texture"),
            ("attention", "texture"),
            ("attention backward", "texture"),
        ]);
    }
    if g.tuning.subgroups {
        want.push(("attention backward", "tiled"));
    }
    let want: BTreeSet<(String, String)> = want
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(ran, want);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains(&format!("all {} checks pass", want.len())),
        "{stdout}"
    );

    // without --every-variant: one check per kernel, the variant the tuning picks
    let r = headroom(&["selftest"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(stdout.contains("all 16 checks pass"), "{stdout}");
    let matmul = format!("{:?}", g.tuning.matmul).to_lowercase();
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("matmul ") && l.contains(&matmul)),
        "{stdout}"
    );

    // bad input: an unwritable JSON path is one line, exit 2
    let missing = dir.path().join("no/such/dir/checks.json");
    assert_user_error(
        &headroom(&["selftest", "--json", p(&missing)]),
        "checks.json",
        "a JSON path in a missing folder",
    );
}
