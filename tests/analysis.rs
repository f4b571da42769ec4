//! The attention analysis pass on the default model: every real query's attention, split into
//! words and special tokens, sums to 1; padding queries are zero; sieve ratios are consistent
//! with the word masses.

mod common;
use common::*;
use headroom::kernels::attention_analysis::{token_info, SIEVES};
use headroom::model::{Encoded, Model};

#[test]
fn analysis_masses_add_up_on_the_default_model() {
    let model = Model::load(gpu(), &default_model_dir()).unwrap();
    let sentences: Vec<Vec<String>> = [
        "the cat saw the unbelievably tall cat",
        "yes",
        "a dog , a dog and another dog barked at the postman",
    ]
    .iter()
    .map(|s| s.split(' ').map(String::from).collect())
    .collect();
    let (enc, spans, _) = model.tokenizer.encode_word_spans(&sentences).unwrap();
    let mut tokens = Vec::new();
    for (e, sp) in enc.iter().zip(&spans) {
        let n = e.ids.len();
        let mut word = vec![None; n];
        for (w, r) in sp.iter().enumerate() {
            for j in r.clone().unwrap() {
                word[j] = Some(w);
            }
        }
        tokens.push(
            (0..n)
                .map(|j| token_info(word[j], 0, j == 0, j == n - 1))
                .collect::<Vec<u32>>(),
        );
    }
    let refs: Vec<&Encoded> = enc.iter().collect();
    let n_words = sentences.iter().map(Vec::len).max().unwrap();
    let st = model
        .attention_stats(gpu(), &refs, &tokens, n_words)
        .unwrap();
    assert_eq!(st.sieve.len(), model.config.num_hidden_layers);
    for l in 0..st.sieve.len() {
        for j in 0..st.computed[l] {
            for (e, &n) in st.lengths.iter().enumerate() {
                for i in 0..st.seq {
                    let words: f32 = (0..n_words).map(|w| st.word_at(e, l, j, i, w)).sum();
                    if i >= n {
                        assert_eq!(words, 0.0);
                        assert!((0..SIEVES).all(|k| st.sieve_at(e, l, j, i, k) == 0.0));
                        continue;
                    }
                    // [CLS] and [SEP] masses from their ratios (one token each, n real tokens)
                    let cls = st.sieve_at(e, l, j, i, 1) / n as f32;
                    let sep = st.sieve_at(e, l, j, i, 2) / n as f32;
                    let total = words + cls + sep;
                    assert!(
                        (total - 1.0).abs() < 1e-4,
                        "layer {l} head {j} ex {e} q {i}: {total}"
                    );
                    let delim = st.sieve_at(e, l, j, i, 3) * 2.0 / n as f32;
                    assert!((delim - cls - sep).abs() < 1e-5);
                    // single sentences: the block sieve is the word mass over its share
                    let block = st.sieve_at(e, l, j, i, 4) * (n - 2) as f32 / n as f32;
                    assert!((block - words).abs() < 1e-4);
                }
            }
        }
    }
}
