//! Model families: how each names its tensors and task heads. headroom runs every family
//! through one forward and one backward graph; a family is a description of where that graph's
//! parameters live in a checkpoint, not a copy of the graph.

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
    pub token_type_embeddings: &'static str,
    pub embeddings_layer_norm: &'static str,
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
    /// Below the prefix: the dense layer (and tanh) on the first token that a sequence
    /// classifier reads.
    pub pooler: &'static str,
    /// At the root: the classifier of a task checkpoint.
    pub classifier: &'static str,
}

pub const BERT: Family = Family {
    model_type: "bert",
    class_prefix: "Bert",
    prefix: "bert.",
    word_embeddings: "embeddings.word_embeddings",
    position_embeddings: "embeddings.position_embeddings",
    token_type_embeddings: "embeddings.token_type_embeddings",
    embeddings_layer_norm: "embeddings.LayerNorm",
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
    classifier: "classifier",
};

/// Every family headroom loads.
pub const FAMILIES: &[&Family] = &[&BERT];

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

    /// Layer `l`'s `part` (one of the layer fields above), below the prefix.
    pub fn layer(&self, l: usize, part: &str) -> String {
        format!("{}.{l}.{part}", self.layers)
    }

    /// Which attention tensor of which layer `name` (below the prefix) is: the rows of Q, K or
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
        assert_eq!(Family::of("gpt2"), None);
    }
}
