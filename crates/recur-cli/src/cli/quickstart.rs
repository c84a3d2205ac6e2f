//! `recur quickstart`: trains a small romanized-Hindi → Devanagari model on the bundled Dakshina
//! lexicons within a time budget, reports its dev accuracy and transliterates a few sentences.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use recur::seq2seq::search::DecodeOptions;
use recur::session::RunEnd;
use recur::transducer::{RunConfig, Transducer};

use super::train::{self, TrainArgs};
use crate::Status;

/// The bundled Dakshina lexicons the quickstart trains on, compiled into the binary so that an
/// installed `recur` runs it anywhere: (file name, content).
const DATA: [(&str, &str); 2] = [
    (
        "hi.translit.sampled.train.tsv",
        include_str!("../../../../data/dakshina_hi/lexicons/hi.translit.sampled.train.tsv"),
    ),
    (
        "hi.translit.sampled.dev.tsv",
        include_str!("../../../../data/dakshina_hi/lexicons/hi.translit.sampled.dev.tsv"),
    ),
];

/// Writes the bundled lexicons into `dir` (kept if already there and identical); returns the
/// train and dev paths.
fn write_data(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    for (name, text) in DATA {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(have) if have == text.as_bytes() => continue,
            Ok(_) => bail!(
                "{}: exists and differs from the bundled data (use another --out)",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
        }
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok((dir.join(DATA[0].0), dir.join(DATA[1].0)))
}

/// The quickstart's run config: `configs/quickstart.toml`, with the bundled data written under
/// `OUT/data`.
pub fn config(out: &Path) -> Result<RunConfig> {
    let mut cfg: RunConfig = toml::from_str(include_str!("../../../../configs/quickstart.toml"))?;
    let (train, dev) = write_data(&out.join("data"))?;
    (cfg.data.train, cfg.data.dev) = (train, Some(dev));
    Ok(cfg)
}

/// Romanized sentences to show.
const SENTENCES: [&str; 4] = [
    "main ghar ja raha hoon",
    "aap kaise hain?",
    "yeh kitaab bahut achchhi hai",
    "kal hum dilli jayenge",
];

/// Runs the quickstart.
pub fn run(out: PathBuf, seconds: f64) -> Result<Status> {
    if !(seconds > 0.0 && seconds.is_finite()) {
        bail!("--seconds: expected a time budget > 0, got {seconds}");
    }
    let cfg = config(&out)?;
    let mut stdout = super::output::stdout();
    let train = cfg.data.train.display().to_string();
    writeln!(
        stdout,
        "training romanized Hindi → Devanagari on {train} for up to {seconds:.0} s..."
    )?;
    stdout.flush()?;
    let args = TrainArgs {
        out: out.clone(),
        resume: out.join("last").exists(),
        time_limit: seconds,
        progress: true,
        collective: None,
    };
    let summary = train::run(cfg, &args)?;
    if summary.end == RunEnd::Stopped {
        eprintln!(
            "stopped: checkpoint saved in {}",
            summary.last_dir.display()
        );
        return Ok(Status::Stopped);
    }
    let acc = summary.best_accuracy.unwrap_or(0.0) * 100.0;
    let (steps, secs) = (summary.steps, summary.seconds);
    writeln!(
        stdout,
        "trained {steps} steps in {secs:.0} s; best dev exact match on the first 1000 dev words: {acc:.1}%"
    )?;
    let t = Transducer::load(&summary.best_dir)?;
    let opts = DecodeOptions {
        beam_size: 4,
        ..Default::default()
    };
    for (src, dst) in SENTENCES
        .iter()
        .zip(t.translate_sentences(&SENTENCES, &opts)?)
    {
        writeln!(stdout, "  {src}  →  {dst}")?;
    }
    let best = summary.best_dir.display();
    writeln!(
        stdout,
        "model saved in {best}; try: echo 'main ghar ja raha hoon' | recur translate --model {best} --sentences"
    )?;
    stdout.flush()?;
    Ok(Status::Ok)
}
