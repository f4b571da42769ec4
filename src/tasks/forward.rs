//! The `forward` job: the encoder over every row of a TSV, written in input order to one
//! safetensors file (logits, pooled output, hidden states, sentence embeddings).

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::input;
use crate::io::output::{check_not_input, write_safetensors, OutTensor};
use crate::model::{run_forward, ForwardOptions, Model, SentencePooling, TaskHead, VOCAB_CHUNK};
use std::path::{Path, PathBuf};

pub struct ForwardArgs {
    pub model: PathBuf,
    pub data: PathBuf,
    pub head_mask: Option<PathBuf>,
    pub hidden: bool,
    /// Also write the sentence embedding a sentence-transformers directory defines.
    pub sentence_embedding: bool,
    /// Also write the masked-LM head's scores [N, T, vocabulary] (a `*ForMaskedLM` checkpoint).
    pub mlm_logits: bool,
    pub batch_size: usize,
    pub out: PathBuf,
}

/// What `forward` did, for the summary line.
pub struct ForwardSummary {
    pub examples: usize,
    pub truncated: usize,
    pub tokens: usize,
    pub seconds: f64,
    pub tensors: Vec<String>,
    /// (label, count) of argmax predictions for a sequence classifier.
    pub predictions: Vec<(String, usize)>,
}

/// `headroom forward`.
pub fn forward(gpu: &Gpu, args: &ForwardArgs) -> Result<ForwardSummary> {
    let mut model = if args.mlm_logits {
        Model::load_for_mlm(gpu, &args.model, false, VOCAB_CHUNK)?
    } else {
        Model::load(gpu, &args.model)?
    };
    // a sentence-transformers directory also truncates to its own max_seq_length
    let sentence = if args.sentence_embedding {
        let sp = SentencePooling::load(&args.model)?;
        if let Some(n) = sp.max_seq_length {
            model.tokenizer.limit_length(n);
        }
        Some(sp)
    } else {
        None
    };
    // the model directory covers its files (nothing is written inside it)
    let mut inputs: Vec<&Path> = vec![&args.data, &args.model];
    if let Some(m) = &args.head_mask {
        inputs.push(m);
    }
    check_not_input(&args.out, &inputs)?;
    let c = &model.config;
    let texts = input::read_sentences(&args.data)?;
    let gates = super::data::head_mask_gates(&model, args.head_mask.as_deref())?;
    let (enc, truncated) = super::data::encode(&model, &texts, &args.data)?;
    if truncated > 0 {
        eprintln!(
            "warning: {}: {truncated} of {} examples were longer than the model's {} tokens and were truncated",
            args.data.display(),
            texts.len(),
            model.tokenizer.max_len()
        );
    }
    let start = std::time::Instant::now();
    let opts = ForwardOptions {
        batch_size: args.batch_size,
        hidden: args.hidden,
        progress: true,
        sentence,
        mlm_logits: args.mlm_logits,
    };
    let res = run_forward(gpu, &model, &enc, &gates, &opts)?;
    let seconds = start.elapsed().as_secs_f64();
    let (n, t, h) = (res.n, res.seq, c.hidden_size);
    let mut tensors = Vec::new();
    let mut predictions = Vec::new();
    if let Some(l) = &res.logits {
        let shape = if model.task == TaskHead::TokenClassification {
            vec![n, t, res.num_labels]
        } else {
            vec![n, res.num_labels]
        };
        if model.task == TaskHead::SequenceClassification {
            let mut counts = vec![0usize; res.num_labels];
            for row in l.chunks(res.num_labels) {
                let am = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|x| x.0)
                    .unwrap_or(0);
                counts[am] += 1;
            }
            predictions = counts
                .iter()
                .enumerate()
                .map(|(i, &k)| (c.label(i), k))
                .collect();
        }
        tensors.push(OutTensor::f32("logits", shape, l));
    }
    if let Some(p) = &res.pooled {
        tensors.push(OutTensor::f32("pooled", vec![n, h], p));
    }
    if let Some(s) = &res.sentence {
        tensors.push(OutTensor::f32("sentence_embedding", vec![n, h], s));
    }
    if let Some(hd) = &res.hidden {
        tensors.push(OutTensor::f32("last_hidden_state", vec![n, t, h], hd));
    }
    if let Some(l) = &res.mlm_logits {
        tensors.push(OutTensor::f32("mlm_logits", vec![n, t, c.vocab_size], l));
    }
    // per-token outputs come with the ids and mask that say which rows are padding
    if res.hidden.is_some() || res.mlm_logits.is_some() {
        let mut mask = vec![0i64; n * t];
        let mut ids = vec![0i64; n * t];
        for (i, e) in enc.iter().enumerate() {
            for (j, &id) in e.ids.iter().enumerate() {
                mask[i * t + j] = 1;
                ids[i * t + j] = id as i64;
            }
        }
        tensors.push(OutTensor::i64("attention_mask", vec![n, t], &mask));
        tensors.push(OutTensor::i64("input_ids", vec![n, t], &ids));
    }
    if tensors.is_empty() {
        return Err(Error::Usage(format!(
            "{}: the model has no pooler and no classifier, so there is nothing to write without --hidden",
            args.model.display()
        )));
    }
    let labels: Vec<String> = (0..res.num_labels).map(|i| c.label(i)).collect();
    let meta = [
        ("model", args.model.display().to_string()),
        ("data", args.data.display().to_string()),
        (
            "head_mask",
            args.head_mask
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        ("labels", serde_json::to_string(&labels).unwrap_or_default()),
        ("headroom", env!("CARGO_PKG_VERSION").to_string()),
    ];
    write_safetensors(&args.out, &tensors, &meta)?;
    Ok(ForwardSummary {
        examples: n,
        truncated,
        tokens: res.lengths.iter().sum(),
        seconds,
        tensors: tensors
            .iter()
            .map(|t| format!("{} {:?}", t.name, t.shape))
            .collect(),
        predictions,
    })
}
