//! The UD dev sets parse whole (multiword tokens, empty nodes), with the sentence counts their
//! files declare: the six of ../shared/data/ud when it is there, else the samples shipped in
//! data/ud (English-EWT).

mod common;
use headroom::io::conllu;
use std::path::Path;

#[test]
fn ud_dev_sets_parse_with_every_sentence() {
    let root = common::data_file("ud");
    let shared = common::is_shared_data(&root);
    eprintln!(
        "UD dev sets from {} ({})",
        root.display(),
        if shared {
            "the full data"
        } else {
            "the samples shipped in the repository: ../shared/data/ud is missing"
        }
    );
    let (mut seen, mut with_multi) = (Vec::new(), 0);
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.is_dir())
        .collect();
    dirs.sort();
    for dir in &dirs {
        let files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|f| f.unwrap().path())
            .filter(|f| f.extension().is_some_and(|e| e == "conllu"))
            .collect();
        assert!(!files.is_empty(), "no .conllu in {}", dir.display());
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let declared = text.lines().filter(|l| l.starts_with("# sent_id")).count();
            assert!(declared > 0, "no `# sent_id` in {}", f.display());
            let s = conllu::parse(&f, &text).unwrap();
            assert_eq!(s.len(), declared, "{}", f.display());
            let roots: usize = s
                .iter()
                .map(|x| x.words.iter().filter(|w| w.head == 0).count())
                .sum();
            assert_eq!(roots, s.len(), "one root per sentence in {}", f.display());
            let multi = s.iter().filter(|x| x.units.len() < x.words.len()).count();
            with_multi += multi;
            eprintln!(
                "{}: {} sentences, {multi} with multiword tokens",
                f.display(),
                s.len()
            );
            seen.push(dir.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    eprintln!("parsed {} UD dev set(s): {}", seen.len(), seen.join(", "));
    assert!(with_multi > 0, "multiword tokens exercised");
    if shared {
        assert_eq!(seen.len(), 6, "the six UD dev sets of {}", root.display());
    } else {
        assert!(
            seen.iter().any(|s| s == "UD_English-EWT"),
            "the shipped EWT sample: {seen:?}"
        );
    }
}

/// Sub-token spans come from the tokenizer's word ids: a repeated word maps to its own
/// occurrence (the reference code's `list.index` mapped both to the first), spans are
/// contiguous, disjoint, in order, and cover every token between [CLS] and [SEP].
#[test]
fn word_spans_keep_repeated_words_apart() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/all-MiniLM-L6-v2");
    let tok =
        headroom::model::BertTokenizer::load(&dir.join("tokenizer.json"), 512, false).unwrap();
    let words: Vec<String> = "the cat saw the unbelievably tall cat the"
        .split(' ')
        .map(String::from)
        .collect();
    let (enc, spans, truncated) = tok.encode_word_spans(std::slice::from_ref(&words)).unwrap();
    assert_eq!(truncated, 0);
    let (ids, spans) = (&enc[0].ids, &spans[0]);
    let spans: Vec<std::ops::Range<usize>> = spans.iter().map(|s| s.clone().unwrap()).collect();
    assert_eq!(spans[0].start, 1, "after [CLS]");
    for w in spans.windows(2) {
        assert_eq!(w[0].end, w[1].start, "contiguous and in order: {spans:?}");
    }
    assert_eq!(spans.last().unwrap().end, ids.len() - 1, "up to [SEP]");
    assert!(
        spans[4].len() > 1,
        "a word of several sub-tokens: {spans:?}"
    );
    // the three "the" and the two "cat" are distinct positions holding the same id
    for group in [[0usize, 3, 7].as_slice(), &[1, 6]] {
        let pos: Vec<usize> = group.iter().map(|&w| spans[w].start).collect();
        assert!(pos.windows(2).all(|p| p[0] < p[1]), "{pos:?}");
        assert!(pos.iter().all(|&p| ids[p] == ids[pos[0]]));
    }
    // with truncation, words cut off have no span
    let mut short =
        headroom::model::BertTokenizer::load(&dir.join("tokenizer.json"), 512, false).unwrap();
    short.limit_length(5);
    let (_, spans, truncated) = short.encode_word_spans(&[words]).unwrap();
    assert_eq!(truncated, 1);
    assert!(spans[0][0].is_some() && spans[0][7].is_none());
}
