//! Model families: how each names its tensors and task heads. headroom runs every family
//! through one forward and one backward graph; a family is a description of where that graph's
//! parameters live in a checkpoint, and of the few places where the maths differs, not a copy
//! of the graph.

/// Where one family keeps the parameters of the BERT-shaped graph.
#[derive(Debug, PartialEq, Eq)]
pub struct Family {
    /// config.json's `model_type`.
    pub model_type: &'static str,
    /// The start of `architectures` names (`Bert` in `BertForSequenceClassification`).
    pub class_prefix: &'static str,
    /// The encoder's tensors' prefix in a checkpoint with a task head (a bare encoder's
    /// tensors may lack it).
    pub prefix: &'static str,
    /// Below the prefix: the embedding tables and their LayerNorm.
    pub word_embeddings: &'static str,
    pub position_embeddings: &'static str,
    /// None: the family has no token types (every token adds the same zero row).
    pub token_type_embeddings: Option<&'static str>,
    pub embeddings_layer_norm: &'static str,
    /// Below the prefix: the projection from the embedding width to the hidden width, where
    /// the family factorises its embeddings and a checkpoint's widths differ (ELECTRA).
    pub embeddings_project: Option<&'static str>,
    /// Below the prefix: layer `l`'s tensors are `{layers}.{l}.{part}`.
    pub layers: &'static str,
    /// The parts of a layer: Q, K and V, the attention output projection and its LayerNorm,
    /// the feed-forward's two projections and its LayerNorm.
    pub query_key_value: [&'static str; 3],
    pub attention_output: &'static str,
    pub attention_layer_norm: &'static str,
    pub intermediate: &'static str,
    pub output: &'static str,
    pub output_layer_norm: &'static str,
    /// The dense layer on the first token that a sequence classifier reads: its name (below
    /// the prefix when `pooler_prefixed`, else at the root, beside the classifier) and its
    /// activation.
    pub pooler: &'static str,
    pub pooler_prefixed: bool,
    pub pooler_activation: PoolerActivation,
    /// At the root: the last linear layer of a sequence classifier and of a token classifier.
    pub seq_classifier: &'static str,
    pub token_classifier: &'static str,
    /// Positions count from padding_idx + 1 (RoBERTa), not from 0.
    pub positions_after_padding: bool,
    /// Below the prefix: a relative position bias table [buckets, heads] that every layer adds
    /// to its attention scores (MPNet), bucketed as `relative_position_bucket` does.
    pub relative_attention_bias: Option<&'static str>,
    /// config.json's `hidden_act` when it names none.
    pub default_hidden_act: &'static str,
    /// Layers are shared (ALBERT): the checkpoint stores `num_hidden_groups` layers, and the
    /// index in `{layers}.{index}.{part}` is the group an application belongs to.
    pub shared_layers: bool,
    /// The masked-LM head of a `*ForMaskedLM` checkpoint.
    pub mlm: MlmNames,
    /// At the root: the replaced-token-detection head (ELECTRA's discriminator,
    /// `ElectraForPreTraining`): a dense layer with `hidden_act`, then one logit per token.
    pub discriminator: Option<[&'static str; 2]>,
}

/// Where a masked-LM head keeps its tensors, at the root of the checkpoint: a dense layer
/// (hidden → embedding width) with GELU, a LayerNorm, and a decoder onto the vocabulary whose
/// weight is the word embedding table unless the checkpoint stores its own.
#[derive(Debug, PartialEq, Eq)]
pub struct MlmNames {
    pub transform: &'static str,
    pub layer_norm: &'static str,
    /// The decoder's weight is `{decoder}.weight` when stored (else tied to the word table).
    pub decoder: &'static str,
    /// The vocabulary bias, a tensor's full name.
    pub bias: &'static str,
    /// The transform's GELU is config.json's `hidden_act` (else always the erf form).
    pub hidden_act: bool,
}

pub const BERT: Family = Family {
    model_type: "bert",
    class_prefix: "Bert",
    prefix: "bert.",
    word_embeddings: "embeddings.word_embeddings",
    position_embeddings: "embeddings.position_embeddings",
    token_type_embeddings: Some("embeddings.token_type_embeddings"),
    embeddings_layer_norm: "embeddings.LayerNorm",
    embeddings_project: None,
    layers: "encoder.layer",
    query_key_value: [
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
    ],
    attention_output: "attention.output.dense",
    attention_layer_norm: "attention.output.LayerNorm",
    intermediate: "intermediate.dense",
    output: "output.dense",
    output_layer_norm: "output.LayerNorm",
    pooler: "pooler.dense",
    pooler_prefixed: true,
    pooler_activation: PoolerActivation::Tanh,
    seq_classifier: "classifier",
    token_classifier: "classifier",
    positions_after_padding: false,
    relative_attention_bias: None,
    default_hidden_act: "gelu",
    shared_layers: false,
    mlm: MlmNames {
        transform: "cls.predictions.transform.dense",
        layer_norm: "cls.predictions.transform.LayerNorm",
        decoder: "cls.predictions.decoder",
        bias: "cls.predictions.bias",
        hidden_act: true,
    },
    discriminator: None,
};

/// DistilBERT (`distilbert`): BERT's layer with other names, no token types, and a
/// `pre_classifier` + ReLU in place of the pooler.
pub const DISTILBERT: Family = Family {
    model_type: "distilbert",
    class_prefix: "DistilBert",
    prefix: "distilbert.",
    word_embeddings: "embeddings.word_embeddings",
    position_embeddings: "embeddings.position_embeddings",
    token_type_embeddings: None,
    embeddings_layer_norm: "embeddings.LayerNorm",
    embeddings_project: None,
    layers: "transformer.layer",
    query_key_value: ["attention.q_lin", "attention.k_lin", "attention.v_lin"],
    attention_output: "attention.out_lin",
    attention_layer_norm: "sa_layer_norm",
    intermediate: "ffn.lin1",
    output: "ffn.lin2",
    output_layer_norm: "output_layer_norm",
    pooler: "pre_classifier",
    pooler_prefixed: false,
    pooler_activation: PoolerActivation::Relu,
    seq_classifier: "classifier",
    token_classifier: "classifier",
    positions_after_padding: false,
    relative_attention_bias: None,
    default_hidden_act: "gelu",
    shared_layers: false,
    mlm: MlmNames {
        transform: "vocab_transform",
        layer_norm: "vocab_layer_norm",
        decoder: "vocab_projector",
        bias: "vocab_projector.bias",
        hidden_act: true,
    },
    discriminator: None,
};

/// RoBERTa (`roberta`): BERT's encoder under `roberta.`, positions after the padding index, one
/// token type, and a classification head (`classifier.dense` + tanh + `classifier.out_proj`) in
/// place of the pooler. A bare RobertaModel's own pooler is not read.
pub const ROBERTA: Family = Family {
    model_type: "roberta",
    class_prefix: "Roberta",
    prefix: "roberta.",
    pooler: "classifier.dense",
    pooler_prefixed: false,
    seq_classifier: "classifier.out_proj",
    positions_after_padding: true,
    mlm: MlmNames {
        transform: "lm_head.dense",
        layer_norm: "lm_head.layer_norm",
        decoder: "lm_head.decoder",
        bias: "lm_head.bias",
        hidden_act: false,
    },
    ..BERT
};

/// XLM-R (`xlm-roberta`): RoBERTa's graph and names (with a sentencepiece tokenizer).
pub const XLM_ROBERTA: Family = Family {
    model_type: "xlm-roberta",
    class_prefix: "XLMRoberta",
    ..ROBERTA
};

/// ELECTRA (`electra`): BERT's encoder under `electra.`, embeddings of their own width
/// (`embedding_size`) projected to the hidden width, and a classification head
/// (`classifier.dense` + GELU + `classifier.out_proj`). Its masked-LM head is the generator's
/// (`ElectraForMaskedLM`), which maps the hidden states back to the embedding width; its
/// discriminator head (`ElectraForPreTraining`) gives one logit per token.
pub const ELECTRA: Family = Family {
    model_type: "electra",
    class_prefix: "Electra",
    prefix: "electra.",
    embeddings_project: Some("embeddings_project"),
    pooler: "classifier.dense",
    pooler_prefixed: false,
    pooler_activation: PoolerActivation::Gelu,
    seq_classifier: "classifier.out_proj",
    mlm: MlmNames {
        transform: "generator_predictions.dense",
        layer_norm: "generator_predictions.LayerNorm",
        decoder: "generator_lm_head",
        bias: "generator_lm_head.bias",
        hidden_act: false,
    },
    discriminator: Some([
        "discriminator_predictions.dense",
        "discriminator_predictions.dense_prediction",
    ]),
    ..BERT
};

/// ALBERT (`albert`): factorised embeddings always projected by
/// `encoder.embedding_hidden_mapping_in`, `num_hidden_groups` stored layers each applied
/// `num_hidden_layers / num_hidden_groups` times in a row, the tanh GELU, and BERT's pooler and
/// heads under other names.
pub const ALBERT: Family = Family {
    model_type: "albert",
    class_prefix: "Albert",
    prefix: "albert.",
    embeddings_project: Some("encoder.embedding_hidden_mapping_in"),
    layers: "encoder.albert_layer_groups",
    query_key_value: [
        "albert_layers.0.attention.query",
        "albert_layers.0.attention.key",
        "albert_layers.0.attention.value",
    ],
    attention_output: "albert_layers.0.attention.dense",
    attention_layer_norm: "albert_layers.0.attention.LayerNorm",
    intermediate: "albert_layers.0.ffn",
    output: "albert_layers.0.ffn_output",
    output_layer_norm: "albert_layers.0.full_layer_layer_norm",
    pooler: "pooler",
    default_hidden_act: "gelu_new",
    shared_layers: true,
    mlm: MlmNames {
        transform: "predictions.dense",
        layer_norm: "predictions.LayerNorm",
        decoder: "predictions.decoder",
        bias: "predictions.bias",
        hidden_act: true,
    },
    ..BERT
};

/// MPNet (`mpnet`): BERT's layer with `attention.attn.{q,k,v,o}`, no token types, positions
/// after the padding index as RoBERTa's, a relative position bias shared by every layer, and
/// RoBERTa's classification and masked-LM heads.
pub const MPNET: Family = Family {
    model_type: "mpnet",
    class_prefix: "MPNet",
    prefix: "mpnet.",
    token_type_embeddings: None,
    query_key_value: ["attention.attn.q", "attention.attn.k", "attention.attn.v"],
    attention_output: "attention.attn.o",
    attention_layer_norm: "attention.LayerNorm",
    relative_attention_bias: Some("encoder.relative_attention_bias"),
    ..ROBERTA
};

/// Every family headroom loads.
pub const FAMILIES: &[&Family] = &[
    &BERT,
    &DISTILBERT,
    &ROBERTA,
    &XLM_ROBERTA,
    &ELECTRA,
    &ALBERT,
    &MPNET,
];

impl Family {
    /// The family of a config.json `model_type`.
    pub fn of(model_type: &str) -> Option<&'static Family> {
        FAMILIES
            .iter()
            .copied()
            .find(|f| f.model_type == model_type)
    }

    /// The supported `model_type`s, for messages.
    pub fn supported() -> String {
        FAMILIES
            .iter()
            .map(|f| f.model_type)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The pooler's name in a checkpoint whose encoder tensors carry `prefix`.
    pub fn pooler_name(&self, prefix: &str) -> String {
        if self.pooler_prefixed {
            format!("{prefix}{}", self.pooler)
        } else {
            self.pooler.to_string()
        }
    }

    /// Stored layer `l`'s `part` (one of the layer fields above), below the prefix (for shared
    /// layers, `l` is the group: see `Config::stored_layer`).
    pub fn layer(&self, l: usize, part: &str) -> String {
        format!("{}.{l}.{part}", self.layers)
    }

    /// Which attention tensor of which stored layer `name` (below the prefix) is: the rows of Q, K or
    /// V (weight or bias) select heads, the columns of the output projection's weight do.
    pub fn attention_part(&self, name: &str) -> Option<(usize, HeadAxis)> {
        let rest = name.strip_prefix(self.layers)?.strip_prefix('.')?;
        let (l, tail) = rest.split_once('.')?;
        let l = l.parse::<usize>().ok()?;
        if tail == format!("{}.weight", self.attention_output) {
            return Some((l, HeadAxis::Columns));
        }
        let qkv = self
            .query_key_value
            .iter()
            .any(|p| tail == format!("{p}.weight") || tail == format!("{p}.bias"));
        qkv.then_some((l, HeadAxis::Rows))
    }

    /// The last linear layer of `task`'s head.
    pub fn classifier(&self, task: super::TaskHead) -> &'static str {
        match task {
            super::TaskHead::TokenClassification => self.token_classifier,
            _ => self.seq_classifier,
        }
    }

    /// The `architectures` entry of a checkpoint with this task head.
    pub fn architecture(&self, task: super::TaskHead) -> String {
        let suffix = match task {
            super::TaskHead::SequenceClassification => "ForSequenceClassification",
            super::TaskHead::TokenClassification => "ForTokenClassification",
            super::TaskHead::None => "Model",
        };
        format!("{}{suffix}", self.class_prefix)
    }
}

/// The activation after the pooler's dense layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolerActivation {
    Tanh,
    Relu,
    /// The erf form; its backward reads the pre-activation, which the forward then keeps.
    Gelu,
}

