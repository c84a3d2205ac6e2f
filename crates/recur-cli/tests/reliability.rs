//! Reliability of the `recur` command, case by case: exact resume from any checkpoint, a
//! finished run left alone, one writer per run, a torn log, a checkpoint moved aside by a kill,
//! signals, closed and full outputs, nothing overwritten, nonsense options refused, bounded
//! inputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::with_stdin;

fn recur() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_recur"));
    c.args(["--threads", "1"]);
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A fresh scratch directory with a small cipher task and a run config writing `extra`.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str, train: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("recur-rel-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = Scratch(dir);
        for (name, n, seed) in [("train.tsv", "200", "1"), ("dev.tsv", "30", "2")] {
            ok(recur()
                .args(["data", "cipher", "--n", n, "--seed", seed, "--out"])
                .arg(s.p(name))
                .output()
                .unwrap());
        }
        let config = format!(
            "[data]\ntrain = {:?}\ndev = {:?}\nsrc_col = 1\ntgt_col = 0\n\n[model]\ncell = \"gru\"\n\
             emb_dim = 8\nhidden_size = 16\nattn_dim = 8\n\n[train]\nmax_tokens = 200\nlr = 0.01\n{train}",
            s.p("train.tsv"),
            s.p("dev.tsv")
        );
        std::fs::write(s.p("run.toml"), config).unwrap();
        s
    }

    fn p(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn train(&self, out: &str, extra: &[&str]) -> Output {
        recur()
            .args(["train", "--quiet", "--config"])
            .arg(self.p("run.toml"))
            .arg("--out")
            .arg(self.p(out))
            .args(extra)
            .output()
            .unwrap()
    }

    fn weights(&self, out: &str) -> Vec<u8> {
        std::fs::read(self.p(out).join("last/model.safetensors")).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The steps of a log's records, in order.
fn logged_steps(log: &Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["event"].as_str().unwrap().to_string(),
                v["step"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// With `eval_every = 0` (checkpoints at epoch ends), a run stopped after its first epoch and
/// resumed ends with the bits of an uninterrupted run (it used to retrain the first epoch);
/// resuming the finished run then does nothing; the log holds every step once.
#[test]
fn resume_from_an_epoch_end_is_exact_and_a_finished_run_is_left_alone() {
    let s = Scratch::new("epoch", "epochs = 3\n");
    ok(s.train("whole", &[]));
    ok(s.train("split", &["--set", "train.epochs=1"]));
    ok(s.train("split", &["--resume"]));
    assert!(
        s.weights("split") == s.weights("whole"),
        "resumed = uninterrupted"
    );
    assert_eq!(
        logged_steps(&s.p("split/log.jsonl")),
        logged_steps(&s.p("whole/log.jsonl")),
        "the resumed log reads as the uninterrupted one"
    );

    let files = [
        "last/model.safetensors",
        "best/model.safetensors",
        "log.jsonl",
    ];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(s.p("whole").join(f)).unwrap())
        .collect();
    let out = ok(s.train("whole", &["--resume"]));
    assert!(out.contains("nothing to do"), "{out}");
    let after: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(s.p("whole").join(f)).unwrap())
        .collect();
    assert!(before == after, "a finished run is not touched");
}

/// A torn last log line (a disk that filled up mid-write) is cut on resume, as are the records
/// of steps after the checkpoint; the resumed run finishes and logs each step once.
#[test]
fn a_torn_log_is_repaired_on_resume() {
    let s = Scratch::new("torn", "epochs = 2\neval_every = 5\n");
    ok(s.train("run", &["--set", "train.max_steps=7"]));
    let log = s.p("run/log.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    // Steps 6 and 7 were logged after the checkpoint of step 5: the resume replays them.
    text.push_str("{\"event\":\"step\",\"st");
    std::fs::write(&log, text).unwrap();
    ok(s.train("run", &["--resume"]));
    let steps: Vec<u64> = logged_steps(&log)
        .iter()
        .filter(|(e, _)| e == "step")
        .map(|&(_, s)| s)
        .collect();
    let want: Vec<u64> = (1..=*steps.last().unwrap()).collect();
    assert_eq!(steps, want, "each step once, in order");
}

/// A kill between a checkpoint save's two renames leaves only `last.old-PID`: `translate` and
/// `--resume` read it, and a new run into that directory is refused instead of cutting its log.
#[test]
fn a_checkpoint_moved_aside_is_used_by_every_command() {
    let s = Scratch::new("old", "epochs = 1\n");
    ok(s.train("run", &[]));
    std::fs::rename(s.p("run/last"), s.p("run/last.old-99999")).unwrap();
    std::fs::rename(s.p("run/best"), s.p("run/best.old-99999")).unwrap();
    std::fs::remove_file(s.p("run/log.jsonl")).unwrap();
    let out = with_stdin(
        recur().args(["translate", "--model"]).arg(s.p("run/last")),
        "ABC\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let refused = s.train("run", &[]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("already holds a run"),
        "{}",
        text(&refused.stderr)
    );
    assert!(s.p("run/last.old-99999").exists(), "left as it was");
    let out = ok(s.train("run", &["--resume", "--set", "train.epochs=2"]));
    assert!(out.contains("steps in"), "{out}");
    assert!(s.p("run/last/model.safetensors").exists());
}

/// Waits until `path` holds a line satisfying `ready`, or panics after 60 s.
fn wait_for(path: &Path, ready: impl Fn(&str) -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if std::fs::read_to_string(path).is_ok_and(|t| t.lines().any(&ready)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} never became ready", path.display());
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// While a run trains, a second writer into its directory is refused with the first one's pid;
/// SIGINT then stops the first after a checkpoint of its current step (status 130), and the
/// resumed run ends with the bits of an uninterrupted one.
#[test]
fn one_writer_per_run_and_sigint_saves_an_exact_checkpoint() {
    let s = Scratch::new("sig", "epochs = 40\neval_every = 1000\n");
    let child = recur()
        .args(["train", "--quiet", "--config"])
        .arg(s.p("run.toml"))
        .arg("--out")
        .arg(s.p("run"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&s.p("run/log.jsonl"), |l| l.contains("\"step\":3,"));

    let second = s.train("run", &["--resume"]);
    assert!(!second.status.success());
    let err = text(&second.stderr);
    assert!(err.contains(&format!("pid {}", child.id())), "{err}");

    signal(child.id(), "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("checkpoint saved"),
        "{}",
        text(&out.stderr)
    );
    let steps = logged_steps(&s.p("run/log.jsonl"));
    let stopped_at = steps.last().unwrap().1;
    assert!(stopped_at < 40 * 5, "stopped early, at step {stopped_at}");
    assert!(s.p("run/curves.png").exists());

    // Both finish the same number of steps: the whole run and the resumed one.
    let limit = format!("train.max_steps={}", stopped_at + 4);
    ok(s.train("run", &["--resume", "--set", &limit]));
    ok(s.train("whole", &["--set", &limit]));
    assert!(
        s.weights("run") == s.weights("whole"),
        "interrupted + resumed = uninterrupted"
    );
}

/// Refused commands change nothing: nonsense settings, a model too large for the memory, a
/// missing data file (each named in the error), a finished output elsewhere.
#[test]
fn nonsense_settings_are_refused_before_anything_is_written() {
    let s = Scratch::new("bad", "epochs = 1\n");
    let cases: [(&[&str], &str); 7] = [
        (
            &["--set", "train.sampling_probability=2"],
            "sampling_probability",
        ),
        (&["--set", "train.clip_norm=-1"], "clip_norm"),
        (&["--set", "train.plateau_factor=2"], "plateau_factor"),
        (&["--set", "data.max_src_len=0"], "max_src_len"),
        (&["--time-limit", "nan"], "--time-limit"),
        (&["--set", "model.hidden_size=100000000"], "needing about"),
        (
            &["--set", "data.train=\"/nonexistent/train.tsv\""],
            "/nonexistent/train.tsv",
        ),
    ];
    for (args, want) in cases {
        let out = s.train("out", args);
        let err = text(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{args:?}: {err}"
        );
        assert!(
            !s.p("out").exists(),
            "{args:?} left {}",
            s.p("out").display()
        );
    }
    let out = recur()
        .args(["train", "--config", "/nonexistent.toml", "--out"])
        .arg(s.p("o"))
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(err.contains("/nonexistent.toml: No such file"), "{err}");
    assert_eq!(
        err.matches("No such file").count(),
        1,
        "the OS message once: {err}"
    );
}

/// Decoding options that cannot do what they say are errors, not silently clipped.
#[test]
fn decoding_options_are_checked_not_clipped() {
    let cases: [(&[&str], &str); 5] = [
        (&["--beam", "0"], "--beam"),
        (&["--beam", "2", "--nbest", "3"], "--nbest"),
        (&["--sentences", "--scores"], "--sentences"),
        (
            &["--sentences", "--beam", "3", "--nbest", "2"],
            "--sentences",
        ),
        (&["--batch", "0"], "--batch"),
    ];
    for (args, want) in cases {
        let out = with_stdin(
            recur()
                .args(["translate", "--model", "hi-translit"])
                .args(args),
            "ghar\n",
        );
        let err = text(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{args:?}: {err}"
        );
    }
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/dakshina_hi/lexicons/hi.translit.sampled.dev.tsv"
    );
    let out = recur()
        .args([
            "eval",
            "--model",
            "hi-translit",
            "--beam",
            "2",
            "--topk",
            "3",
            "--data",
            data,
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out.stderr).contains("--topk"),
        "{}",
        text(&out.stderr)
    );
    let out = recur()
        .args(["quickstart", "--seconds", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success() && text(&out.stderr).contains("--seconds"));
}

/// A full or closed standard output ends a command with a message naming stdout and status
/// 1, never a panic (status 101).
#[test]
fn full_and_closed_outputs_are_errors_not_panics() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../recur/tests/fixtures");
    let runs: [&[&str]; 3] = [
        &["conformance", fixtures],
        &["models"],
        &["data", "double", "--n", "1000"],
    ];
    for args in runs {
        let out = recur().args(args).stdout(full()).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("stdout: No space left"),
            "{args:?}"
        );
    }
    // A reader that stops reading: the pipe closes while the command still writes.
    let mut child = recur()
        .args(["data", "double", "--n", "10000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("stdout: Broken pipe"),
        "{}",
        text(&out.stderr)
    );
}

/// `data` and `import` create new outputs only; `--force` replaces a file `data` made and a
/// model directory, never anything else.
#[test]
fn outputs_are_not_overwritten_without_force() {
    let s = Scratch::new("force", "epochs = 1\n");
    let file = s.p("mine.txt");
    std::fs::write(&file, "precious\n").unwrap();
    let out = recur()
        .args(["data", "cipher", "--n", "3", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success() && text(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious\n");
    ok(recur()
        .args(["data", "cipher", "--n", "3", "--force", "--out"])
        .arg(&file)
        .output()
        .unwrap());
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 3);

    let npz = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../recur-import/tests/data/g2p_en/checkpoint20.npz"
    );
    for force in [false, true] {
        let mut c = recur();
        c.args(["import", "g2p-en", npz, "--out"]).arg(&file);
        if force {
            c.arg("--force");
        }
        let out = c.output().unwrap();
        assert!(!out.status.success(), "force={force}");
        assert!(
            file.is_file(),
            "the file was not renamed away (force={force})"
        );
    }
}

/// Inputs with no bound are refused with the line they are on, in bounded memory: a line
/// without end, a word too long for sentence mode; a byte-order mark is not part of a word.
#[test]
fn unbounded_inputs_are_refused_and_a_bom_is_dropped() {
    let out = recur()
        .args([
            "translate",
            "--model",
            "hi-translit",
            "--input",
            "/dev/zero",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("input line 1: longer than"),
        "{}",
        text(&out.stderr)
    );
    let long_word = format!("ghar {}\n", "a".repeat(5000));
    let out = with_stdin(
        recur().args(["translate", "--model", "hi-translit", "--sentences"]),
        &long_word,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("a word has 5000 characters"),
        "{}",
        text(&out.stderr)
    );

    let plain = ok(with_stdin(
        recur().args(["translate", "--model", "hi-translit"]),
        "ghar\n",
    ));
    let bom = ok(with_stdin(
        recur().args(["translate", "--model", "hi-translit"]),
        "\u{feff}ghar\n",
    ));
    assert_eq!(bom, plain);
}
