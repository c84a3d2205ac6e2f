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

use crate::checkpoint::{
    set_params, tensors_from_bytes, Checkpoint, TrainingState, CONFIG_FILE, MODEL_FILE,
};
use crate::data::{EvalReport, Pair, Tokenizer, Vocab};
use crate::error::{Error, Result};
use crate::models::{self, ModelFiles};
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

impl DataConfig {
    /// A source string as the model sees it before tokenization (lowercased when
    /// `lowercase_src`): one rule for training, evaluation and translation.
    pub fn preprocess_source(&self, text: &str) -> String {
        if self.lowercase_src {
            text.to_lowercase()
        } else {
            text.to_string()
        }
    }

    /// Source text → ids: [`Self::preprocess_source`], tokens (unknown ones → UNK), and EOS
    /// when `src_eos` is set.
    pub fn encode_source(&self, vocab: &Vocab, text: &str) -> Vec<i64> {
        let mut ids = vocab.encode(&self.src_tokens.tokenize(&self.preprocess_source(text)));
        if self.src_eos {
            ids.push(crate::data::EOS);
        }
        ids
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

impl RunConfig {
    /// Reads a run config: a TOML file (optional: all defaults without one) with
    /// `section.key=value` overrides applied on top (`train.lr=0.001`, `data.dev="d.tsv"`; a
    /// value that is not TOML is taken as a string).
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<RunConfig> {
        let origin = path.unwrap_or(Path::new("--set"));
        let bad = |line: Option<usize>, msg: String| Error::Parse {
            path: origin.to_path_buf(),
            line,
            msg,
        };
        let mut value = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
                text.parse::<toml::Table>()
                    .map_err(|e| bad(None, format!("not valid TOML: {e}")))?
            }
            None => toml::Table::new(),
        };
        for o in overrides {
            set_key(&mut value, o).map_err(|msg| bad(None, format!("--set {o}: {msg}")))?;
        }
        toml::Value::Table(value)
            .try_into()
            .map_err(|e| bad(None, format!("invalid run config: {e}")))
    }
}

/// Applies one `section.key=value` override to a TOML table.
fn set_key(root: &mut toml::Table, assignment: &str) -> std::result::Result<(), String> {
    let (key, raw) = assignment
        .split_once('=')
        .ok_or("expected section.key=value")?;
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().filter(|k| !k.is_empty()).ok_or("empty key")?;
    let mut table = root;
    for part in parts {
        table = table
            .entry(part)
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .ok_or_else(|| format!("{part} is not a section"))?;
    }
    table.insert(last.to_string(), value);
    Ok(())
}

/// Decoding defaults stored with a model (TOML section `[decode]`); unset means the built-in
/// default of the command line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeConfig {
    /// Beam size (1 = greedy); unset: 5.
    pub beam: Option<usize>,
    /// Maximum output tokens (EOS excluded); unset: 3 × source tokens + 5 (see
    /// [`max_output_len`]).
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

/// Output-length rule: at most `ratio × source tokens + 5` tokens (and never more than 500).
pub fn max_output_len(src_tokens: usize, ratio: f32) -> usize {
    ((ratio * src_tokens as f32).ceil() as usize + MAX_LEN_OFFSET).min(MAX_LEN_LIMIT)
}

/// `opts`, with the per-source rule of [`max_output_len`] (ratio 3) when it sets no ratio.
fn with_length_rule(opts: &DecodeOptions) -> DecodeOptions {
    let mut opts = opts.clone();
    if opts.max_len_ratio.is_none() {
        (opts.max_len_ratio, opts.max_len_offset) = (Some(3.0), MAX_LEN_OFFSET);
        opts.max_len = opts.max_len.min(MAX_LEN_LIMIT);
    }
    opts
}

