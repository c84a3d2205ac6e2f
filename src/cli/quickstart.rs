//! `recur quickstart`: trains a small romanized-Hindi → Devanagari model on the bundled Dakshina
//! lexicons within a time budget, reports its dev accuracy and transliterates a few sentences.

use std::path::{Path, PathBuf};

use anyhow::Result;
use recur::seq2seq::search::DecodeOptions;
use recur::transducer::{RunConfig, Transducer};

use super::train::{self, TrainArgs};

/// The quickstart's run config: `configs/quickstart.toml`, with data paths under `root`.
pub fn config(root: &Path) -> Result<RunConfig> {
    let mut cfg: RunConfig = toml::from_str(include_str!("../../configs/quickstart.toml"))?;
    cfg.data.train = root.join(&cfg.data.train);
    cfg.data.dev = cfg.data.dev.map(|d| root.join(d));
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
pub fn run(root: &Path, out: PathBuf, seconds: f64) -> Result<()> {
    let cfg = config(root)?;
    println!(
        "training romanized Hindi → Devanagari on {} for up to {seconds:.0} s (2 cores)...",
        cfg.data.train.display()
    );
    let args = TrainArgs {
        out: out.clone(),
        resume: out.join("last").exists(),
        time_limit: seconds,
        progress: true,
    };
    let summary = train::run(cfg, &args)?;
    println!(
        "trained {} steps in {:.0} s; best dev exact match on the first 1000 dev words: {:.1}%",
        summary.steps,
        summary.seconds,
        summary.best_accuracy.unwrap_or(0.0) * 100.0
    );
    let t = Transducer::load(out.join("best"))?;
    let opts = DecodeOptions {
        beam_size: 4,
        ..Default::default()
    };
    for (src, dst) in SENTENCES
        .iter()
        .zip(t.translate_sentences(&SENTENCES, &opts)?)
    {
        println!("  {src}  →  {dst}");
    }
    println!("model saved in {}; try: echo 'main ghar ja raha hoon' | recur translate --model {} --sentences", out.join("best").display(), out.join("best").display());
    Ok(())
}
