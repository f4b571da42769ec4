//! Shared by the parity tests: the default model with the goldens' classifier head.
#![allow(dead_code)]

use super::*;

/// The default model with the golden script's classifier head added: config.json names
/// BertForSequenceClassification, and model.safetensors gains classifier.{weight,bias}.
pub fn minilm_with_classifier() -> tempdir::TempDir {
    let src = default_model_dir();
    let dir = tempdir::TempDir::new("minilm-cls");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    cfg["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
    cfg["id2label"] = serde_json::json!({"0": "negative", "1": "positive"});
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(
        src.join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    let base = std::fs::read(src.join("model.safetensors")).unwrap();
    let head = std::fs::read(golden_path("minilm-classifier.safetensors")).unwrap();
    let base = safetensors::SafeTensors::deserialize(&base).unwrap();
    let head = safetensors::SafeTensors::deserialize(&head).unwrap();
    let mut all: Vec<(String, safetensors::tensor::TensorView)> = base.tensors();
    all.extend(head.tensors());
    safetensors::serialize_to_file(all, None, &dir.path().join("model.safetensors")).unwrap();
    dir
}
