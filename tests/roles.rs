//! `headroom roles` end to end on the default model with a small CoNLL-U file and a TSV of
//! pairs: roles.json holds a test per head and role, the plots exist, and malformed CoNLL-U
//! fails with one line naming the file and line.

mod common;
use common::*;

const SENTENCES: &[&str] = &[
    "1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n2\tcat\tcat\tNOUN\t_\t_\t3\tnsubj\t_\t_\n3\tsaw\tsee\tVERB\t_\t_\t0\troot\t_\t_\n4\tthe\tthe\tDET\t_\t_\t5\tdet\t_\t_\n5\tdog\tdog\tNOUN\t_\t_\t3\tobj\t_\t_\n6\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_\n",
    "1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\tdo\tAUX\t_\t_\t3\taux\t_\t_\n2\tn't\tnot\tPART\t_\t_\t3\tadvmod\t_\t_\n3\tgo\tgo\tVERB\t_\t_\t0\troot\t_\t_\n3.1\tgo\tgo\tVERB\t_\t_\t_\t_\t0:root\t_\n",
    "1\tA\ta\tDET\t_\t_\t3\tdet\t_\t_\n2\tsmall\tsmall\tADJ\t_\t_\t3\tamod\t_\t_\n3\tdog\tdog\tNOUN\t_\t_\t4\tnsubj\t_\t_\n4\tbarked\tbark\tVERB\t_\t_\t0\troot\t_\t_\n",
];

