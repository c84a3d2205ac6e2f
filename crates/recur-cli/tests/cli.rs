//! The `recur` binary end to end.

use std::path::Path;
use std::process::Command;

use serde_json::json;

mod common;
use common::with_stdin;

fn recur() -> Command {
    Command::new(env!("CARGO_BIN_EXE_recur"))
}

fn fixtures() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../recur/tests/fixtures"
    ))
}

#[test]
fn conformance_prints_a_line_per_case_and_a_summary() {
    let dir = std::env::temp_dir().join(format!("recur-cli-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for case in ["lstm_packed_bidir", "gru_cell", "rnn_relu_bidir"] {
        std::fs::copy(
            fixtures().join(format!("{case}.safetensors")),
            dir.join(format!("{case}.safetensors")),
        )
        .unwrap();
    }
    let out = recur().args(["conformance"]).arg(&dir).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("gru_cell")
            && lines[0].contains(" ok ")
            && lines[0].contains("max_abs="),
        "{text}"
    );
    assert_eq!(lines[3], "3 passed, 0 failed");

    // A case of an unsupported kind makes the run fail, with the summary still printed.
    std::fs::write(dir.join("broken.safetensors"), b"not a safetensors file").unwrap();
    let out = recur().args(["conformance"]).arg(&dir).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!out.status.success());
    assert!(text.contains("broken") && text.contains("FAIL"), "{text}");
    assert!(text.trim_end().ends_with("3 passed, 1 failed"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Trains a tiny cipher model, stops it early and resumes it: the resumed run ends with the
/// very same parameters as an uninterrupted one. Then evaluates and translates with it.
#[test]
fn train_stop_resume_eval_translate_end_to_end() {
    let dir = std::env::temp_dir().join(format!("recur-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name);
    run_ok(
        recur()
            .args(["data", "cipher", "--n", "300", "--seed", "1", "--out"])
            .arg(p("train.tsv")),
    );
    run_ok(
        recur()
            .args(["data", "cipher", "--n", "40", "--seed", "2", "--out"])
            .arg(p("dev.tsv")),
    );
    let config = format!(
        "[data]\ntrain = {:?}\ndev = {:?}\nsrc_col = 1\ntgt_col = 0\n\n[model]\ncell = \"gru\"\nemb_dim = 8\nhidden_size = 16\nattn_dim = 8\n\n[train]\nepochs = 3\nmax_tokens = 300\neval_every = 4\nlr = 0.01\n",
        p("train.tsv"),
        p("dev.tsv")
    );
    std::fs::write(p("run.toml"), config).unwrap();
    let train = |out: &str, extra: &[&str]| {
        let mut c = recur();
        c.args(["--threads", "1", "train", "--quiet", "--config"])
            .arg(p("run.toml"))
            .arg("--out")
            .arg(p(out))
            .args(extra);
        run_ok(&mut c)
    };
    train("whole", &[]);
    train("split", &["--set", "train.max_steps=7"]);
    let stopped = std::fs::read(p("split/last/model.safetensors")).unwrap();
    assert!(
        stopped != std::fs::read(p("whole/last/model.safetensors")).unwrap(),
        "the first half stopped early"
    );
    train("split", &["--resume"]);
    let same = std::fs::read(p("split/last/model.safetensors")).unwrap()
        == std::fs::read(p("whole/last/model.safetensors")).unwrap();
    assert!(
        same,
        "a resumed run ends exactly where the uninterrupted one does"
    );
    for f in [
        "best/model.safetensors",
        "best/config.json",
        "best/src_vocab.json",
        "log.jsonl",
        "curves.png",
    ] {
        assert!(p("whole").join(f).exists(), "{f}");
    }

    // A second run into the same directory is refused rather than overwriting it.
    let out = recur()
        .args(["train", "--quiet", "--config"])
        .arg(p("run.toml"))
        .arg("--out")
        .arg(p("whole"))
        .output()
        .unwrap();
    assert!(!out.status.success());

    let report = run_ok(
        recur()
            .args(["eval", "--json", "--beam", "2", "--topk", "2", "--model"])
            .arg(p("whole/best"))
            .arg("--data")
            .arg(p("dev.tsv")),
    );
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(v["words"], 40);
    assert!(v["accuracy"].as_f64().unwrap() >= 0.0 && v["ter"].as_f64().unwrap() >= 0.0);

    let out = with_stdin(
        recur()
            .args(["translate", "--beam", "3", "--model"])
            .arg(p("whole/best")),
        "FUVEMVEMNMERPDRF\n\nABC\n",
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().count(),
        3,
        "one output line per input line, the empty one included: {text:?}"
    );
    assert_eq!(
        text.lines().nth(1),
        Some(""),
        "an empty source decodes to an empty output"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `train.keep_last` keeps the last evaluations; `recur average` makes a model of them; two
/// models decode as an ensemble in `eval` and `translate`, and models of other vocabularies are
/// refused by name.
#[test]
fn keep_last_average_and_ensembles_end_to_end() {
    let dir = std::env::temp_dir().join(format!("recur-ens-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name);
    for (task, n, seed, file) in [
        ("cipher", "200", "1", "train.tsv"),
        ("cipher", "30", "2", "dev.tsv"),
        ("double", "50", "1", "double.tsv"),
    ] {
        let args = ["data", task, "--n", n, "--seed", seed, "--out"];
        run_ok(recur().args(args).arg(p(file)));
    }
    let train = |data: &str, out: &str, seed: &str| {
        let mut c = recur();
        c.args(["--threads", "1", "train", "--quiet", "--set"])
            .arg(format!("data.train={:?}", p(data).display().to_string()))
            .arg("--set")
            .arg(format!("data.dev={:?}", p("dev.tsv").display().to_string()));
        for set in [
            "data.src_col=1",
            "data.tgt_col=0",
            "model.emb_dim=8",
            "model.hidden_size=8",
            "model.attn_dim=8",
            "train.epochs=2",
            "train.max_tokens=300",
            "train.eval_every=3",
            "train.keep_last=2",
        ] {
            c.args(["--set", set]);
        }
        c.args(["--set", &format!("train.seed={seed}"), "--out"])
            .arg(p(out));
        run_ok(&mut c)
    };
    train("train.tsv", "a", "1");
    train("train.tsv", "b", "2");
    let kept: Vec<String> = std::fs::read_dir(p("a/checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().all(|k| k.starts_with("step-")), "{kept:?}");

    let said = run_ok(
        recur()
            .args(["average", "--last", "2", "--run"])
            .arg(p("a"))
            .arg("--out")
            .arg(p("avg")),
    );
    assert!(said.starts_with("averaged 2 checkpoints"), "{said}");
    assert!(p("avg/averaged.json").is_file());
    // The output of something else is never overwritten.
    let refused = recur()
        .args(["average", "--run"])
        .arg(p("a"))
        .arg("--out")
        .arg(p("b/best"))
        .output()
        .unwrap();
    assert!(!refused.status.success());

    let eval = |models: &[&str]| {
        let mut c = recur();
        c.args(["eval", "--json", "--beam", "2", "--data"])
            .arg(p("dev.tsv"));
        for m in models {
            c.arg("--model").arg(p(m));
        }
        let v: serde_json::Value = serde_json::from_str(&run_ok(&mut c)).unwrap();
        v["accuracy"].as_f64().unwrap()
    };
    let alone = eval(&["a/best"]);
    let ensemble = eval(&["a/best", "b/best", "avg"]);
    assert!((0.0..=1.0).contains(&alone) && (0.0..=1.0).contains(&ensemble));

    let out = with_stdin(
        recur()
            .args(["translate", "--beam", "3", "--model"])
            .arg(p("a/best"))
            .arg("--model")
            .arg(p("b")),
        "FUVEMVEM\nABC\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);

    train("double.tsv", "other", "1");
    let out = with_stdin(
        recur()
            .args(["translate", "--model"])
            .arg(p("a/best"))
            .arg("--model")
            .arg(p("other/best")),
        "ABC\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("other/best") && err.contains("vocabulary"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_is_an_error_naming_the_file_and_line() {
    let dir = std::env::temp_dir().join(format!("recur-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.tsv"), "ab\tcd\nno-tab-here\n").unwrap();
    let out = recur()
        .args(["train", "--quiet", "--set"])
        .arg(format!("data.train={:?}", dir.join("bad.tsv")))
        .arg("--out")
        .arg(dir.join("o"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.tsv") && err.contains(":2"), "{err}");
    let out = recur()
        .args(["translate", "--model"])
        .arg(dir.join("missing-model"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing-model"));

    // Invalid UTF-8 and an empty file: errors naming the file (and line); no panic (exit 1).
    std::fs::write(dir.join("bad8.tsv"), b"ab\tcd\nx\xffy\tz\n").unwrap();
    std::fs::write(dir.join("empty.tsv"), b"").unwrap();
    for (file, want) in [
        ("bad8.tsv", "bad8.tsv:2: invalid UTF-8"),
        ("empty.tsv", "empty.tsv: no examples"),
    ] {
        let out = recur()
            .args(["train", "--quiet", "--set"])
            .arg(format!("data.train={:?}", dir.join(file)))
            .arg("--out")
            .arg(dir.join("o"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "{err}");
    }
    // --skip-bad-lines counts and reports instead.
    let out = recur()
        .args([
            "train",
            "--quiet",
            "--set",
            "train.max_steps=1",
            "--set",
            "data.skip_bad_lines=true",
            "--set",
        ])
        .arg(format!("data.train={:?}", dir.join("bad8.tsv")))
        .arg("--out")
        .arg(dir.join("o"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("skipped 1 bad lines (first: line 2"), "{err}");

    // A corrupt model directory: a truncated model.safetensors, then a broken config.json.
    let model = dir.join("corrupt-model");
    std::fs::create_dir_all(&model).unwrap();
    let pretrained = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/hi-translit");
    for f in [
        "config.json",
        "src_vocab.json",
        "tgt_vocab.json",
        "wordfreq.tsv",
    ] {
        std::fs::copy(pretrained.join(f), model.join(f)).unwrap();
    }
    let weights = std::fs::read(pretrained.join("model.safetensors")).unwrap();
    std::fs::write(model.join("model.safetensors"), &weights[..5000]).unwrap();
    std::fs::write(model.join("bad.txt"), "ghar\n").unwrap();
    let translate = || {
        recur()
            .args(["translate", "--input"])
            .arg(model.join("bad.txt"))
            .arg("--model")
            .arg(&model)
            .output()
            .unwrap()
    };
    let out = translate();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("model.safetensors: corrupt"), "{err}");
    std::fs::write(model.join("config.json"), "{\n").unwrap();
    let out = translate();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("config.json:2"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn shipped_models_work_by_name_from_any_directory() {
    let cwd = std::env::temp_dir();
    let translate = |model: &str, extra: &[&str], input: &str| {
        let out = with_stdin(
            recur()
                .current_dir(&cwd)
                .args(["translate", "--model", model])
                .args(extra),
            input,
        );
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    // The README's and the model cards' examples.
    assert_eq!(
        translate(
            "hi-translit",
            &["--sentences", "--beam", "4"],
            "main ghar ja raha hoon\n"
        ),
        "मैं घर जा रहा हूं\n"
    );
    assert_eq!(
        translate("en-g2p", &[], "hello\nrecurrent\n"),
        "HH AH L OW\nR IH K ER AH N T\n",
        "from CMUdict"
    );
    assert_eq!(
        translate("en-g2p", &["--no-lexicon"], "hello\nrecurrent\n"),
        "HH EH L OW\nR IY K ER AH N T\n",
        "the model alone"
    );
}

/// `--format jsonl`: one object per input line with the n-best hypotheses (scores, alignments);
/// in sentence mode, the line's output and each word's hypotheses.
#[test]
fn translate_jsonl_carries_nbest_scores_and_words() {
    let run = |args: &[&str], input: &str| {
        let out = with_stdin(
            recur()
                .args(["translate", "--model", "hi-translit", "--format", "jsonl"])
                .args(args),
            input,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let words = run(&["--beam", "3", "--nbest", "2", "--alignments"], "ghar\n\n");
    assert_eq!(words.len(), 2, "an empty line is an object too");
    let h = words[0]["hypotheses"].as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["text"], "घर");
    assert!(h[0]["score"].as_f64().unwrap() >= h[1]["score"].as_f64().unwrap());
    assert_eq!(
        h[0]["alignment"].as_array().unwrap().len(),
        2,
        "one per output token"
    );

    let lines = run(
        &["--sentences", "--beam", "3", "--nbest", "2"],
        "main ghar 25.\n",
    );
    assert_eq!(lines[0]["output"], "मैं घर 25।");
    let w = lines[0]["words"].as_array().unwrap();
    assert_eq!(
        (w[0]["word"].as_str(), w[1]["word"].as_str()),
        (Some("main"), Some("ghar"))
    );
    assert_eq!(w[1]["hypotheses"].as_array().unwrap().len(), 2);
}

/// `--word-freq-weight`: hi-translit's list re-ranks the commonest words by default, 0 turns it
/// off, and `recur eval` says how it decoded.
#[test]
fn word_frequencies_rerank_by_default_and_switch_off_with_zero() {
    let translate = |args: &[&str]| {
        let out = with_stdin(
            recur()
                .args(["translate", "--model", "hi-translit"])
                .args(args),
            "men\nek\nhain\n",
        );
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            err,
        )
    };
    let (ok, out, _) = translate(&["--beam", "4"]);
    assert!(ok);
    assert_eq!(out, "में\nएक\nहैं\n");
    let (ok, out, _) = translate(&["--beam", "4", "--word-freq-weight", "0"]);
    assert!(ok);
    assert_eq!(out, "मेन\nइक\nहैं\n", "the models alone");
    let (ok, _, err) = translate(&["--beam", "1"]);
    assert!(ok && err.contains("greedy"), "{err}");
    // Refused before any input is read (so none is written to it).
    let refused = |model: &str, weight: &str| {
        let out = recur()
            .args(["translate", "--model", model])
            .arg(format!("--word-freq-weight={weight}"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = refused("hi-translit", "-1");
    assert!(err.contains("--word-freq-weight"), "{err}");
    let err = refused("en-g2p", "0.5");
    assert!(err.contains("word_freq"), "{err}");

    let dir = std::env::temp_dir().join(format!("recur-cli-wordfreq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tsv = dir.join("words.tsv");
    std::fs::write(&tsv, "में\tmen\t1\nएक\tek\t1\n").unwrap();
    let eval = |extra: &[&str]| {
        let mut cmd = recur();
        cmd.args([
            "eval",
            "--model",
            "hi-translit",
            "--beam",
            "4",
            "--json",
            "--data",
        ])
        .arg(&tsv)
        .args(extra);
        serde_json::from_str::<serde_json::Value>(&run_ok(&mut cmd)).unwrap()
    };
    let on = eval(&[]);
    assert_eq!(on["accuracy"], 1.0);
    assert_eq!(on["decoding"]["word_freq"], "wordfreq.tsv");
    assert_eq!(on["decoding"]["word_freq_applied"], true);
    assert!(on["decoding"]["word_freq_weight"].as_f64().unwrap() > 0.0);
    let off = eval(&["--word-freq-weight", "0"]);
    assert_eq!(off["accuracy"], 0.0);
    assert_eq!(off["decoding"]["word_freq_applied"], false);
    std::fs::remove_dir_all(&dir).ok();
}

/// Lexicons: the model's own by default, `--lexicon FILE` on top of it, `--no-lexicon` for the
/// model alone; `eval` scores the model alone unless given `--lexicon`.
#[test]
fn lexicon_options_of_translate_and_eval() {
    let dir = std::env::temp_dir().join(format!("recur-cli-lexicon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let user = dir.join("user.tsv");
    std::fs::write(&user, "Zzyxqua\tZ IH K S\nhello\tHH EH L OW\n").unwrap();
    let translate = |args: &[&str], input: &str| {
        let out = with_stdin(
            recur()
                .args(["translate", "--model", "en-g2p", "--beam", "2"])
                .args(args),
            input,
        );
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{args:?}: {err}");
        String::from_utf8(out.stdout).unwrap()
    };
    let lexicon = user.to_str().unwrap();
    let words = "zzyxqua\nhello\nread\n";
    assert_eq!(
        translate(&["--lexicon", lexicon], words),
        "Z IH K S\nHH EH L OW\nR EH D\n",
        "the user's words, then the model's lexicon (CMUdict's first `read`)"
    );
    let only_user = translate(
        &["--no-lexicon", "--lexicon", lexicon, "--format", "jsonl"],
        words,
    );
    let origins: Vec<serde_json::Value> = only_user
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["hypotheses"][0]["origin"].clone()
        })
        .collect();
    assert_eq!(origins, [json!("lexicon"), json!("lexicon"), json!(null)]);
    assert_eq!(
        translate(&["--sentences"], "I have 25 books.\n"),
        "AY | HH AE V | T W EH N T IY | F AY V | B UH K S.\n",
        "the number spelled, every word from CMUdict"
    );
    assert_ne!(
        translate(&["--no-lexicon"], "zzyxqua\n"),
        "Z IH K S\n",
        "the model alone"
    );

    std::fs::write(dir.join("bad.tsv"), "a\tAH\nb\tB IY1\n").unwrap();
    let out = with_stdin(
        recur()
            .args(["translate", "--model", "en-g2p", "--lexicon"])
            .arg(dir.join("bad.tsv")),
        "a\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("bad.tsv:2: target token `IY1`"),
        "{err}"
    );

    // Scored: `hello` is `HH AH L OW` in CMUdict (the model's lexicon) but not for the model.
    let data = dir.join("test.tsv");
    std::fs::write(&data, "HELLO\tHH AH L OW\nzzyxqua\tZ IH K S\n").unwrap();
    let eval = |extra: &[&str]| {
        let out = run_ok(
            recur()
                .args([
                    "eval", "--model", "en-g2p", "--beam", "2", "--json", "--data",
                ])
                .arg(&data)
                .args(extra),
        );
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        report["correct"].as_u64().unwrap()
    };
    assert_eq!(eval(&[]), 0, "the model alone, not its lexicon");
    std::fs::write(&user, "hello\tHH AH L OW\nzzyxqua\tZ IH K S\n").unwrap();
    assert_eq!(eval(&["--lexicon", lexicon]), 2, "with the lexicon given");
    std::fs::remove_dir_all(&dir).ok();
}

/// `eval --dev` scores on the words the model's training held out (en-g2p: 2,000 words of
/// g014b2b.train drawn with seed 1): the shipped first model's greedy score on them is the one its
/// run reported at its last evaluation (76.5%, in the model card), which a different draw
/// (training words, scored far higher) or a different file would not give.
#[test]
fn eval_dev_scores_the_held_out_words_of_training() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let json = run_ok(
        recur()
            .current_dir(&root)
            .args([
                "--threads",
                "1",
                "eval",
                "--model",
                "models/en-g2p",
                "--dev",
            ])
            .args(["--no-ensemble", "--beam", "1", "--json"]),
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["words"], 2000, "{json}");
    assert_eq!(report["correct"], 1530, "{json}");
    // --dev takes no --data.
    let out = recur()
        .current_dir(&root)
        .args([
            "eval",
            "--model",
            "models/en-g2p",
            "--dev",
            "--data",
            "x.tsv",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// `--no-ensemble` decodes with a model directory's first model alone: hi-translit lists two
/// members, whose votes change the scores (not this easy word's spelling).
#[test]
fn no_ensemble_decodes_with_the_first_model_alone() {
    let score = |extra: &[&str]| -> f64 {
        let mut cmd = recur();
        cmd.args([
            "--threads",
            "1",
            "translate",
            "--model",
            "hi-translit",
            "--beam",
            "4",
        ])
        .args(["--format", "jsonl"])
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"kitaab\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(line["hypotheses"][0]["text"], "किताब", "{line}");
        line["hypotheses"][0]["score"].as_f64().unwrap()
    };
    assert_ne!(score(&[]), score(&["--no-ensemble"]));
}

/// Word mode reads a `--batch` per thread and the threads decode different batches: the output
/// is the same, line for line and in order, as one thread's.
#[test]
fn threads_decoding_different_batches_keep_the_output() {
    let words: String = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/words1000.txt"),
    )
    .unwrap()
    .split_whitespace()
    .take(300)
    .map(|w| format!("{w}\n"))
    .collect();
    let run = |threads: &str, batch: &str| -> String {
        let mut cmd = recur();
        cmd.args(["--threads", threads, "translate", "--model", "hi-translit"])
            .args(["--batch", batch, "--format", "jsonl"]);
        let out = common::with_stdin(&mut cmd, &words);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let one = run("1", "256");
    assert_eq!(one.lines().count(), 300);
    assert_eq!(run("3", "7"), one);
}
