//! A trained model as a string transducer: the model, its vocabularies and tokenizers, and the
//! run configuration it was trained with, loaded from and saved to a model directory.
//!
//! ```text
//!   MODEL_DIR/model.safetensors   parameters under PyTorch names (encoder.rnn.weight_ih_l0, ...)
//!   MODEL_DIR/config.json         the RunConfig: [data], [model], [train]
//!   MODEL_DIR/src_vocab.json      source vocabulary (PAD=0 BOS=1 EOS=2 UNK=3)
//!   MODEL_DIR/tgt_vocab.json      target vocabulary
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, TrainingState};
use crate::data::{Tokenizer, Vocab};
use crate::error::{Error, Result};
use crate::module::seeded_rng;
use crate::seq2seq::inference::translate;
use crate::seq2seq::search::{DecodeOptions, Hypothesis};
use crate::seq2seq::{Seq2Seq, Seq2SeqConfig};
use crate::train::TrainConfig;

/// Where the data is and how to read it (TOML section `[data]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Training TSV.
    pub train: PathBuf,
    /// Dev TSV (model selection and early stopping).
    pub dev: Option<PathBuf>,
    /// Without a dev file: hold out this many distinct training sources (all their pairs), chosen
    /// with `dev_holdout_seed`, as the dev set (0 = none). See [`crate::data::hold_out_sources`].
    pub dev_holdout: usize,
    /// Seed of the `dev_holdout` draw (in `[data]`, so `--resume` keeps the same split).
    pub dev_holdout_seed: u64,
    /// 0-based column of the source.
    pub src_col: usize,
    /// 0-based column of the target.
    pub tgt_col: usize,
    /// Source tokens: `chars` or `symbols` (whitespace-separated).
    pub src_tokens: Tokenizer,
    /// Target tokens.
    pub tgt_tokens: Tokenizer,
    /// Tokens seen fewer times in training become UNK.
    pub min_freq: usize,
    /// Training pairs with a longer source (in tokens) are dropped and counted.
    pub max_src_len: usize,
    /// Training pairs with a longer target are dropped and counted.
    pub max_tgt_len: usize,
    /// Lowercase sources (training and translation).
    pub lowercase_src: bool,
    /// Append EOS (`</s>`) to every source before encoding it, as models such as g2p_en were
    /// trained (training, evaluation and translation).
    pub src_eos: bool,
    /// Skip (and count) malformed lines instead of stopping.
    pub skip_bad_lines: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            train: PathBuf::new(),
            dev: None,
            dev_holdout: 0,
            dev_holdout_seed: 1,
            src_col: 0,
            tgt_col: 1,
            src_tokens: Tokenizer::Chars,
            tgt_tokens: Tokenizer::Chars,
            min_freq: 1,
            max_src_len: 50,
            max_tgt_len: 50,
            lowercase_src: false,
            src_eos: false,
            skip_bad_lines: false,
        }
    }
}

/// Everything `recur train` needs; saved as `config.json` next to the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Data.
    pub data: DataConfig,
    /// Architecture (vocabulary sizes are filled in from the data).
    pub model: Seq2SeqConfig,
    /// Optimisation.
    pub train: TrainConfig,
    /// Decoding defaults of `recur translate` / `recur eval` (command-line options override).
    pub decode: DecodeConfig,
}

/// Decoding defaults stored with a model (TOML section `[decode]`); unset means the built-in
/// default of the command line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeConfig {
    /// Beam size (1 = greedy); unset: 5.
    pub beam: Option<usize>,
    /// Maximum output tokens (EOS excluded); unset: 3 × source tokens + 5, at most 500 (see
    /// [`crate::seq2seq::search::MaxLen::DEFAULT`]).
    pub max_len: Option<usize>,
}

/// One decoded output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Output {
    /// The output text (symbols joined by spaces, or characters concatenated).
    pub text: String,
    /// Sum of token log-probabilities.
    pub log_prob: f32,
    /// Length-normalised score.
    pub score: f32,
    /// The maximum length was reached without EOS.
    pub truncated: bool,
    /// Attention weights per output token over the source tokens (when asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attention: Vec<Vec<f32>>,
}

/// A trained model with everything needed to turn strings into strings.
#[derive(Clone, Debug)]
pub struct Transducer {
    /// The network.
    pub model: Seq2Seq,
    /// Source vocabulary.
    pub src_vocab: Vocab,
    /// Target vocabulary.
    pub tgt_vocab: Vocab,
    /// The configuration it was trained with.
    pub config: RunConfig,
}

impl Transducer {
    /// A fresh, untrained model for `config` and the vocabularies (initialised from the seed).
    pub fn new(mut config: RunConfig, src_vocab: Vocab, tgt_vocab: Vocab) -> Result<Self> {
        config.model.src_vocab = src_vocab.len();
        config.model.tgt_vocab = tgt_vocab.len();
        let model = Seq2Seq::new(config.model.clone(), &mut seeded_rng(config.train.seed))?;
        Ok(Transducer {
            model,
            src_vocab,
            tgt_vocab,
            config,
        })
    }

