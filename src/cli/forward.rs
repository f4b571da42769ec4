//! `headroom forward`: run the encoder over a TSV of sentences and write logits / pooled / hidden
//! states / sentence embeddings / masked-LM scores.

use super::{
    check_batch_size, data_help, finish_profile, open_gpu, Cli, HeadMaskArg, ModelDataArgs,
};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(mut_args(data_help(
    "TSV whose header names a `sentence` column (and optionally `sentence2`)"
)))]
pub struct Args {
    #[command(flatten)]
    input: ModelDataArgs,
    #[command(flatten)]
    head_mask: HeadMaskArg,
    /// Also write last_hidden_state [N,T,H], attention_mask and input_ids [N,T].
    #[arg(long)]
    hidden: bool,
    /// Also write sentence_embedding [N,H]: the pooling (and normalisation) of a
    /// sentence-transformers directory's modules.json, with its max_seq_length.
    #[arg(long)]
    sentence_embedding: bool,
    /// Also write mlm_logits [N,T,vocabulary], the masked-LM head's scores (a *ForMaskedLM
    /// checkpoint; the file grows with the vocabulary), with attention_mask and input_ids.
    #[arg(long)]
    mlm_logits: bool,
    /// Examples per batch (batches also stay within the adapter's binding limit).
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Output safetensors file.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(cli: &Cli, a: &Args) -> headroom::Result<()> {
    check_batch_size(a.batch_size)?;
    let gpu = open_gpu(cli)?;
    let args = headroom::tasks::forward::ForwardArgs {
        model: a.input.model.clone(),
        data: a.input.data.clone(),
        head_mask: a.head_mask.file.clone(),
        hidden: a.hidden,
        sentence_embedding: a.sentence_embedding,
        mlm_logits: a.mlm_logits,
        batch_size: a.batch_size,
        out: a.out.clone(),
    };
    let s = headroom::tasks::forward::forward(&gpu, &args)?;
    println!(
        "{} examples, {} tokens in {:.2} s ({:.0} tokens/s) -> {}",
        s.examples,
        s.tokens,
        s.seconds,
        s.tokens as f64 / s.seconds.max(1e-9),
        a.out.display()
    );
    for t in &s.tensors {
        println!("  {t}");
    }
    if !s.predictions.is_empty() {
        let p: Vec<String> = s
            .predictions
            .iter()
            .map(|(l, k)| format!("{l}: {k}"))
            .collect();
        println!("predicted labels: {}", p.join(", "));
    }
    finish_profile(cli, &gpu)?;
    Ok(())
}
