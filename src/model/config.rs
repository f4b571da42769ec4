//! config.json of an HF BERT directory.

use super::family::Family;
use crate::error::{Error, Result};
use crate::kernels::Gelu;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct Config {
    pub model_type: String,
    /// Where the family keeps each parameter.
    pub family: &'static Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    /// Width of the embedding tables: hidden_size, unless the family factorises them.
    pub embedding_size: usize,
    pub num_hidden_layers: usize,
    /// Layers the checkpoint stores: `num_hidden_groups` for a family with shared layers
    /// (ALBERT), else `num_hidden_layers`.
    pub stored_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    /// The position of a sequence's first token: 0, or padding_idx + 1 for the families whose
    /// positions count from after the padding index (RoBERTa).
    pub position_offset: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    /// The feed-forward's GELU (`hidden_act`: `gelu`, or the tanh form `gelu_new`).
    pub hidden_act: Gelu,
    pub architectures: Vec<String>,
    /// Label names by class index, from `id2label` (empty when absent).
    pub id2label: BTreeMap<usize, String>,
    /// Dropout after the embeddings and each residual branch, and before the classifier.
    pub hidden_dropout_prob: f64,
    /// Standard deviation of a new classifier's initial weights.
    pub initializer_range: f64,
    /// The file as read, so a fine-tuned checkpoint keeps every key it does not change.
    pub json: serde_json::Value,
    /// Per stored layer, the original indices of the heads `pruned_heads` removed (ascending).
    pub pruned_heads: Vec<Vec<usize>>,
    /// config.json's `pad_token_id`, checked against the tokenizer's padding token.
    pub pad_token_id: Option<usize>,
    /// Rows of the relative position bias table (MPNet's `relative_attention_num_buckets`;
    /// 0 for a family without one).
    pub relative_buckets: usize,
}

/// config.json's keys, under BERT's names; the aliases are DistilBERT's.
#[derive(serde::Deserialize)]
struct Raw {
    model_type: Option<String>,
    vocab_size: Option<usize>,
    #[serde(alias = "dim")]
    hidden_size: Option<usize>,
    embedding_size: Option<usize>,
    #[serde(alias = "n_layers")]
    num_hidden_layers: Option<usize>,
    #[serde(alias = "n_heads")]
    num_attention_heads: Option<usize>,
    #[serde(alias = "hidden_dim")]
    intermediate_size: Option<usize>,
    max_position_embeddings: Option<usize>,
    type_vocab_size: Option<usize>,
    pad_token_id: Option<usize>,
    layer_norm_eps: Option<f64>,
    #[serde(alias = "activation")]
    hidden_act: Option<String>,
    position_embedding_type: Option<String>,
    architectures: Option<Vec<String>>,
    id2label: Option<BTreeMap<String, String>>,
    #[serde(alias = "dropout")]
    hidden_dropout_prob: Option<f64>,
    initializer_range: Option<f64>,
    pruned_heads: Option<BTreeMap<String, Vec<i64>>>,
    num_hidden_groups: Option<usize>,
    inner_group_num: Option<usize>,
    relative_attention_num_buckets: Option<usize>,
}

/// The buckets of MPNet's relative positions (transformers' `compute_position_bias` uses 32
/// and a maximal distance of 128, whatever the config says).
pub const RELATIVE_BUCKETS: usize = 32;
const RELATIVE_MAX_DISTANCE: usize = 128;

/// The bucket of relative position `rel` (key − query), as transformers' MPNet computes it: half
/// the buckets for keys before the query, half for keys after; exact below 8, logarithmic up to
/// the maximal distance, the last bucket beyond. The logarithm is taken in f32, as torch does.
pub fn relative_bucket(rel: i64) -> u32 {
    let half = (RELATIVE_BUCKETS / 2) as i64;
    let max_exact = half / 2;
    let n = -rel;
    let side = if n < 0 { half } else { 0 };
    let n = n.abs();
    if n < max_exact {
        return (side + n) as u32;
    }
    let ratio = RELATIVE_MAX_DISTANCE as f32 / max_exact as f32;
    let large = max_exact
        + ((n as f32 / max_exact as f32).ln() / ratio.ln() * (half - max_exact) as f32) as i64;
    (side + large.min(half - 1)) as u32
}

