//! Batch planning: longest first, at most `batch_size` examples and `max_tokens` padded tokens.

use headroom::model::batch::plan_batches;

#[test]
fn batches_are_sorted_by_length_and_bounded() {
    let lengths = [5usize, 1, 9, 3, 9, 2, 7];
    let batches = plan_batches(&lengths, 3, 1000);
    assert_eq!(batches, vec![vec![2, 4, 6], vec![0, 3, 5], vec![1]]);
    // every example exactly once
    let mut all: Vec<usize> = batches.concat();
    all.sort();
    assert_eq!(all, (0..lengths.len()).collect::<Vec<_>>());
}

#[test]
fn padded_tokens_stay_within_the_cap() {
    let lengths = [10usize, 10, 10, 4, 4, 4, 4, 4, 4];
    let batches = plan_batches(&lengths, 100, 25);
    for b in &batches {
        let t = b.iter().map(|&i| lengths[i]).max().unwrap();
        assert!(b.len() * t <= 25, "{b:?}");
    }
    assert_eq!(batches[0].len(), 2);
    // a single example longer than the cap still gets its own batch
    assert_eq!(plan_batches(&[30, 2], 8, 25), vec![vec![0], vec![1]]);
}
