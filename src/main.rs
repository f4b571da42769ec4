//! The `headroom` command line: parses, calls the library, prints. Every user-caused failure
//! is one line on stderr and exit code 2.

use clap::{Parser, Subcommand};
use headroom::commands;
use headroom::gpu::{AdapterChoice, Gpu};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "headroom",
    version,
    about = "Score, prune and analyse the attention heads of BERT-family encoders on any GPU"
)]
struct Cli {
    /// Use the adapter whose name contains this (case-insensitive); default: WGPU_ADAPTER_NAME,
    /// else a real GPU before a CPU one. WGPU_BACKEND limits the backends searched.
    #[arg(long, global = true)]
    adapter: Option<String>,
    /// Print GPU time per kernel (timestamp queries), sorted by total time.
    #[arg(long, global = true)]
    profile: bool,
    /// With --profile: also write a Chrome trace (chrome://tracing, Perfetto) to this file.
    #[arg(long, global = true, value_name = "FILE")]
    trace: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List adapters and show the chosen one with its limits and features.
    Info,
    /// Run the encoder over a TSV of sentences and write logits / pooled / hidden states.
    Forward {
        /// HF model directory: config.json, model.safetensors, tokenizer.json.
        #[arg(long)]
        model: PathBuf,
        /// TSV whose header names a `sentence` column (and optionally `sentence2`).
        #[arg(long)]
        data: PathBuf,
        /// Head mask: JSON array of L arrays of H numbers in [0,1], or a .npy [L,H] array.
        #[arg(long, value_name = "FILE")]
        head_mask: Option<PathBuf>,
        /// Also write last_hidden_state [N,T,H], attention_mask and input_ids [N,T].
        #[arg(long)]
        hidden: bool,
        /// Examples per batch (batches also stay within the adapter's binding limit).
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Output safetensors file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Evaluate a classifier as JSON: accuracy (sequence classification, labelled TSV) or
    /// entity precision / recall / F1 and token accuracy (token classification, CoNLL).
    Eval {
        /// HF model directory of a sequence or token classifier.
        #[arg(long)]
        model: PathBuf,
        /// TSV with `sentence` (optional `sentence2`) and `label` (class index or id2label
        /// name), or CoNLL (`token<TAB>tag`, blank line between sentences) for token models.
        #[arg(long)]
        data: PathBuf,
        /// Head mask: JSON array of L arrays of H numbers in [0,1], or a .npy [L,H] array.
        #[arg(long, value_name = "FILE")]
        head_mask: Option<PathBuf>,
        /// Examples per batch.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
    },
    /// Head importance (Michel et al.): mean |∂loss/∂gate| per head, attention entropy and
    /// confidence, with a layer×head heatmap.
    Score {
        /// HF model directory of a sequence or token classifier.
        #[arg(long)]
        model: PathBuf,
        /// TSV with `sentence` (optional `sentence2`) and `label` (class index or id2label
        /// name), or CoNLL (`token<TAB>tag`) for a token classifier.
        #[arg(long)]
        data: PathBuf,
        /// Output directory: head_importance.npy, attn_entropy.npy, attn_confidence.npy,
        /// report.json, head_importance.svg/.png.
        #[arg(long)]
        out: PathBuf,
        /// example (mean |g| over examples), batch (|Σ over a batch|, mean over batches),
        /// token (mean over examples of Σ_t |⟨O_t,dO_t⟩|) or fisher (mean g²); report.json
        /// holds all four.
        #[arg(long, default_value = "example")]
        granularity: String,
        /// seq-cls or token-cls: checked against the checkpoint (default: the checkpoint's).
        #[arg(long)]
        task: Option<String>,
        /// Bootstrap resamples for 95% intervals of each head's score and rank.
        #[arg(long, default_value_t = 0)]
        bootstrap: usize,
        /// Examples per batch.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
    },
    /// Fine-tune a classifier on the GPU (AdamW, linear warm-up and decay, clipping, dropout);
    /// evaluates on dev after each epoch and writes the best epoch as an HF directory.
    Finetune {
        /// HF model directory to start from (a BertModel, or a classifier to train further).
        #[arg(long)]
        model: PathBuf,
        /// seq-cls (TSV with `sentence` and `label`) or token-cls (CoNLL `token<TAB>tag`).
        #[arg(long)]
        task: String,
        #[arg(long)]
        train: PathBuf,
        #[arg(long)]
        dev: PathBuf,
        /// Output HF directory (config.json, model.safetensors, tokenizer files, finetune.json).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 2)]
        epochs: usize,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Peak learning rate.
        #[arg(long, default_value_t = 1e-4)]
        lr: f32,
        /// Fraction of the steps spent warming up linearly; then linear decay to 0.
        #[arg(long, default_value_t = 0.06)]
        warmup: f32,
        /// Decoupled weight decay (not applied to biases and LayerNorm weights).
        #[arg(long, default_value_t = 0.0)]
        weight_decay: f32,
        /// Clip the global gradient norm to this.
        #[arg(long, default_value_t = 1.0)]
        max_grad_norm: f32,
        /// Hidden dropout (default: the checkpoint's hidden_dropout_prob).
        #[arg(long)]
        dropout: Option<f32>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Truncate examples to this many tokens.
        #[arg(long, default_value_t = 128)]
        max_len: usize,
        /// Keep the embedding tables and their LayerNorm fixed.
        #[arg(long)]
        freeze_embeddings: bool,
        /// Stop after this many optimizer steps.
        #[arg(long)]
        max_steps: Option<usize>,
        /// Batch examples in random order rather than grouped by length (grouping, as
        /// transformers' group_by_length, pads less and runs faster).
        #[arg(long)]
        no_group_by_length: bool,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Prune heads by importance and trace heads kept against the eval metric (mask-driven:
    /// masked heads are gated to 0). Writes curve.json, mask.json and curve.svg/png.
    Prune {
        /// HF model directory of a sequence or token classifier.
        #[arg(long)]
        model: PathBuf,
        /// Labelled data the importance is computed on.
        #[arg(long)]
        score_data: PathBuf,
        /// Labelled data each mask is evaluated on.
        #[arg(long)]
        eval_data: PathBuf,
        /// oneshot, iterative (re-score after each step), threshold (iterative, stop below
        /// --keep × the unpruned metric) or trials (--trials k1,k2,...; the best on eval data).
        #[arg(long, default_value = "oneshot")]
        strategy: String,
        /// example, batch, token, fisher (gradient importance), ablation (loss increase with
        /// the head alone gated out; reports Spearman agreement of each gradient variant), or
        /// entropy / random baselines.
        #[arg(long, default_value = "example")]
        importance: String,
        /// Rank raw gradient scores instead of per-layer ℓ2-normalised ones (bertology's default).
        #[arg(long)]
        no_normalize: bool,
        /// Heads pruned per step, as a fraction of all heads.
        #[arg(long, default_value_t = 0.1)]
        step: f64,
        /// The chosen point is the largest pruning whose metric stays ≥ keep × the unpruned metric.
        #[arg(long, default_value_t = 0.9)]
        keep: f64,
        /// Head counts to try with --strategy trials.
        #[arg(long, value_delimiter = ',')]
        trials: Vec<usize>,
        #[arg(long, default_value_t = 0)]
        min_heads_per_layer: usize,
        /// Also trace random and entropy baselines (one-shot).
        #[arg(long)]
        baselines: bool,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Also write the chosen mask as a physically pruned checkpoint (see `export`).
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
        /// Replace the --export directory if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Time what head pruning buys: for each pruned fraction (random heads per layer, seeded)
    /// and mode, the median ms of the whole encoder and of the attention blocks, GFLOP/s, and
    /// the speedup against the unpruned dense run next to the ideal one from FLOPs. JSON on
    /// stdout.
    Bench {
        /// An unpruned HF model directory ...
        #[arg(long, conflicts_with = "shape")]
        model: Option<PathBuf>,
        /// ... or a random checkpoint of this shape: minilm (6×12, 384) or base (12×12, 768).
        #[arg(long)]
        shape: Option<String>,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        #[arg(long, default_value_t = 128)]
        seq: usize,
        /// Fractions of each layer's heads to prune.
        #[arg(long, value_delimiter = ',', default_value = "0,0.25,0.5,0.75,0.9")]
        pruned: Vec<f64>,
        /// dense (gated, projections computed), skip (gated-out heads left out) and/or compact
        /// (the exported checkpoint).
        #[arg(long, value_delimiter = ',', default_value = "dense,skip,compact")]
        mode: Vec<String>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Timed rounds over every (fraction, mode), after one warm-up round.
        #[arg(long, default_value_t = 5)]
        iters: usize,
        /// Also write the JSON here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Head roles (local, delimiter, block, syntactic) by one-sided t-tests over sentences with
    /// a multiple-comparison correction. Writes roles.json and heatmaps.
    Roles {
        #[arg(long)]
        model: PathBuf,
        /// CoNLL-U (every role) or a TSV of sentences / pairs (no syntactic roles).
        #[arg(long)]
        data: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// H0: mean score ≤ tau (uniform attention scores 1).
        #[arg(long, default_value_t = 3.0)]
        tau: f64,
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        /// bh (Benjamini–Hochberg) or bonferroni, over all heads and roles together.
        #[arg(long, default_value = "bh")]
        correction: String,
        /// Roles defined in fewer sentences are not tested.
        #[arg(long, default_value_t = 10)]
        min_sentences: usize,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
    },
    /// Dependency heads: per relation, the head whose strongest word-level attention finds the
    /// gold head (and dependent) most often, against fixed-offset baselines; undirected UAS of
    /// each head's maximum spanning tree. Writes syntax.json and heatmaps.
    Syntax {
        #[arg(long)]
        model: PathBuf,
        /// CoNLL-U.
        #[arg(long)]
        data: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
    },
    /// Agreement of two head maps (score's importance JSON, a role of roles.json, or an [L][H]
    /// array): Spearman and Kendall τ-b (bootstrap 95 % intervals when both carry per-example
    /// data), top-k Jaccard at 10/25/50 % of the heads, per-layer Spearman. JSON on stdout.
    Compare {
        a: PathBuf,
        b: PathBuf,
        /// The role to take from a roles.json.
        #[arg(long)]
        role: Option<String>,
        #[arg(long, default_value_t = 1000)]
        bootstrap: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also write the JSON here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Physically prune a checkpoint by a head mask: the kept heads' Q/K/V rows and output
    /// projection columns only, `pruned_heads` in config.json (original indices, merged with
    /// the checkpoint's own), loadable by transformers 4.x and headroom.
    Export {
        /// HF model directory (may itself be pruned).
        #[arg(long)]
        model: PathBuf,
        /// [L, H] mask over original head indices (JSON or .npy, e.g. prune's mask.json):
        /// 0 prunes a head, 1 keeps it.
        #[arg(long)]
        mask: PathBuf,
        /// Output model directory (written atomically).
        #[arg(long)]
        out: PathBuf,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
}

fn check_batch_size(n: usize) -> headroom::Result<()> {
    if n == 0 {
        return Err(headroom::Error::Usage(
            "--batch-size must be at least 1".into(),
        ));
    }
    Ok(())
}

fn open_gpu(cli: &Cli) -> headroom::Result<Gpu> {
    let gpu = Gpu::new(&AdapterChoice::from_flag(cli.adapter.clone()))?;
    eprintln!("adapter: {}", gpu.describe());
    if cli.profile {
        gpu.enable_profiling()?;
    }
    Ok(gpu)
}

fn finish_profile(cli: &Cli, gpu: &Gpu) -> headroom::Result<()> {
    if let Some(report) = gpu.profile_report() {
        println!("{}", report.table());
        if let Some(path) = &cli.trace {
            headroom::output::write_atomic(path, report.chrome_trace().as_bytes())?;
            println!("trace written to {}", path.display());
        }
    }
    Ok(())
}

fn run(cli: &Cli) -> headroom::Result<()> {
    if cli.trace.is_some() && !cli.profile {
        return Err(headroom::Error::Usage("--trace needs --profile".into()));
    }
    match &cli.command {
        Command::Info => {
            print!(
                "{}",
                commands::info(&AdapterChoice::from_flag(cli.adapter.clone()))?
            );
        }
        Command::Forward {
            model,
            data,
            head_mask,
            hidden,
            batch_size,
            out,
        } => {
            check_batch_size(*batch_size)?;
            let gpu = open_gpu(cli)?;
            let args = commands::ForwardArgs {
                model: model.clone(),
                data: data.clone(),
                head_mask: head_mask.clone(),
                hidden: *hidden,
                batch_size: *batch_size,
                out: out.clone(),
            };
            let s = commands::forward(&gpu, &args)?;
            println!(
                "{} examples, {} tokens in {:.2} s ({:.0} tokens/s) -> {}",
                s.examples,
                s.tokens,
                s.seconds,
                s.tokens as f64 / s.seconds.max(1e-9),
                out.display()
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
        }
        Command::Eval {
            model,
            data,
            head_mask,
            batch_size,
        } => {
            check_batch_size(*batch_size)?;
            let gpu = open_gpu(cli)?;
            let args = commands::EvalArgs {
                model: model.clone(),
                data: data.clone(),
                head_mask: head_mask.clone(),
                batch_size: *batch_size,
            };
            let report = commands::eval(&gpu, &args)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            finish_profile(cli, &gpu)?;
        }
        Command::Score {
            model,
            data,
            out,
            granularity,
            task,
            bootstrap,
            batch_size,
        } => {
            check_batch_size(*batch_size)?;
            let task = task
                .as_deref()
                .map(headroom::tasks::parse_task)
                .transpose()?;
            let gpu = open_gpu(cli)?;
            let args = commands::ScoreArgs {
                model: model.clone(),
                data: data.clone(),
                out: out.clone(),
                granularity: granularity.clone(),
                batch_size: *batch_size,
                bootstrap: *bootstrap,
                task,
            };
            let s = commands::score(&gpu, &args)?;
            println!(
                "{} examples scored in {:.2} s ({:.1} examples/s)",
                s.examples,
                s.seconds,
                s.examples as f64 / s.seconds.max(1e-9)
            );
            for (l, h, v) in &s.top {
                println!("  layer {l} head {h}: {v:.6}");
            }
            for f in &s.files {
                println!("  wrote {}", f.display());
            }
            finish_profile(cli, &gpu)?;
        }
        Command::Finetune {
            model,
            task,
            train,
            dev,
            out,
            epochs,
            batch_size,
            lr,
            warmup,
            weight_decay,
            max_grad_norm,
            dropout,
            seed,
            max_len,
            freeze_embeddings,
            max_steps,
            no_group_by_length,
            force,
        } => {
            let args = headroom::finetune::FinetuneArgs {
                model: model.clone(),
                task: headroom::tasks::parse_task(task)?,
                train: train.clone(),
                dev: dev.clone(),
                out: out.clone(),
                epochs: *epochs,
                batch_size: *batch_size,
                lr: *lr,
                warmup_ratio: *warmup,
                weight_decay: *weight_decay,
                max_grad_norm: *max_grad_norm,
                dropout: *dropout,
                seed: *seed,
                max_len: *max_len,
                freeze_embeddings: *freeze_embeddings,
                max_steps: *max_steps,
                group_by_length: !*no_group_by_length,
                force: *force,
            };
            let gpu = open_gpu(cli)?;
            let r = headroom::finetune::finetune(&gpu, &args)?;
            println!(
                "best epoch {} of {}: dev {:.4}; {:.0} s in all -> {}",
                r.best_epoch,
                r.epochs.len(),
                r.best_dev,
                r.wall_seconds,
                out.display()
            );
            finish_profile(cli, &gpu)?;
        }
        Command::Prune {
            model,
            score_data,
            eval_data,
            strategy,
            importance,
            no_normalize,
            step,
            keep,
            trials,
            min_heads_per_layer,
            baselines,
            seed,
            batch_size,
            out,
            export,
            force,
        } => {
            check_batch_size(*batch_size)?;
            let args = headroom::prune::PruneArgs {
                export: export.clone(),
                force: *force,
                model: model.clone(),
                score_data: score_data.clone(),
                eval_data: eval_data.clone(),
                out: out.clone(),
                strategy: headroom::prune::Strategy::parse(strategy)?,
                importance: headroom::prune::Importance::parse(importance)?,
                normalize_layers: !*no_normalize,
                step: *step,
                keep: *keep,
                trials: trials.clone(),
                min_heads_per_layer: *min_heads_per_layer,
                baselines: *baselines,
                seed: *seed,
                batch_size: *batch_size,
            };
            let gpu = open_gpu(cli)?;
            let r = headroom::prune::prune(&gpu, &args)?;
            let p = &r.curve.points[r.chosen];
            println!(
                "unpruned {}: {:.4}; chosen: {} of {} heads kept, {} {:.4} -> {}",
                r.metric,
                r.unpruned_metric,
                p.heads_kept,
                p.heads_kept + p.pruned,
                r.metric,
                p.metric,
                out.display()
            );
            for q in &r.curve.points {
                println!(
                    "  {:>4} heads kept: {:.4} (loss {:.4})",
                    q.heads_kept, q.metric, q.loss
                );
            }
            finish_profile(cli, &gpu)?;
        }
        Command::Bench {
            model,
            shape,
            batch,
            seq,
            pruned,
            mode,
            seed,
            iters,
            out,
        } => {
            let args = headroom::bench::BenchArgs {
                model: model.clone(),
                shape: shape
                    .as_deref()
                    .map(headroom::bench::Shape::parse)
                    .transpose()?,
                batch: *batch,
                seq: *seq,
                pruned: pruned.clone(),
                modes: mode
                    .iter()
                    .map(|m| headroom::bench::Mode::parse(m))
                    .collect::<headroom::Result<_>>()?,
                seed: *seed,
                iters: *iters,
            };
            let gpu = open_gpu(cli)?;
            let r = headroom::bench::bench(&gpu, &args)?;
            let text = serde_json::to_string_pretty(&r).expect("report serialises");
            if let Some(path) = out {
                headroom::output::write_atomic(path, text.as_bytes())?;
            }
            println!("{text}");
            finish_profile(cli, &gpu)?;
        }
        Command::Roles {
            model,
            data,
            out,
            tau,
            alpha,
            correction,
            min_sentences,
            batch_size,
        } => {
            let args = headroom::roles::RolesArgs {
                model: model.clone(),
                data: data.clone(),
                out: out.clone(),
                tau: *tau,
                alpha: *alpha,
                correction: headroom::roles::Correction::parse(correction)?,
                batch_size: *batch_size,
                min_sentences: *min_sentences,
            };
            let gpu = open_gpu(cli)?;
            let r = headroom::roles::run(&gpu, &args)?;
            let s = &r.summary;
            println!(
                "{} sentences: {} of {} heads hold a role, {} several ({:.1} %); {:.1} s -> {}",
                r.sentences,
                s.heads_with_a_role,
                s.heads,
                s.heads_with_several_roles,
                100.0 * s.fraction_with_several_roles,
                r.wall_seconds,
                out.display()
            );
            for (role, layers) in &s.roles_by_layer {
                println!("  {role:<16} heads per layer {layers:?}");
            }
            finish_profile(cli, &gpu)?;
        }
        Command::Syntax {
            model,
            data,
            out,
            batch_size,
        } => {
            let gpu = open_gpu(cli)?;
            let r = headroom::syntax::command(&gpu, model, data, out, *batch_size)?;
            println!(
                "{} sentences in {:.1} s -> {}",
                r.sentences,
                r.wall_seconds,
                out.display()
            );
            println!(
                "relation        arcs  best head→dep  acc    best dep→head  acc    offset baseline"
            );
            for x in &r.relations {
                println!(
                    "{:<14} {:>5}  L{}H{:<10} {:.3}  L{}H{:<10} {:.3}  {:+} {:.3} (most frequent {:+} {:.3})",
                    x.relation,
                    x.arcs,
                    x.best_head_to_dep.layer,
                    x.best_head_to_dep.head,
                    x.best_head_to_dep.accuracy,
                    x.best_dep_to_head.layer,
                    x.best_dep_to_head.head,
                    x.best_dep_to_head.accuracy,
                    x.best_offset,
                    x.best_offset_accuracy,
                    x.most_frequent_offset,
                    x.most_frequent_offset_accuracy
                );
            }
            println!(
                "best MST head: L{}H{} undirected UAS {:.3}",
                r.best_mst.layer, r.best_mst.head, r.best_mst.accuracy
            );
            finish_profile(cli, &gpu)?;
        }
        Command::Compare {
            a,
            b,
            role,
            bootstrap,
            seed,
            out,
        } => {
            let ma = headroom::compare::read_map(a, role.as_deref())?;
            let mb = headroom::compare::read_map(b, role.as_deref())?;
            let names = (a.display().to_string(), b.display().to_string());
            let c = headroom::compare::compare(&ma, &mb, (&names.0, &names.1), *bootstrap, *seed)?;
            let text = serde_json::to_string_pretty(&c).expect("comparison serialises");
            if let Some(path) = out {
                headroom::output::write_atomic(path, text.as_bytes())?;
            }
            println!("{text}");
        }
        Command::Export {
            model,
            mask,
            out,
            force,
        } => {
            let r = headroom::commands::export(model, mask, out, *force)?;
            println!(
                "{} of {} heads kept ({} pruned now); {} → {} parameters -> {}",
                r.heads_left,
                r.heads_total,
                r.newly_pruned,
                r.params_before,
                r.params_after,
                out.display()
            );
        }
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}