#[test]
fn roles_on_conllu_and_pairs() {
    let dir = std::env::temp_dir().join(format!("headroom-roles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let model = default_model_dir();
    let conllu = dir.join("s.conllu");
    let text: String = (0..4)
        .flat_map(|_| SENTENCES.iter().map(|s| format!("# sent_id = x\n{s}\n")))
        .collect();
    std::fs::write(&conllu, text).unwrap();
    let out = dir.join("out");
    let r = headroom(&[
        "roles",
        "--model",
        model.to_str().unwrap(),
        "--data",
        conllu.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--min-sentences",
        "3",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = read_json(&out.join("roles.json"));
    assert_eq!(v["sentences"], 12);
    let tests = v["tests"].as_array().unwrap();
    let roles: std::collections::BTreeSet<&str> =
        tests.iter().map(|t| t["role"].as_str().unwrap()).collect();
    for role in [
        "local",
        "cls",
        "sep",
        "delimiter",
        "dep:det",
        "dep:all",
        "dep:nsubj",
    ] {
        assert!(roles.contains(role), "{role} missing from {roles:?}");
        let n = tests.iter().filter(|t| t["role"] == role).count();
        assert_eq!(n, 72, "{role}: one test per head");
    }
    assert!(!roles.contains("block"), "no pairs, no block role");
    // dep:det is defined in 8 of the 12 sentences
    let det = tests.iter().find(|t| t["role"] == "dep:det").unwrap();
    assert_eq!(det["sentences"], 8);
    for t in tests {
        let (p, q) = (t["p"].as_f64().unwrap(), t["p_corrected"].as_f64().unwrap());
        assert!((0.0..=1.0).contains(&p) && q >= p && q <= 1.0, "{t}");
        assert_eq!(t["has_role"].as_bool().unwrap(), q < 0.05);
    }
    for f in [
        "role_map.png",
        "role_map.svg",
        "role_local.svg",
        "role_dep_det.png",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }

    // syntax on the same sentences: det arcs are The→cat, the→dog (+1) and A→dog (+2)
    let sx = dir.join("syntax");
    let r = headroom(&[
        "syntax",
        "--model",
        model.to_str().unwrap(),
        "--data",
        conllu.to_str().unwrap(),
        "--out",
        sx.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = read_json(&sx.join("syntax.json"));
    let rel = |name: &str| {
        v["relations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["relation"] == name)
            .unwrap()
            .clone()
    };
    let det = rel("det");
    assert_eq!(det["arcs"], 12);
    assert_eq!(det["best_offset"], 1);
    assert!((det["best_offset_accuracy"].as_f64().unwrap() - 8.0 / 12.0).abs() < 1e-12);
    assert_eq!(det["most_frequent_offset"], 1);
    assert!((det["offset_accuracy"]["2"].as_f64().unwrap() - 4.0 / 12.0).abs() < 1e-12);
    assert_eq!(det["offset_accuracy"]["-1"], 0.0);
    // arcs: 5 + 2 (the multiword token's two words to "go") + 3 per block of three sentences
    assert_eq!(rel("all")["arcs"], 40);
    for x in v["relations"].as_array().unwrap() {
        for dir in ["dep_to_head", "head_to_dep"] {
            for row in x[dir].as_array().unwrap() {
                for a in row.as_array().unwrap() {
                    let a = a.as_f64().unwrap();
                    assert!((0.0..=1.0).contains(&a));
                }
            }
        }
    }
    let uas = v["best_mst"]["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&uas));
    assert!(sx.join("mst_uas.png").is_file() && sx.join("dep_to_head_all.svg").is_file());
    // compare a role map with itself; a roles.json needs --role
    let roles_json = out.join("roles.json");
    let rj = roles_json.to_str().unwrap();
    let r = headroom(&["compare", rj, rj, "--role", "local"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let c: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(c["spearman"]["value"], 1.0);
    assert_eq!(c["top_k_jaccard"][0][2], 1.0);
    assert_user_error(
        &headroom(&["compare", rj, rj]),
        "--role",
        "a roles.json without --role",
    );
    // three plain maps: every pair as matrices, a table and a heatmap
    let maps: Vec<String> = [
        "[[1,2,3],[4,5,6]]",
        "[[6,5,4],[3,2,1]]",
        "[[1,2,3],[6,5,4]]",
    ]
    .iter()
    .enumerate()
    .map(|(i, m)| {
        let f = dir.join(format!("map{i}.json"));
        std::fs::write(&f, m).unwrap();
        f.to_str().unwrap().to_string()
    })
    .collect();
    let plots = dir.join("agreement");
    let mut args = vec![
        "compare", &maps[0], &maps[1], &maps[2], "--labels", "en,de,fr",
    ];
    args.extend(["--plot", plots.to_str().unwrap()]);
    let r = headroom(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let c: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(c["maps"], serde_json::json!(["en", "de", "fr"]));
    assert_eq!(c["spearman"][0][1], -1.0);
    assert_eq!(c["spearman"][1][0], -1.0);
    assert_eq!(c["spearman"][2][2], 1.0);
    assert!((c["spearman"][0][2].as_f64().unwrap() - (1.0 - 48.0 / 210.0)).abs() < 1e-12);
    assert_eq!(c["pairs"].as_array().unwrap().len(), 3);
    assert!(String::from_utf8_lossy(&r.stderr).contains("Spearman"));
    let svg = std::fs::read_to_string(plots.join("agreement.svg")).unwrap();
    assert!(svg.contains("\nfr\n") && svg.contains("\n0.77\n"), "{svg}");
    assert!(plots.join("agreement.png").is_file());
    assert_user_error(
        &headroom(&["compare", &maps[0], &maps[1], &maps[2], "--labels", "en,de"]),
        "--labels",
        "labels for two of three maps",
    );
    assert_user_error(
        &headroom(&[
            "compare",
            &maps[0],
            &maps[1],
            "--plot",
            plots.to_str().unwrap(),
        ]),
        "--plot",
        "a plot of two maps",
    );

    // a TSV of pairs has the block role
    let tsv = dir.join("pairs.tsv");
    let mut s = String::from("sentence\tsentence2\n");
    for i in 0..12 {
        s.push_str(&format!("the cat sat on mat {i}\ta dog barked at it {i}\n"));
    }
    std::fs::write(&tsv, s).unwrap();
    let out2 = dir.join("out2");
    let r = headroom(&[
        "roles",
        "--model",
        model.to_str().unwrap(),
        "--data",
        tsv.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = read_json(&out2.join("roles.json"));
    let roles: std::collections::BTreeSet<&str> = v["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles.into_iter().collect::<Vec<_>>(),
        vec!["block", "cls", "delimiter", "local", "sep"]
    );

    // bad CoNLL-U: one line naming the file and line
    let bad = dir.join("bad.conllu");
    let out3 = dir.join("out3");
    let roles_on = |text: &str| {
        std::fs::write(&bad, text).unwrap();
        headroom(&[
            "roles",
            "--model",
            model.to_str().unwrap(),
            "--data",
            bad.to_str().unwrap(),
            "--out",
            out3.to_str().unwrap(),
        ])
    };
    let r = roles_on("1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n2\tcat\tcat\tNOUN\n");
    assert_user_error(
        &r,
        "line 2: expected 10 tab-separated columns, found 4",
        "a short line",
    );
    let r = roles_on("1\tThe\tthe\tDET\t_\t_\t9\tdet\t_\t_\n");
    assert_user_error(
        &r,
        "line 1: head 9 is outside the sentence",
        "a head outside",
    );
    let r = roles_on("# nothing\n");
    assert_user_error(&r, "no sentences", "an empty file");
    assert!(!dir.join("out3").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