/// The `+ 5` of [`max_output_len`].
const MAX_LEN_OFFSET: usize = 5;
/// The absolute limit of [`max_output_len`].
const MAX_LEN_LIMIT: usize = 500;

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

    /// Loads a model by directory or by name (see [`crate::models::resolve`]: a model
    /// directory, a training run's `best/`, a model in `$RECUR_MODELS`, or a bundled one),
    /// checking every tensor's name and shape.
    pub fn load(spec: impl AsRef<Path>) -> Result<Self> {
        Transducer::from_files(&models::resolve(spec)?.files()?)
    }

    /// Builds a model from the files of a model directory (read from disk or compiled in).
    pub fn from_files(files: &ModelFiles<'_>) -> Result<Self> {
        let origin = &files.origin;
        let config: RunConfig =
            serde_json::from_slice(&files.config).map_err(|e| Error::Parse {
                path: origin.join(CONFIG_FILE),
                line: Some(e.line()),
                msg: e.to_string(),
            })?;
        let vocab = |bytes: &[u8], name: &str| {
            let path = origin.join(name);
            let text = std::str::from_utf8(bytes).map_err(|e| Error::Parse {
                path: path.clone(),
                line: None,
                msg: format!("not UTF-8: {e}"),
            })?;
            Vocab::from_json(text, &path)
        };
        let src_vocab = vocab(&files.src_vocab, "src_vocab.json")?;
        let tgt_vocab = vocab(&files.tgt_vocab, "tgt_vocab.json")?;
        if config.model.src_vocab != src_vocab.len() || config.model.tgt_vocab != tgt_vocab.len() {
            return Err(Error::Parse {
                path: origin.join(CONFIG_FILE),
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
        let weights = origin.join(MODEL_FILE);
        let tensors = tensors_from_bytes(&files.weights, &weights)?;
        // A model's values are all in its weights file: a config asking for more is refused
        // before the model is allocated (memory bounded by the input, whatever the config says).
        config.model.validate()?;
        let stored: u128 = tensors.iter().map(|(_, t)| t.numel() as u128).sum();
        if config.model.param_count() > stored {
            return Err(Error::Parse {
                path: origin.join(CONFIG_FILE),
                line: None,
                msg: format!(
                    "the model needs {} parameters ({} bytes) but {MODEL_FILE} holds {stored}",
                    config.model.param_count(),
                    config.model.param_count().saturating_mul(4)
                ),
            });
        }
        let mut model = Seq2Seq::new(config.model.clone(), &mut seeded_rng(0))?;
        set_params(tensors, &weights, &mut model)?;
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
        self.config.data.encode_source(&self.src_vocab, text)
    }

    /// Target ids → text.
    pub fn decode_target(&self, ids: &[u32]) -> String {
        let ids: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
        self.config
            .data
            .tgt_tokens
            .detokenize(&self.tgt_vocab.decode(&ids))
    }

    /// Decodes every input (all at once, batched); per input, its outputs best first. When
    /// `opts.max_len_ratio` is unset, each source gets the length rule of [`max_output_len`]
    /// with ratio 3 (within `opts.max_len`).
    pub fn translate(&self, inputs: &[&str], opts: &DecodeOptions) -> Result<Vec<Vec<Output>>> {
        let srcs: Vec<Vec<i64>> = inputs.iter().map(|s| self.encode_source(s)).collect();
        let hyps = translate(&self.model, &srcs, &with_length_rule(opts))?;
        Ok(hyps
            .into_iter()
            .map(|hs| hs.into_iter().map(|h| self.output(h)).collect())
            .collect())
    }

    /// Scores the model on `(source, reference)` pairs with [`crate::eval::evaluate`]: sources
    /// grouped after preprocessing, decoded with `opts` (and the length rule of
    /// [`Self::translate`]), the first `k` hypotheses of each scored.
    pub fn evaluate(&self, pairs: &[Pair], opts: &DecodeOptions, k: usize) -> Result<EvalReport> {
        let vocabs = (&self.src_vocab, &self.tgt_vocab);
        let examples = crate::eval::examples(pairs, &self.config.data, vocabs);
        crate::eval::evaluate(&self.model, &examples, &with_length_rule(opts), k)
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
        let mut outs = self
            .translate(&words, opts)?
            .into_iter()
            .map(|mut o| o.swap_remove(0).text);
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
    fn run_config_overrides_apply_on_top_of_the_file() {
        let dir = std::env::temp_dir().join(format!("recur-runcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.toml");
        std::fs::write(&path, "[train]\nlr = 0.5\nepochs = 3\n").unwrap();
        let sets = ["train.lr=0.25".to_string(), "data.train=x.tsv".to_string()];
        let cfg = RunConfig::load(Some(&path), &sets).unwrap();
        assert_eq!((cfg.train.lr, cfg.train.epochs), (0.25, 3));
        assert_eq!(cfg.data.train, PathBuf::from("x.tsv"));
        for bad in ["train.lr", "train.nope=1", "train.lr.x=1", "=1"] {
            let e = RunConfig::load(None, &[bad.to_string()]).unwrap_err();
            assert!(e.to_string().contains("--set"), "{bad}: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sentence_split_keeps_punctuation_and_spacing() {
        let parts = split_words("main  ghar, ja raha hoon!");
        let words: Vec<&str> = parts.iter().filter(|p| p.0).map(|p| p.1.as_str()).collect();
        assert_eq!(words, ["main", "ghar", "ja", "raha", "hoon"]);
        let joined: String = parts.iter().map(|p| p.1.as_str()).collect();
        assert_eq!(joined, "main  ghar, ja raha hoon!");
    }

    #[test]
    fn output_length_rule() {
        assert_eq!(max_output_len(10, 3.0), 35);
        assert_eq!(max_output_len(0, 3.0), 5);
        assert_eq!(max_output_len(10_000, 3.0), 500);
    }

    #[test]
    fn translate_applies_the_length_rule_per_source() {
        // The options `translate` builds when none are given.
        let opts = DecodeOptions {
            max_len_ratio: Some(3.0),
            max_len_offset: MAX_LEN_OFFSET,
            max_len: MAX_LEN_LIMIT,
            ..DecodeOptions::default()
        };
        for n in [1, 2, 7, 40, 200, 10_000] {
            assert_eq!(opts.cap(n), max_output_len(n, 3.0), "source of {n} tokens");
        }
    }
}