    /// Loads a model directory, checking every tensor's name and shape.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::Parse {
                path: dir.to_path_buf(),
                line: None,
                msg: "not a model directory (no such directory)".into(),
            });
        }
        let config: RunConfig = Checkpoint::load_config(dir)?;
        let src_vocab = Checkpoint::load_vocab(dir, "src")?;
        let tgt_vocab = Checkpoint::load_vocab(dir, "tgt")?;
        if config.model.src_vocab != src_vocab.len() || config.model.tgt_vocab != tgt_vocab.len() {
            return Err(Error::Parse {
                path: dir.join("config.json"),
                line: None,
                msg: format!(
                    "vocabulary sizes {}/{} do not match the vocabulary files ({}/{})",
                    config.model.src_vocab,
                    config.model.tgt_vocab,
                    src_vocab.len(),
                    tgt_vocab.len()
                ),
            });
        }
        let mut model = Seq2Seq::new(config.model.clone(), &mut seeded_rng(0))?;
        Checkpoint::load_model(dir, &mut model)?;
        Ok(Transducer {
            model,
            src_vocab,
            tgt_vocab,
            config,
        })
    }

    /// Saves atomically to `dir` (with the training state, for resuming, when given).
    pub fn save(&self, dir: impl AsRef<Path>, state: Option<&TrainingState>) -> Result<()> {
        Checkpoint::save(
            dir,
            &self.model,
            &self.config,
            &[("src", &self.src_vocab), ("tgt", &self.tgt_vocab)],
            state,
        )
    }

    /// Source text → ids (lowercased when configured; unknown symbols → UNK; EOS appended
    /// when `[data] src_eos` is set).
    pub fn encode_source(&self, text: &str) -> Vec<i64> {
        let text = if self.config.data.lowercase_src {
            text.to_lowercase()
        } else {
            text.to_string()
        };
        let mut ids = self
            .src_vocab
            .encode(&self.config.data.src_tokens.tokenize(&text));
        if self.config.data.src_eos {
            ids.push(i64::from(crate::data::vocab::EOS));
        }
        ids
    }

    /// Target ids → text.
    pub fn decode_target(&self, ids: &[u32]) -> String {
        let ids: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
        self.config
            .data
            .tgt_tokens
            .detokenize(&self.tgt_vocab.decode(&ids))
    }

    /// Decodes every input (all at once, batched); per input, its outputs best first.
    pub fn translate(&self, inputs: &[&str], opts: &DecodeOptions) -> Result<Vec<Vec<Output>>> {
        let srcs: Vec<Vec<i64>> = inputs.iter().map(|s| self.encode_source(s)).collect();
        let hyps = translate(&self.model, &srcs, opts)?;
        Ok(hyps
            .into_iter()
            .map(|hs| hs.into_iter().map(|h| self.output(h)).collect())
            .collect())
    }

    fn output(&self, h: Hypothesis) -> Output {
        Output {
            text: self.decode_target(&h.tokens),
            log_prob: h.log_prob,
            score: h.score,
            truncated: h.truncated,
            attention: h.attention,
        }
    }

    /// Sentence mode: transliterates every run of letters and digits of each line and keeps
    /// everything else (spaces, punctuation) as it is.
    pub fn translate_sentences(&self, lines: &[&str], opts: &DecodeOptions) -> Result<Vec<String>> {
        let split: Vec<Vec<(bool, String)>> = lines.iter().map(|l| split_words(l)).collect();
        let words: Vec<&str> = split
            .iter()
            .flatten()
            .filter(|(w, _)| *w)
            .map(|(_, s)| s.as_str())
            .collect();
        // Words decode in batches of a bounded size (the same results: decoding does not depend
        // on batch composition), which keeps every buffer small enough to be reused.
        let mut outs = Vec::with_capacity(words.len());
        for chunk in words.chunks(SENTENCE_WORDS_PER_BATCH) {
            outs.extend(self.translate(chunk, opts)?);
        }
        let mut outs = outs.into_iter().map(|mut o| o.swap_remove(0).text);
        Ok(split
            .iter()
            .map(|parts| {
                parts
                    .iter()
                    .map(|(is_word, s)| {
                        if *is_word {
                            outs.next().unwrap_or_default()
                        } else {
                            s.clone()
                        }
                    })
                    .collect()
            })
            .collect())
    }
}

/// Words decoded together by [`Transducer::translate_sentences`].
const SENTENCE_WORDS_PER_BATCH: usize = 256;

/// Splits a line into maximal runs of alphanumeric characters (words) and of everything else.
pub fn split_words(line: &str) -> Vec<(bool, String)> {
    let mut parts: Vec<(bool, String)> = Vec::new();
    for ch in line.chars() {
        let w = ch.is_alphanumeric();
        match parts.last_mut() {
            Some((kind, s)) if *kind == w => s.push(ch),
            _ => parts.push((w, ch.to_string())),
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_split_keeps_punctuation_and_spacing() {
        let parts = split_words("main  ghar, ja raha hoon!");
        let words: Vec<&str> = parts.iter().filter(|p| p.0).map(|p| p.1.as_str()).collect();
        assert_eq!(words, ["main", "ghar", "ja", "raha", "hoon"]);
        let joined: String = parts.iter().map(|p| p.1.as_str()).collect();
        assert_eq!(joined, "main  ghar, ja raha hoon!");
    }
}
