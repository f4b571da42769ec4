//! The layering rule of ARCHITECTURE.md, enforced: every `crate::X` path in a file of layer
//! `src/L/` (and every `headroom::X` path in the binary's `src/cli/`) names a layer that the
//! table in ARCHITECTURE.md lets L import, and every folder of `src/` is a layer of the table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The table's rows: layer → the layers it may import.
fn allowed() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let table = doc
        .split("<!-- layers: the test parses the rows of this table -->")
        .nth(1)
        .expect("ARCHITECTURE.md has the layers table marker");
    let names = |cell: &str| -> BTreeSet<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let mut out = BTreeMap::new();
    let rows = table.lines().skip_while(|l| !l.starts_with('|'));
    // past the header and the separator row, up to the table's end
    for line in rows.skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').collect();
        let layer = names(cells[1]).into_iter().next().expect("a layer name");
        out.insert(layer, names(cells[cells.len() - 2]));
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The layer a file of `src/` belongs to: its folder, or for a file at the top its stem
/// (`main.rs` is the CLI's; `lib.rs` is the root that declares the layers).
fn layer_of(rel: &Path) -> Option<String> {
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .to_string();
    match first.as_str() {
        "lib.rs" => None,
        "main.rs" => Some("cli".into()),
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

/// The top-level modules a file names through `prefix::`, including `prefix::{a, b::c}` groups.
fn imports(src: &str, prefix: &str) -> BTreeSet<String> {
    let code: String = src
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    let pat = format!("{prefix}::");
    let mut rest = code.as_str();
    while let Some(i) = rest.find(&pat) {
        let before = rest[..i].chars().last();
        rest = &rest[i + pat.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.insert(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    // `crate::Result` / `headroom::Error` are the error layer's re-exports at the root
    out.into_iter()
        .map(|n| match n.as_str() {
            "Result" | "Error" => "error".to_string(),
            _ => n,
        })
        .filter(|n| !n.is_empty())
        .collect()
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let allowed = allowed();
    assert!(
        allowed.len() >= 10,
        "the layers table was not read: {allowed:?}"
    );
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let Some(layer) = layer_of(rel) else { continue };
        let may = allowed.get(&layer).unwrap_or_else(|| {
            panic!(
                "src/{}: layer {layer:?} is not in ARCHITECTURE.md's table",
                rel.display()
            )
        });
        let text = std::fs::read_to_string(f).unwrap();
        // in the binary, `crate::` is the CLI itself and the library is `headroom::`
        let prefix = if layer == "cli" { "headroom" } else { "crate" };
        for used in imports(&text, prefix) {
            if used != layer && !may.contains(&used) {
                violations.push(format!("src/{}: {layer} imports {used}", rel.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against ARCHITECTURE.md:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_import_scanner_sees_paths_and_groups() {
    let src = "use crate::gpu::Gpu;\nuse crate::{io::output, maths};\n// crate::cli in a comment\nlet x = crate::Result::Ok(());\nfoo::crate::bar;";
    let got: Vec<String> = imports(src, "crate").into_iter().collect();
    assert_eq!(got, ["error", "gpu", "io", "maths"]);
}

#[test]
fn every_folder_of_src_is_a_layer_and_lib_declares_each() {
    let allowed = allowed();
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    for e in std::fs::read_dir(root().join("src")).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                allowed.contains_key(&name),
                "src/{name}/ is not a layer of ARCHITECTURE.md"
            );
            if name != "cli" {
                assert!(
                    lib.contains(&format!("pub mod {name};")),
                    "src/lib.rs does not declare {name}"
                );
            }
        }
    }
}
