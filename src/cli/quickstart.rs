//! `recur quickstart`: trains a small romanized-Hindi → Devanagari model on the bundled Dakshina
//! lexicons within a time budget, reports its dev accuracy and transliterates a few sentences.

use std::path::{Path, PathBuf};

use anyhow::Result;
use recur::data::Tokenizer;
use recur::seq2seq::search::DecodeOptions;
use recur::transducer::{RunConfig, Transducer};

use super::train::{self, TrainArgs};

/// The quickstart's run config (also written as `configs/quickstart.toml`).
pub fn config(root: &Path) -> RunConfig {
    let mut cfg = RunConfig::default();
    let lex = root.join("data/dakshina_hi/lexicons");
    cfg.data.train = lex.join("hi.translit.sampled.train.tsv");
    cfg.data.dev = Some(lex.join("hi.translit.sampled.dev.tsv"));
    (cfg.data.src_col, cfg.data.tgt_col) = (1, 0);
    (cfg.data.src_tokens, cfg.data.tgt_tokens) = (Tokenizer::Chars, Tokenizer::Chars);
    cfg.data.lowercase_src = true;
    cfg.data.max_src_len = 30;
    cfg.data.max_tgt_len = 30;
    cfg.model.emb_dim = 32;
    cfg.model.hidden_size = 96;
    cfg.model.attn_dim = 64;
    cfg.train.lr = 3e-3;
    cfg.train.max_tokens = 3000;
    cfg.train.epochs = 30;
    cfg.train.eval_every = 150;
    cfg.train.dev_limit = 1000;
    cfg
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
    let cfg = config(root);
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
        summary.best_accuracy * 100.0
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
