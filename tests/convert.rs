//! `headroom convert` (issue 13) on a small hand-made E5S1 file: the directory it writes loads in
//! headroom with the file's weights (Q4_0 decoded), its tokenizer.json is XLM-R's Unigram layout
//! around the file's pieces, and bad input is one line with nothing written. (The real
//! multilingual-e5-small file is checked against transformers by hand: see BENCHMARKS.md.)

mod common;
use common::tempdir::TempDir;
use common::*;
use headroom::model::{run_forward, ForwardOptions, Gates, Model};

const H: usize = 32;
const F: usize = 64;
const MAX_POS: usize = 16;
const PIECES: [&str; 8] = ["<s>", "<pad>", "</s>", "<unk>", "▁a", "▁b", "▁ab", "<mask>"];
const VOCAB: usize = 10;

/// Q4_0 blocks of `values` (a multiple of 32), with scale d = max|v| / 7 per block; returns
/// the bytes and the values as decoded.
fn q4_0(values: &[f32]) -> (Vec<u8>, Vec<f32>) {
    let (mut bytes, mut decoded) = (Vec::new(), Vec::new());
    for block in values.chunks(32) {
        let m = block.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = half::f16::from_f32(if m > 0.0 { m / 7.0 } else { 1.0 });
        let df = d.to_f32();
        let q: Vec<u8> = block
            .iter()
            .map(|v| ((v / df).round() + 8.0).clamp(0.0, 15.0) as u8)
            .collect();
        bytes.extend(d.to_le_bytes());
        bytes.extend((0..16).map(|i| q[i] | (q[i + 16] << 4)));
        decoded.extend(q.iter().map(|&x| (x as f32 - 8.0) * df));
    }
    (bytes, decoded)
}

/// A one-layer E5S1 file: 2-D weights in Q4_0, the rest f32. Returns its bytes and every
/// tensor's values as decoded, by E5S1 name.
fn e5s_file() -> (Vec<u8>, Vec<(String, Vec<f32>)>) {
    let mut rng = Rng::new(31);
    let mut specs: Vec<(String, usize, bool)> = vec![
        ("emb.word".into(), VOCAB * H, true),
        ("emb.pos".into(), MAX_POS * H, false),
        ("emb.type".into(), 2 * H, false),
        ("emb.ln.w".into(), H, false),
        ("emb.ln.b".into(), H, false),
    ];
    for (p, w, b) in [
        ("q", H * H, H),
        ("k", H * H, H),
        ("v", H * H, H),
        ("ao", H * H, H),
        ("aln", H, H),
        ("fi", F * H, F),
        ("fo", H * F, H),
        ("oln", H, H),
    ] {
        let ln = p.ends_with("ln");
        specs.push((format!("l0.{p}.w"), w, !ln));
        specs.push((format!("l0.{p}.b"), b, false));
    }
    let mut header = b"E5S1".to_vec();
    let i32s = |b: &mut Vec<u8>, v: &[i32]| v.iter().for_each(|x| b.extend(x.to_le_bytes()));
    header.extend(1u32.to_le_bytes());
    i32s(
        &mut header,
        &[H as i32, 1, 2, F as i32, VOCAB as i32, MAX_POS as i32, 2],
    );
    header.extend(1e-12f32.to_le_bytes());
    i32s(&mut header, &[32, PIECES.len() as i32, 0, 2, 1, 3]);
    let blob: String = PIECES.concat();
    header.extend((blob.len() as u64).to_le_bytes());
    let mut at = 0u32;
    header.extend(at.to_le_bytes());
    for p in PIECES {
        at += p.len() as u32;
        header.extend(at.to_le_bytes());
    }
    for (i, _) in PIECES.iter().enumerate() {
        let score = if i < 4 || i == 7 { 0.0 } else { -(i as f32) };
        header.extend(score.to_le_bytes());
    }
    header.extend(blob.as_bytes());
    i32s(&mut header, &[0]);
    header.extend(0u32.to_le_bytes());
    i32s(&mut header, &[specs.len() as i32]);
    // the data follows the directory
    let dir_len: usize = specs
        .iter()
        .map(|(n, _, _)| 2 + n.len() + 1 + 4 + 8 + 8)
        .sum();
    let (mut dir, mut data, mut decoded) = (Vec::new(), Vec::new(), Vec::new());
    let base = header.len() + dir_len;
    for (name, n, quant) in specs {
        let values = if name.ends_with("ln.w") {
            (0..n).map(|_| 1.0 + 0.1 * rng.uniform()).collect()
        } else {
            rng.vec(n, 0.2)
        };
        let (bytes, vals, dtype) = if quant {
            let (b, v) = q4_0(&values);
            (b, v, 1u8)
        } else {
            let b = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (b, values, 0u8)
        };
        dir.extend((name.len() as u16).to_le_bytes());
        dir.extend(name.as_bytes());
        dir.push(dtype);
        dir.extend((n as u32).to_le_bytes());
        dir.extend(((base + data.len()) as u64).to_le_bytes());
        dir.extend((bytes.len() as u64).to_le_bytes());
        data.extend(bytes);
        decoded.push((name, vals));
    }
    header.extend(dir);
    header.extend(data);
    (header, decoded)
}