/// The largest size (vocabulary, width, layers, positions, ...) a config.json may give: far
/// above any real encoder's, and low enough that what is sized by it fits in memory.
pub const MAX_SIZE: usize = 1 << 20;

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
        Config::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        let raw: Raw = serde_json::from_str(text)
            .map_err(|e| Error::input(path, format!("not a valid config.json: {e}")))?;
        let model_type = raw.model_type.ok_or_else(|| {
            Error::input(
                path,
                format!("no model_type (supported: {})", Family::supported()),
            )
        })?;
        let family = Family::of(&model_type).ok_or_else(|| {
            Error::input(
                path,
                format!(
                    "unknown model_type {model_type:?}; supported: {}",
                    Family::supported()
                ),
            )
        })?;
        let need = |v: Option<usize>, name: &str| -> Result<usize> {
            match v {
                Some(0) => Err(Error::input(path, format!("{name} is 0"))),
                Some(x) if x > MAX_SIZE => Err(Error::input(
                    path,
                    format!("{name} {x} is over headroom's limit of {MAX_SIZE}"),
                )),
                Some(x) => Ok(x),
                None => Err(Error::input(path, format!("missing {name}"))),
            }
        };
        let cfg = Config {
            vocab_size: need(raw.vocab_size, "vocab_size")?,
            hidden_size: need(raw.hidden_size, "hidden_size")?,
            embedding_size: match raw.embedding_size {
                Some(e) if family.embeddings_project.is_some() => need(Some(e), "embedding_size")?,
                _ => need(raw.hidden_size, "hidden_size")?,
            },
            num_hidden_layers: need(raw.num_hidden_layers, "num_hidden_layers")?,
            stored_layers: match family.shared_layers {
                true => need(
                    Some(raw.num_hidden_groups.unwrap_or(1)),
                    "num_hidden_groups",
                )?,
                false => need(raw.num_hidden_layers, "num_hidden_layers")?,
            },
            num_attention_heads: need(raw.num_attention_heads, "num_attention_heads")?,
            intermediate_size: need(raw.intermediate_size, "intermediate_size")?,
            max_position_embeddings: need(raw.max_position_embeddings, "max_position_embeddings")?,
            position_offset: if family.positions_after_padding {
                raw.pad_token_id.unwrap_or(1) + 1
            } else {
                0
            },
            type_vocab_size: match family.token_type_embeddings {
                Some(_) => raw.type_vocab_size.unwrap_or(2).max(1),
                None => 1,
            },
            layer_norm_eps: raw.layer_norm_eps.unwrap_or(1e-12),
            hidden_act: Gelu::Erf,
            architectures: raw.architectures.unwrap_or_default(),
            id2label: BTreeMap::new(),
            hidden_dropout_prob: raw.hidden_dropout_prob.unwrap_or(0.1),
            initializer_range: raw.initializer_range.unwrap_or(0.02),
            json: serde_json::from_str(text).unwrap_or_default(),
            pruned_heads: Vec::new(),
            pad_token_id: raw.pad_token_id,
            relative_buckets: match family.relative_attention_bias {
                Some(_) => raw.relative_attention_num_buckets.unwrap_or(32),
                None => 0,
            },
            model_type,
            family,
        };
        for (name, v) in [
            ("type_vocab_size", cfg.type_vocab_size),
            ("relative_attention_num_buckets", cfg.relative_buckets),
            ("pad_token_id", cfg.pad_token_id.unwrap_or(0)),
        ] {
            if v > MAX_SIZE {
                return Err(Error::input(
                    path,
                    format!("{name} {v} is over headroom's limit of {MAX_SIZE}"),
                ));
            }
        }
        let act = raw
            .hidden_act
            .unwrap_or_else(|| family.default_hidden_act.into());
        let mut cfg = cfg;
        cfg.hidden_act = match act.as_str() {
            "gelu" => Gelu::Erf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Gelu::Tanh,
            _ => {
                return Err(Error::input(
                    path,
                    format!(
                        "hidden_act {act:?} is not supported (supported: gelu, the erf form; gelu_new, gelu_pytorch_tanh and gelu_fast, the tanh form)"
                    ),
                ))
            }
        };
        let pet = raw
            .position_embedding_type
            .unwrap_or_else(|| "absolute".into());
        if pet != "absolute" {
            return Err(Error::input(
                path,
                format!("position_embedding_type {pet:?} is not supported (supported: absolute)"),
            ));
        }
        if family.relative_attention_bias.is_some() && cfg.relative_buckets < RELATIVE_BUCKETS {
            // transformers buckets relative positions into 32 whatever the table's size
            return Err(Error::input(
                path,
                format!(
                    "relative_attention_num_buckets {} is below the {RELATIVE_BUCKETS} buckets MPNet's attention reads",
                    cfg.relative_buckets
                ),
            ));
        }
        if family.shared_layers {
            let inner = raw.inner_group_num.unwrap_or(1);
            if inner != 1 {
                return Err(Error::input(
                    path,
                    format!("inner_group_num {inner} is not supported (supported: 1, one layer per group)"),
                ));
            }
            if !cfg.num_hidden_layers.is_multiple_of(cfg.stored_layers) {
                return Err(Error::input(
                    path,
                    format!(
                        "num_hidden_layers {} is not a multiple of num_hidden_groups {}",
                        cfg.num_hidden_layers, cfg.stored_layers
                    ),
                ));
            }
        }
        if !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err(Error::input(
                path,
                format!(
                    "hidden_size {} is not a multiple of num_attention_heads {}",
                    cfg.hidden_size, cfg.num_attention_heads
                ),
            ));
        }
        if cfg.max_tokens() < 2 {
            return Err(Error::input(
                path,
                format!(
                    "max_position_embeddings {} leaves no room after the padding offset {}",
                    cfg.max_position_embeddings, cfg.position_offset
                ),
            ));
        }
        let head_dim = cfg.hidden_size / cfg.num_attention_heads;
        if head_dim as u32 > crate::kernels::attention::MAX_HEAD_DIM {
            return Err(Error::input(
                path,
                format!(
                    "head dimension {head_dim} is over the attention kernel's limit of {}",
                    crate::kernels::attention::MAX_HEAD_DIM
                ),
            ));
        }
        for (k, v) in raw.id2label.unwrap_or_default() {
            let i: usize = k
                .parse()
                .map_err(|_| Error::input(path, format!("id2label key {k:?} is not an integer")))?;
            cfg.id2label.insert(i, v);
        }
        let (nl, nh) = (cfg.stored_layers, cfg.num_attention_heads);
        cfg.pruned_heads = vec![Vec::new(); nl];
        for (k, heads) in raw.pruned_heads.unwrap_or_default() {
            let l = k.parse::<usize>().ok().filter(|&l| l < nl).ok_or_else(|| {
                Error::input(
                    path,
                    format!("pruned_heads names layer {k:?}; the model has layers 0..{nl}"),
                )
            })?;
            for h in heads {
                if h < 0 || h as usize >= nh {
                    return Err(Error::input(
                        path,
                        format!(
                            "pruned_heads of layer {l} names head {h}; layers have heads 0..{nh}"
                        ),
                    ));
                }
                cfg.pruned_heads[l].push(h as usize);
            }
            cfg.pruned_heads[l].sort_unstable();
            cfg.pruned_heads[l].dedup();
        }
        Ok(cfg)
    }

    /// The longest sequence the position table serves.
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings
            .saturating_sub(self.position_offset)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Heads in the whole model (L × H).
    pub fn total_heads(&self) -> usize {
        self.num_hidden_layers * self.num_attention_heads
    }

    /// The stored layer that application `l` of the encoder runs: `l` itself, or for shared
    /// layers its group, as transformers numbers them (`l / (layers / groups)`).
    pub fn stored_layer(&self, l: usize) -> usize {
        l / (self.num_hidden_layers / self.stored_layers)
    }

    /// Applications of each stored layer (1 unless layers are shared).
    pub fn applications_per_stored_layer(&self) -> usize {
        self.num_hidden_layers / self.stored_layers
    }

    /// Per-application rows [L, H] to stored rows [stored, H]: summed over a stored layer's
    /// applications (scores) or its first application's (masks, equal across them).
    pub fn fold_to_stored(&self, v: &[f32], sum: bool) -> Vec<f32> {
        let h = self.num_attention_heads;
        let mut out = vec![0f32; self.stored_layers * h];
        for l in 0..self.num_hidden_layers {
            let s = self.stored_layer(l);
            if sum || l == 0 || self.stored_layer(l - 1) != s {
                for j in 0..h {
                    out[s * h + j] += v[l * h + j];
                }
            }
        }
        out
    }

    /// Stored rows [stored, H] to every application's row [L, H].
    pub fn expand_stored(&self, v: &[f32]) -> Vec<f32> {
        let h = self.num_attention_heads;
        (0..self.num_hidden_layers)
            .flat_map(|l| v[self.stored_layer(l) * h..][..h].to_vec())
            .collect()
    }

    /// The original indices of the heads layer application `l` still has, ascending.
    pub fn kept_heads(&self, l: usize) -> Vec<usize> {
        self.kept_stored_heads(self.stored_layer(l))
    }

    /// The original indices of the heads stored layer `s` still has, ascending.
    pub fn kept_stored_heads(&self, s: usize) -> Vec<usize> {
        let pruned = self.pruned_heads.get(s).map(Vec::as_slice).unwrap_or(&[]);
        (0..self.num_attention_heads)
            .filter(|h| !pruned.contains(h))
            .collect()
    }

    /// Whether `pruned_heads` removed any head.
    pub fn is_pruned(&self) -> bool {
        self.pruned_heads.iter().any(|p| !p.is_empty())
    }

    pub fn label(&self, class: usize) -> String {
        self.id2label
            .get(&class)
            .cloned()
            .unwrap_or_else(|| format!("LABEL_{class}"))
    }
}