impl PoolerActivation {
    /// The matmul epilogue that applies it.
    pub fn act(self) -> crate::kernels::Act {
        match self {
            PoolerActivation::Tanh => crate::kernels::Act::Tanh,
            PoolerActivation::Relu => crate::kernels::Act::Relu,
            PoolerActivation::Gelu => crate::kernels::Act::Gelu,
        }
    }
}

/// Along which axis of an attention tensor the heads lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadAxis {
    Rows,
    Columns,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_parts_are_found_by_layer_and_axis() {
        let f = &BERT;
        assert_eq!(
            f.attention_part("encoder.layer.3.attention.self.key.bias"),
            Some((3, HeadAxis::Rows))
        );
        assert_eq!(
            f.attention_part("encoder.layer.11.attention.output.dense.weight"),
            Some((11, HeadAxis::Columns))
        );
        assert_eq!(
            f.attention_part("encoder.layer.3.attention.output.dense.bias"),
            None
        );
        assert_eq!(
            f.attention_part("encoder.layer.x.attention.self.key.bias"),
            None
        );
        assert_eq!(f.attention_part("embeddings.LayerNorm.weight"), None);
        assert_eq!(
            f.architecture(crate::model::TaskHead::TokenClassification),
            "BertForTokenClassification"
        );
        assert_eq!(Family::of("bert"), Some(&BERT));
        assert_eq!(
            DISTILBERT.attention_part("transformer.layer.1.attention.q_lin.weight"),
            Some((1, HeadAxis::Rows))
        );
        assert_eq!(DISTILBERT.pooler_name("distilbert."), "pre_classifier");
        assert_eq!(BERT.pooler_name("bert."), "bert.pooler.dense");
        assert_eq!(Family::of("gpt2"), None);
    }
}
