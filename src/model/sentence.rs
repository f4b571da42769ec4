//! sentence-transformers directories: the Pooling (and Normalize) modules that modules.json
//! lists after the Transformer, read so that `forward --sentence-embedding` computes what
//! `SentenceTransformer.encode` does.

use crate::error::{Error, Result};
use crate::kernels::Pooling;
use std::path::Path;

/// How a sentence-transformers directory turns token states into a sentence embedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentencePooling {
    pub mode: Pooling,
    /// A Normalize module follows the pooling: L2-normalise each embedding.
    pub normalize: bool,
    /// sentence_bert_config.json's `max_seq_length`: longer texts are truncated to it.
    pub max_seq_length: Option<usize>,
}

#[derive(serde::Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| Error::input(path, format!("not valid JSON here: {e}")))
}

impl SentencePooling {
    /// The pooling of the sentence-transformers directory `dir`; an error names the file when
    /// `dir` is not one or uses a module headroom does not run.
    pub fn load(dir: &Path) -> Result<SentencePooling> {
        let modules_path = dir.join("modules.json");
        if !modules_path.is_file() {
            return Err(Error::input(
                &modules_path,
                "missing: --sentence-embedding needs a sentence-transformers directory",
            ));
        }
        let modules: Vec<Module> = read_json(&modules_path)?;
        let kind = |m: &Module| m.kind.rsplit('.').next().unwrap_or("").to_string();
        let mut pooling = None;
        let mut normalize = false;
        for (i, m) in modules.iter().enumerate() {
            match (i, kind(m).as_str()) {
                (0, "Transformer") if m.path.is_empty() => {}
                (0, _) => {
                    return Err(Error::input(
                        &modules_path,
                        format!(
                            "the first module is {} at {:?}; headroom reads a Transformer stored in the directory itself",
                            m.kind, m.path
                        ),
                    ))
                }
                (_, "Pooling") if pooling.is_none() => {
                    pooling = Some(Self::pooling_mode(&dir.join(&m.path).join("config.json"))?)
                }
                (_, "Normalize") if pooling.is_some() => normalize = true,
                _ => {
                    return Err(Error::input(
                        &modules_path,
                        format!("module {} is not supported (Transformer, Pooling, Normalize)", m.kind),
                    ))
                }
            }
        }
        let mode = pooling.ok_or_else(|| Error::input(&modules_path, "no Pooling module"))?;
        #[derive(serde::Deserialize)]
        struct BertConfig {
            max_seq_length: Option<usize>,
        }
        let st_config = dir.join("sentence_bert_config.json");
        let max_seq_length = if st_config.is_file() {
            read_json::<BertConfig>(&st_config)?.max_seq_length
        } else {
            None
        };
        Ok(SentencePooling {
            mode,
            normalize,
            max_seq_length,
        })
    }

    /// The one pooling mode a Pooling module's config.json switches on.
    fn pooling_mode(path: &Path) -> Result<Pooling> {
        let cfg: serde_json::Map<String, serde_json::Value> = read_json(path)?;
        let on = |key: &str| cfg.get(key).and_then(|v| v.as_bool()).unwrap_or(false);
        let modes = [
            ("pooling_mode_mean_tokens", Pooling::Mean),
            ("pooling_mode_cls_token", Pooling::First),
            ("pooling_mode_max_tokens", Pooling::Max),
            ("pooling_mode_mean_sqrt_len_tokens", Pooling::MeanSqrtLen),
        ];
        let unsupported = ["pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"];
        if let Some(k) = unsupported.iter().find(|k| on(k)) {
            return Err(Error::input(path, format!("{k} is not supported")));
        }
        let chosen: Vec<Pooling> = modes
            .iter()
            .filter(|(k, _)| on(k))
            .map(|&(_, m)| m)
            .collect();
        match chosen[..] {
            [m] => Ok(m),
            _ => Err(Error::input(
                path,
                "exactly one of pooling_mode_mean_tokens, _cls_token, _max_tokens and _mean_sqrt_len_tokens must be true",
            )),
        }
    }
}