#[test]
fn convert_writes_a_bert_directory_that_runs() {
    let tmp = TempDir::new("convert");
    let (bytes, decoded) = e5s_file();
    let bin = tmp.path().join("e5.bin");
    std::fs::write(&bin, &bytes).unwrap();
    let out = tmp.path().join("model");
    let r = headroom(&["convert", "--e5s", p(&bin), "--out", p(&out)]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let cfg = read_json(&out.join("config.json"));
    assert_eq!(cfg["model_type"], "bert");
    assert_eq!(
        (cfg["hidden_size"].as_u64(), cfg["pad_token_id"].as_u64()),
        (Some(32), Some(1))
    );
    // the weights are the decoded values under BERT's names
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (e5, hf) in [
        ("emb.word", "embeddings.word_embeddings.weight"),
        ("l0.fi.w", "encoder.layer.0.intermediate.dense.weight"),
        (
            "l0.aln.b",
            "encoder.layer.0.attention.output.LayerNorm.bias",
        ),
    ] {
        let got: Vec<f32> = st
            .tensor(hf)
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let want = &decoded.iter().find(|(n, _)| n == e5).unwrap().1;
        assert_eq!(&got, want, "{hf}");
    }
    assert_eq!(
        st.tensor("encoder.layer.0.intermediate.dense.weight")
            .unwrap()
            .shape(),
        [F, H]
    );
    // headroom loads it; the tokenizer is the Unigram model with XLM-R's template
    let model = Model::load(gpu(), &out).unwrap();
    let texts = vec![
        ("ab a".to_string(), None),
        ("b".to_string(), Some("a".to_string())),
    ];
    let enc = model.tokenizer.encode_all(&texts).unwrap().0;
    assert_eq!(enc[0].ids, [0, 6, 4, 2]);
    assert_eq!(enc[1].ids, [0, 5, 2, 2, 4, 2]);
    assert_eq!(model.tokenizer.mask_id(), Some(7));
    let r = run_forward(
        gpu(),
        &model,
        &enc,
        &Gates::Ones,
        &ForwardOptions {
            hidden: true,
            ..ForwardOptions::default()
        },
    )
    .unwrap();
    assert!(r.hidden.unwrap().iter().all(|v| v.is_finite()));
}

#[test]
fn bad_e5s_files_and_existing_outputs_are_refused() {
    let tmp = TempDir::new("convert-bad");
    let (bytes, _) = e5s_file();
    let out = tmp.path().join("model");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "magic",
            [b"GGUF".as_slice(), &bytes[4..]].concat(),
            "not an E5S1 model file",
        ),
        (
            "truncated",
            bytes[..bytes.len() - 10].to_vec(),
            "points past the end",
        ),
        ("header", bytes[..30].to_vec(), "truncated"),
    ];
    for (tag, data, needle) in cases {
        let bin = tmp.path().join(format!("{tag}.bin"));
        std::fs::write(&bin, data).unwrap();
        let r = headroom(&["convert", "--e5s", p(&bin), "--out", p(&out)]);
        assert_user_error(&r, needle, tag);
        assert!(!out.exists(), "{tag}: nothing written");
    }
    let bin = tmp.path().join("good.bin");
    std::fs::write(&bin, &bytes).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let r = headroom(&["convert", "--e5s", p(&bin), "--out", p(&out)]);
    assert_user_error(
        &r,
        "already exists (pass --force to replace it)",
        "existing output",
    );
    let r = headroom(&["convert", "--e5s", p(&bin), "--out", p(&out), "--force"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}
