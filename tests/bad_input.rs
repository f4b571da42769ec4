//! The bad-input corpus (`tests/bad_input/<case>/case.json`): every case is a command on a
//! malformed file or a wrong option, and must end in exit code 2 with exactly one `error:` line
//! that contains the case's `expect` (the file's name or the option, and the problem), no
//! panic, and nothing left at the output path. Cases marked `succeeds` are inputs that look
//! odd but are valid (a BOM, CRLF line ends) and must run.
//!
//! case.json: `args` (placeholders `{model}`, the case's model directory; `{case}`, the case's
//! own directory; `{out}`, a fresh output path), optional `model` (the fixture copied into the
//! case's model directory, default `tiny-bert`), `config_patch` (keys set in its config.json,
//! `null` removing one), `model_remove` (files deleted from it), `tokenizer_drop_token` (a
//! token taken out of tokenizer.json's vocabulary and added tokens), `poison_tensor` (an f32
//! tensor whose first element becomes `poison_value`, default NaN) and the case's `model/`
//! folder (files laid over it), `expect`, `succeeds`. Add a case by adding a folder.

mod common;
use common::tempdir::TempDir;
use common::*;
use std::path::{Path, PathBuf};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The case's model directory under `tmp`: the fixture, patched.
fn model_for(case_dir: &Path, spec: &serde_json::Value, tmp: &Path) -> PathBuf {
    let dir = tmp.join("model");
    copy_dir(
        &fixture(spec["model"].as_str().unwrap_or("tiny-bert")),
        &dir,
    );
    if let Some(patch) = spec["config_patch"].as_object() {
        let path = dir.join("config.json");
        let mut config = read_json(&path);
        for (k, v) in patch {
            match v {
                serde_json::Value::Null => {
                    config.as_object_mut().unwrap().remove(k);
                }
                v => config[k] = v.clone(),
            }
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    }
    for f in spec["model_remove"].as_array().into_iter().flatten() {
        std::fs::remove_file(dir.join(f.as_str().unwrap())).unwrap();
    }
    if let Some(token) = spec["tokenizer_drop_token"].as_str() {
        let path = dir.join("tokenizer.json");
        let mut t = read_json(&path);
        t["model"]["vocab"].as_object_mut().unwrap().remove(token);
        t["added_tokens"]
            .as_array_mut()
            .unwrap()
            .retain(|a| a["content"] != token);
        std::fs::write(&path, serde_json::to_vec(&t).unwrap()).unwrap();
    }
    if let Some(name) = spec["poison_tensor"].as_str() {
        poison(
            &dir.join("model.safetensors"),
            name,
            spec["poison_value"].as_f64().unwrap_or(f64::NAN),
        );
    }
    let overlay = case_dir.join("model");
    if overlay.is_dir() {
        copy_dir(&overlay, &dir);
    }
    dir
}

/// Writes `value` over the first element of the f32 tensor `name` in a safetensors file.
fn poison(path: &Path, name: &str, value: f64) {
    let mut bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let start = header[name]["data_offsets"][0]
        .as_u64()
        .expect("tensor in the fixture") as usize;
    let at = 8 + n + start;
    bytes[at..at + 4].copy_from_slice(&(value as f32).to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}

/// Runs one case; `Err` says how it failed.
fn run_case(case_dir: &Path) -> Result<(), String> {
    let spec = read_json(&case_dir.join("case.json"));
    let tmp = TempDir::new("bad-input");
    let model = model_for(case_dir, &spec, tmp.path());
    let out = tmp.path().join("out");
    let fill = |a: &str| {
        a.replace("{model}", p(&model))
            .replace("{case}", p(case_dir))
            .replace("{out}", p(&out))
    };
    let args: Vec<String> = spec["args"]
        .as_array()
        .ok_or("no args")?
        .iter()
        .map(|a| fill(a.as_str().unwrap()))
        .collect();
    let before: Vec<_> = std::fs::read_dir(case_dir).unwrap().collect();
    let run = headroom(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    let after: Vec<_> = std::fs::read_dir(case_dir).unwrap().collect();
    if before.len() != after.len() {
        return Err("the command wrote into the case's folder (an input)".into());
    }
    if stderr.contains("panicked") {
        return Err(format!("panicked:\n{stderr}"));
    }
    if spec["succeeds"].as_bool() == Some(true) {
        return match run.status.code() {
            Some(0) => Ok(()),
            c => Err(format!("should run, exit {c:?}:\n{stderr}")),
        };
    }
    if run.status.code() != Some(2) {
        return Err(format!("exit {:?}, not 2:\n{stderr}", run.status.code()));
    }
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    let expect = spec["expect"].as_str().ok_or("no expect")?;
    if errors.len() != 1 || !errors[0].contains(expect) {
        return Err(format!(
            "want one error line with {expect:?}, got:\n{stderr}"
        ));
    }
    if out.exists() {
        return Err(format!("left {} behind", out.display()));
    }
    let leftovers: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    if !leftovers.is_empty() {
        return Err(format!("left temporary files: {leftovers:?}"));
    }
    Ok(())
}

#[test]
fn every_bad_input_fails_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            run_case(c)
                .err()
                .map(|e| format!("{}: {e}", c.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