#[cfg(test)]
mod tests {
    use super::relative_bucket;

    #[test]
    fn relative_buckets_are_transformers_mpnet_buckets() {
        // MPNetEncoder.relative_position_bucket of transformers 4.57.1 on these positions
        let rel = [
            -300, -128, -127, -64, -33, -32, -16, -9, -8, -7, -1, 0, 1, 7, 8, 15, 16, 17, 31, 32,
            33, 63, 64, 100, 127, 128, 129, 300,
        ];
        let want = [
            15, 15, 15, 14, 12, 12, 10, 8, 8, 7, 1, 0, 17, 23, 24, 25, 26, 26, 27, 28, 28, 29, 30,
            31, 31, 31, 31, 31,
        ];
        let got: Vec<u32> = rel.iter().map(|&r| relative_bucket(r)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn stored_rows_fold_and_expand_over_shared_layers() {
        let json = r#"{"model_type": "albert", "vocab_size": 10, "hidden_size": 8,
            "embedding_size": 4, "num_hidden_layers": 4, "num_hidden_groups": 2,
            "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 8}"#;
        let c = super::Config::parse(std::path::Path::new("config.json"), json).unwrap();
        assert_eq!((c.stored_layers, c.applications_per_stored_layer()), (2, 2));
        let rows = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        assert_eq!(c.fold_to_stored(&rows, true), [4.0, 6.0, 12.0, 14.0]);
        assert_eq!(c.fold_to_stored(&rows, false), [1.0, 2.0, 5.0, 6.0]);
        assert_eq!(
            c.expand_stored(&[1.0, 0.0, 0.0, 1.0]),
            [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]
        );
    }
}
