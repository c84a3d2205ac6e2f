//! Data-parallel training over MPI, end to end: `mpirun -np 2 recur train` on loopback.
//!
//! Built only with the feature and run by CI as
//! `cargo test --release -p recur-cli --features mpi --test mpi` (it needs Open MPI's `mpirun`,
//! see .ci/run). Every run is a tiny cipher model, so the whole file takes seconds.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory with cipher data and a run config without dropout (dropout masks are
/// drawn per rank, so only a dropout-free run can match one process step for step).
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("recur-mpi-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, n, seed) in [("train.tsv", "2000", "1"), ("dev.tsv", "100", "2")] {
            let out = recur()
                .args(["data", "cipher", "--n", n, "--seed", seed, "--out"])
                .arg(dir.join(file))
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        let config = format!(
            "[data]\ntrain = {:?}\ndev = {:?}\nsrc_col = 1\ntgt_col = 0\n\n\
             [model]\ncell = \"lstm\"\nemb_dim = 16\nhidden_size = 32\nattn_dim = 16\ndropout = 0.0\n\n\
             [train]\nepochs = 3\nmax_tokens = 600\neval_every = 25\nlr = 0.005\n",
            dir.join("train.tsv"),
            dir.join("dev.tsv")
        );
        std::fs::write(dir.join("run.toml"), config).unwrap();
        Scratch { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `recur train` arguments into OUT `out`, one kernel thread per process.
    fn train_args(&self, out: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["--threads", "1", "train", "--quiet", "--config"]
            .map(String::from)
            .to_vec();
        args.push(self.path("run.toml").display().to_string());
        args.push("--out".into());
        args.push(self.path(out).display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn train_alone(&self, out: &str, extra: &[&str]) -> Output {
        let out = recur().args(self.train_args(out, extra)).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        out
    }

    fn mpirun(&self, ranks: usize, out: &str, extra: &[&str]) -> Command {
        let mut c = mpirun(ranks);
        c.arg(env!("CARGO_BIN_EXE_recur"))
            .args(self.train_args(out, extra));
        c
    }

    fn train_on(&self, ranks: usize, out: &str, extra: &[&str]) -> Output {
        let out = self.mpirun(ranks, out, extra).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        out
    }

    fn bytes(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.path(file)).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn recur() -> Command {
    Command::new(env!("CARGO_BIN_EXE_recur"))
}

/// `mpirun` for `ranks` processes on this machine, as root too (CI runs as root).
fn mpirun(ranks: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "-np"])
        .arg(ranks.to_string());
    c
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `(event, value)` records of a run's log: step losses and dev accuracies.
fn records(log: &Path, event: &str, key: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == event)
        .map(|v| v[key].as_f64().unwrap())
        .collect()
}

#[test]
fn two_ranks_train_as_one_process_does_and_twice_alike() {
    let s = Scratch::new("same");
    s.train_alone("one", &[]);
    s.train_on(2, "two", &[]);
    s.train_on(2, "again", &[]);
    let one = records(&s.path("one/log.jsonl"), "step", "train_loss");
    let two = records(&s.path("two/log.jsonl"), "step", "train_loss");
    assert_eq!(one.len(), two.len(), "the same global batches");
    assert!(one.len() >= 50);
    for (step, (a, b)) in one.iter().zip(&two).take(50).enumerate() {
        let rel = (a - b).abs() / a.abs();
        assert!(
            rel <= 1e-4,
            "step {}: one process {a}, two ranks {b}",
            step + 1
        );
    }
    let acc = |run: &str| records(&s.path(&format!("{run}/log.jsonl")), "eval", "dev_accuracy");
    eprintln!(
        "final dev accuracy: one process {:?}, two ranks {:?}",
        acc("one").last(),
        acc("two").last()
    );
    for file in [
        "log.jsonl",
        "last/model.safetensors",
        "best/model.safetensors",
    ] {
        assert!(
            s.bytes(&format!("two/{file}")) == s.bytes(&format!("again/{file}")),
            "{file}: two runs with two ranks differ"
        );
    }
}

#[test]
fn two_ranks_stop_and_resume_exactly() {
    let s = Scratch::new("resume");
    s.train_on(2, "whole", &[]);
    s.train_on(2, "split", &["--set", "train.max_steps=30"]);
    s.train_on(2, "split", &["--resume"]);
    assert!(
        s.bytes("split/last/model.safetensors") == s.bytes("whole/last/model.safetensors"),
        "a resumed two-rank run ends where the uninterrupted one does"
    );
}

/// The pids of a running mpirun's ranks, by rank (Open MPI puts each rank's number in its
/// environment).
fn rank_pids(mpirun: &Child, ranks: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut pids = vec![0; ranks];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            let parent = format!("PPid:\t{}", mpirun.id());
            if !status.lines().any(|l| l == parent) {
                continue;
            }
            let env = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            for var in env.split(|&b| b == 0) {
                if let Some(r) = var.strip_prefix(b"OMPI_COMM_WORLD_RANK=") {
                    if let Ok(r) = text(r).parse::<usize>() {
                        pids[r] = pid;
                    }
                }
            }
        }
        if pids.iter().all(|&p| p != 0) {
            return pids;
        }
        assert!(Instant::now() < deadline, "the ranks did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` at most `secs` seconds; a hang is a failure (and the job is killed).
fn wait_at_most(mut child: Child, secs: u64) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mpirun still running after {secs} s: a rank hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Starts a long two-rank run and waits until it has logged a step.
fn start_long_run(s: &Scratch, out: &str) -> Child {
    let child = s
        .mpirun(2, out, &["--set", "train.epochs=1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = s.path(&format!("{out}/log.jsonl"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\"step\":3,")) {
        assert!(Instant::now() < deadline, "no step logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn a_signal_to_one_rank_stops_every_rank_with_a_checkpoint() {
    let s = Scratch::new("signal");
    let job = start_long_run(&s, "run");
    let pids = rank_pids(&job, 2);
    signal(pids[1], "-TERM"); // not rank 0: the stop must travel
    let out = wait_at_most(job, 60);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("checkpoint saved"),
        "{}",
        text(&out.stderr)
    );
    let steps = records(&s.path("run/log.jsonl"), "step", "step");
    let state = std::fs::read_to_string(s.path("run/last/training_state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(
        state["progress"]["step"].as_f64(),
        steps.last().copied(),
        "the checkpoint is of the last step"
    );
    // And the run goes on from there with every rank.
    s.train_on(2, "run", &["--resume", "--set", "train.epochs=4"]);
}

#[test]
fn a_rank_that_dies_ends_the_job() {
    let s = Scratch::new("die");
    let job = start_long_run(&s, "run");
    let pids = rank_pids(&job, 2);
    signal(pids[1], "-KILL");
    let out = wait_at_most(job, 30);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("rank 1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_error_on_one_rank_aborts_every_rank_with_its_message() {
    let s = Scratch::new("locked");
    std::fs::create_dir_all(s.path("run")).unwrap();
    // Another writer holds OUT's lock: rank 0 fails, rank 1 would wait for it forever.
    let holder = std::fs::File::create(s.path("run/.lock")).unwrap();
    holder.lock().unwrap();
    let job = s
        .mpirun(2, "run", &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_at_most(job, 30);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("error on rank 0 of 2") && err.contains("another process"),
        "{err}"
    );
}
