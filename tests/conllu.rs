//! The UD dev sets of ../shared/data/ud parse whole (multiword tokens, empty nodes), with the
//! sentence counts their files declare. Skipped, saying so, where the data is not there.

use headroom::conllu;
use std::path::Path;

#[test]
fn ud_dev_sets_parse_with_every_sentence() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ud");
    if !root.is_dir() {
        eprintln!("skipping: {} is missing", root.display());
        return;
    }
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "conllu") {
                let text = std::fs::read_to_string(&f).unwrap();
                let declared = text.lines().filter(|l| l.starts_with("# sent_id")).count();
                let s = conllu::parse(&f, &text).unwrap();
                assert_eq!(s.len(), declared, "{}", f.display());
                let roots: usize = s
                    .iter()
                    .map(|x| x.words.iter().filter(|w| w.head == 0).count())
                    .sum();
                assert_eq!(roots, s.len(), "one root per sentence in {}", f.display());
                let multi = s.iter().filter(|x| x.units.len() < x.words.len()).count();
                eprintln!(
                    "{}: {} sentences, {multi} with multiword tokens",
                    f.display(),
                    s.len()
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 1);
}
