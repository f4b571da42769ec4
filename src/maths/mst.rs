//! Maximum spanning arborescence (Chu–Liu/Edmonds): the dependency tree a head's word-level
//! attention implies, rooted at a given word. O(n³) by repeated cycle contraction; sentences
//! are short.

/// Parents of the maximum-weight spanning arborescence of the complete directed graph on `n`
/// nodes rooted at `root`, where `score(d, h)` weighs the edge head h → dependent d. The root's
/// entry is `root` itself. Scores must be finite.
pub fn max_arborescence(n: usize, root: usize, score: impl Fn(usize, usize) -> f64) -> Vec<usize> {
    assert!(root < n, "root {root} outside {n} nodes");
    let w: Vec<Vec<f64>> = (0..n)
        .map(|d| {
            (0..n)
                .map(|h| {
                    if h == d || d == root {
                        f64::NEG_INFINITY // no self loops, nothing enters the root
                    } else {
                        score(d, h)
                    }
                })
                .collect()
        })
        .collect();
    let mut parent = edmonds(&w, root);
    parent[root] = root;
    parent
}

/// `w[d][h]`: weight of h → d (−∞ where absent). Returns a parent per node (the root's is
/// unspecified).
fn edmonds(w: &[Vec<f64>], root: usize) -> Vec<usize> {
    let n = w.len();
    // best incoming edge of every non-root node
    let best: Vec<usize> = (0..n)
        .map(|d| {
            if d == root {
                return root;
            }
            (0..n)
                .filter(|&h| h != d)
                .max_by(|&a, &b| w[d][a].total_cmp(&w[d][b]).then(b.cmp(&a)))
                .expect("n ≥ 2 for a non-root node")
        })
        .collect();
    let Some(cycle) = find_cycle(&best, root) else {
        return best;
    };
    // contract the cycle into one node c; the rest keep their order
    let in_cycle: Vec<bool> = (0..n).map(|v| cycle.contains(&v)).collect();
    let outside: Vec<usize> = (0..n).filter(|&v| !in_cycle[v]).collect();
    let m = outside.len() + 1;
    let c = m - 1;
    let idx = |v: usize| -> usize {
        if in_cycle[v] {
            c
        } else {
            outside
                .iter()
                .position(|&u| u == v)
                .expect("outside the cycle")
        }
    };
    let cycle_weight: f64 = cycle.iter().map(|&v| w[v][best[v]]).sum();
    let mut cw = vec![vec![f64::NEG_INFINITY; m]; m];
    // for the contracted node: which cycle node an entering edge from h lands on
    let mut enter_at = vec![usize::MAX; n];
    // for edges leaving the cycle into d: which cycle node they come from
    let mut leave_from = vec![usize::MAX; n];
    for d in 0..n {
        for h in 0..n {
            if h == d || w[d][h] == f64::NEG_INFINITY {
                continue;
            }
            let (cd, ch) = (idx(d), idx(h));
            if cd == ch {
                continue;
            }
            let val = if in_cycle[d] {
                // entering the cycle at d replaces d's cycle edge
                w[d][h] - w[d][best[d]] + cycle_weight
            } else {
                w[d][h]
            };
            if val > cw[cd][ch] {
                cw[cd][ch] = val;
                if in_cycle[d] {
                    enter_at[h] = d;
                }
                if in_cycle[h] {
                    leave_from[d] = h;
                }
            }
        }
    }
    let sub = edmonds(&cw, idx(root));
    // expand
    let mut parent = best.clone();
    for (i, &v) in outside.iter().enumerate() {
        if v == root {
            continue;
        }
        let p = sub[i];
        parent[v] = if p == c { leave_from[v] } else { outside[p] };
    }
    let from = outside[sub[c]];
    let entry = enter_at[from];
    parent[entry] = from;
    parent
}

/// A cycle among the chosen parents (not through the root), if any.
fn find_cycle(parent: &[usize], root: usize) -> Option<Vec<usize>> {
    let n = parent.len();
    let mut state = vec![0u8; n]; // 0 new, 1 on the current walk, 2 done
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut path = Vec::new();
        let mut v = start;
        while state[v] == 0 && v != root {
            state[v] = 1;
            path.push(v);
            v = parent[v];
        }
        if v != root && state[v] == 1 {
            let pos = path.iter().position(|&u| u == v).expect("on the walk");
            return Some(path[pos..].to_vec());
        }
        for u in path {
            state[u] = 2;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The best tree by brute force over every parent assignment (small n).
    fn brute(n: usize, root: usize, w: &[Vec<f64>]) -> f64 {
        let mut best = f64::NEG_INFINITY;
        let others: Vec<usize> = (0..n).filter(|&v| v != root).collect();
        let total = n.pow(others.len() as u32);
        for code in 0..total {
            let mut parent = vec![root; n];
            let mut c = code;
            for &v in &others {
                parent[v] = c % n;
                c /= n;
            }
            if others.iter().any(|&v| parent[v] == v) || find_cycle(&parent, root).is_some() {
                continue;
            }
            best = best.max(others.iter().map(|&v| w[v][parent[v]]).sum());
        }
        best
    }

    fn is_tree(parent: &[usize], root: usize) -> bool {
        parent[root] == root
            && (0..parent.len()).all(|v| v == root || parent[v] != v)
            && find_cycle(parent, root).is_none()
    }

    #[test]
    fn a_known_graph_with_a_cycle_to_contract() {
        // 1 and 2 prefer each other (a cycle); the root 0 is best entered at 2
        let w = [
            vec![0.0, 0.0, 0.0],
            vec![1.0, 0.0, 10.0], // 1's parents: 0 → 1, 2 → 10
            vec![5.0, 9.0, 0.0],  // 2's parents: 0 → 5, 1 → 9
        ];
        let p = max_arborescence(3, 0, |d, h| w[d][h]);
        // 0→2→1 scores 15; 0→1→2 scores 10; 0→1, 0→2 scores 6
        assert_eq!(p, vec![0, 2, 0]);
    }

    #[test]
    fn matches_brute_force_on_random_graphs() {
        let mut s = 12345u64;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as f64 / (1u64 << 31) as f64
        };
        for n in 2..=6 {
            for trial in 0..40 {
                let w: Vec<Vec<f64>> = (0..n).map(|_| (0..n).map(|_| rnd()).collect()).collect();
                let root = trial % n;
                let p = max_arborescence(n, root, |d, h| w[d][h]);
                assert!(is_tree(&p, root), "n={n} trial={trial}: {p:?}");
                let got: f64 = (0..n).filter(|&v| v != root).map(|v| w[v][p[v]]).sum();
                let want = brute(n, root, &w);
                assert!(
                    (got - want).abs() < 1e-9,
                    "n={n} trial={trial}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn one_node() {
        assert_eq!(max_arborescence(1, 0, |_, _| 1.0), vec![0]);
    }
}
