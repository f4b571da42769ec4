//! tokenizer.json through headroom against transformers 4.57.1's fast tokenizers
//! (tests/goldens/make_tokenizer_goldens.py): WordPiece (the default model), byte-level BPE and
//! sentencepiece Unigram, on the repository's data samples: single sentences, pairs in other
//! scripts, and pre-split words as token classification encodes them.

mod common;
use common::*;
use headroom::model::{BertTokenizer, Encoded};

fn check(golden: &Golden, name: &str, set: &str, got: &[Encoded]) {
    let ids = golden.i64(&format!("{name}.{set}.ids")).1;
    let lengths = golden.i64(&format!("{name}.{set}.lengths")).1;
    assert_eq!(got.len(), lengths.len(), "{name} {set}: examples");
    let mut at = 0;
    for (e, (enc, &n)) in got.iter().zip(&lengths).enumerate() {
        let want: Vec<u32> = ids[at..at + n as usize].iter().map(|&v| v as u32).collect();
        assert_eq!(enc.ids, want, "{name} {set}: example {e}");
        at += n as usize;
    }
}

#[test]
fn token_ids_match_transformers_on_the_data_samples() {
    let golden = Golden::open("tokenizer-ids.safetensors");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let sst2 = headroom::io::input::read_sentences(&root.join("data/sst2/dev.tsv")).unwrap();
    let pairs = |lang: &str| -> Vec<(String, Option<String>)> {
        let p = root.join(format!("data/parallel/en-{lang}.tsv"));
        let rows = headroom::io::input::read_sentences(&p).unwrap();
        rows.into_iter().take(40).collect()
    };
    let words: Vec<Vec<String>> =
        headroom::io::input::read_conll(&root.join("data/wikiann/en/dev.conll"))
            .unwrap()
            .into_iter()
            .take(150)
            .map(|s| s.words)
            .collect();
    for (name, dir) in [
        ("wordpiece", default_model_dir()),
        ("bpe", fixture("tiny-roberta")),
        ("unigram", fixture("tiny-xlm-roberta")),
    ] {
        // no truncation: every example is compared whole
        let tok = BertTokenizer::load(&dir.join("tokenizer.json"), 1 << 20, false).unwrap();
        check(&golden, name, "sst2", &tok.encode_all(&sst2).unwrap().0);
        for lang in ["zh", "ar", "hi"] {
            let set = format!("en-{lang}");
            check(
                &golden,
                name,
                &set,
                &tok.encode_all(&pairs(lang)).unwrap().0,
            );
        }
        check(
            &golden,
            name,
            "wikiann",
            &tok.encode_words(&words).unwrap().0,
        );
    }
}
