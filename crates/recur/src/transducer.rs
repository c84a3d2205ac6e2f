//! A trained model as a string transducer: the model, its vocabularies and tokenizers, and the
//! run configuration it was trained with, loaded from and saved to a model directory.
//!
//! ```text
//!   MODEL_DIR/model.safetensors   parameters under PyTorch names (encoder.rnn.weight_ih_l0, ...)
//!   MODEL_DIR/config.json         the RunConfig: [data], [model], [train]
//!   MODEL_DIR/src_vocab.json      source vocabulary (PAD=0 BOS=1 EOS=2 UNK=3)
//!   MODEL_DIR/tgt_vocab.json      target vocabulary
//!   MODEL_DIR/<word_freq>         optional: target word frequencies ([decode] word_freq)
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{
    set_params, tensors_from_bytes, Checkpoint, TrainingState, CONFIG_FILE, MODEL_FILE,
};
use crate::data::{EvalReport, Pair, Tokenizer, Vocab};
use crate::error::{Error, Result};
use crate::limits;
use crate::models::{self, ModelFiles};
use crate::module::seeded_rng;
use crate::seq2seq::inference::translate;
use crate::seq2seq::search::{DecodeOptions, Hypothesis};
use crate::seq2seq::word_freq::WordFreq;
use crate::seq2seq::{Seq2Seq, Seq2SeqConfig};
use crate::text::{self, Piece, TextConfig};
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

    /// Checks the values against their documented ranges.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "[data]";
        if self.train.as_os_str().is_empty() {
            return Err(Error::arg(OP, "train", "a TSV file (required)", "nothing"));
        }
        if self.max_src_len == 0 || self.max_tgt_len == 0 {
            let got = self.max_src_len.min(self.max_tgt_len);
            return Err(Error::arg(OP, "max_src_len/max_tgt_len", ">= 1", got));
        }
        if self.src_col == self.tgt_col {
            return Err(Error::arg(
                OP,
                "src_col/tgt_col",
                "two different columns",
                self.src_col,
            ));
        }
        Ok(())
    }

    /// Source text → ids: [`Self::preprocess_source`], tokens (unknown ones → UNK), and EOS
    /// when `src_eos` is set.
    pub fn encode_source(&self, vocab: &Vocab, text: &str) -> Vec<i64> {
        let mut ids = vocab.encode(&self.src_tokens.tokenize(&self.preprocess_source(text)));
        if self.src_eos {
            ids.push(i64::from(crate::data::EOS));
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
    /// Sentence-mode rules.
    pub text: TextConfig,
}

impl RunConfig {
    /// Checks every value of `[data]` and `[train]` against its documented range (the model's
    /// sizes are checked when it is built), so that nonsense is an error, never a silent
    /// clip or a run that trains nothing.
    pub fn validate(&self) -> Result<()> {
        self.data.validate()?;
        self.train.validate()?;
        self.decode.validate_for_training()
    }

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
///
/// Frequency-aware decoding: `word_freq` names a file of target word frequencies in the model
/// directory (format in [`crate::seq2seq::word_freq`]); beam search adds `word_freq_weight ·
/// log p(word)` to each finished hypothesis, with `word_freq_floor` as `p` of unlisted words.
/// The list belongs to a model directory: a training config may not name one (checkpoints are
/// written without it); add the file to the trained model's directory and name it there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeConfig {
    /// Beam size (1 = greedy); unset: 5.
    pub beam: Option<usize>,
    /// Maximum output tokens (EOS excluded); unset: 3 × source tokens + 5, at most 500 (see
    /// [`crate::seq2seq::search::MaxLen::DEFAULT`]).
    pub max_len: Option<usize>,
    /// The word-frequency file, a plain file name in the model directory; unset: none.
    pub word_freq: Option<String>,
    /// λ, the default weight of `log p(word)` (0 = off); unset: 0.
    pub word_freq_weight: Option<f32>,
    /// Probability of a word missing from the list, in (0, 1]; unset: the list's smallest.
    pub word_freq_floor: Option<f32>,
}

impl DecodeConfig {
    /// Refuses word-frequency settings in a training run: checkpoints are written without the
    /// list, so a saved config naming it (or weighing it) would not load or decode.
    fn validate_for_training(&self) -> Result<()> {
        let weighed = self.word_freq_weight.is_some_and(|w| w != 0.0);
        if self.word_freq.is_none() && !weighed {
            return Ok(());
        }
        Err(Error::arg(
            "[decode]",
            "word_freq",
            "no word-frequency list in a training config (training does not copy it: add the \
             file to the trained model's directory and name it in its config.json)",
            self.word_freq.as_deref().unwrap_or("a weight"),
        ))
    }
}

/// One decoded output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Output {
    /// The output text (symbols joined by spaces, or characters concatenated).
    pub text: String,
    /// Sum of token log-probabilities (the model's own).
    pub log_prob: f32,
    /// Length-normalised score, plus `λ · log p(word)` when beam search used word
    /// frequencies (the score the outputs are ranked by).
    pub score: f32,
    /// The maximum length was reached without EOS.
    pub truncated: bool,
    /// Attention weights per output token over the source tokens (when asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attention: Vec<Vec<f32>>,
}

/// One line in sentence mode: its output and each word's outputs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SentenceOutput {
    /// The line with its words transduced (best outputs) and the rest passed through.
    pub output: String,
    /// The words, in order.
    pub words: Vec<WordOutput>,
}

/// One word of a line in sentence mode.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WordOutput {
    /// The word as it stood in the line.
    pub word: String,
    /// Its outputs, best first.
    pub outputs: Vec<Output>,
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
    /// The target word frequencies of `[decode] word_freq`, when the model has them.
    pub word_freq: Option<Arc<WordFreq>>,
}

/// Inputs decoded together by [`Transducer::translate`].
pub const DECODE_CHUNK: usize = 256;

impl Transducer {
    /// A fresh, untrained model for `config` and the vocabularies (initialised from the seed).
    pub fn new(mut config: RunConfig, src_vocab: Vocab, tgt_vocab: Vocab) -> Result<Self> {
        config.model.src_vocab = src_vocab.len();
        config.model.tgt_vocab = tgt_vocab.len();
        limits::check_memory(
            "Transducer::new",
            "the model",
            limits::model_bytes(&config.model),
        )?;
        let model = Seq2Seq::new(config.model.clone(), &mut seeded_rng(config.train.seed))?;
        Ok(Transducer {
            model,
            src_vocab,
            tgt_vocab,
            config,
            word_freq: None,
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
        let what = format!("the model of {}", origin.display());
        limits::check_memory("load", &what, limits::model_bytes(&config.model))?;
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
        let mut t = Transducer {
            model,
            src_vocab,
            tgt_vocab,
            config,
            word_freq: None,
        };
        t.word_freq = t.load_word_freq(files)?.map(Arc::new);
        Ok(t)
    }

    /// Parses the word-frequency file that `[decode] word_freq` names (`None` when it names
    /// none), with the words written in this model's target tokens.
    fn load_word_freq(&self, files: &ModelFiles<'_>) -> Result<Option<WordFreq>> {
        let decode = &self.config.decode;
        let Some(name) = &decode.word_freq else {
            return Ok(None);
        };
        let path = files.origin.join(name);
        let bytes = files.word_freq.as_deref().ok_or_else(|| Error::Parse {
            path: files.origin.join(CONFIG_FILE),
            line: None,
            msg: format!("[decode] word_freq names {name}, which the model directory lacks"),
        })?;
        let encode = |word: &str| -> Option<Vec<u32>> {
            let tokens = self.config.data.tgt_tokens.tokenize(word);
            let ids: Option<Vec<i64>> = tokens.iter().map(|t| self.tgt_vocab.id(t)).collect();
            ids?.into_iter().map(|id| u32::try_from(id).ok()).collect()
        };
        WordFreq::parse(bytes, &path, encode, decode.word_freq_floor).map(Some)
    }

    /// `opts` as this model decodes them: λ (`word_freq_weight`) resolved to the model's
    /// `[decode]` default when unset, and the model's word frequencies attached when no table
    /// is. A weight above 0 for a model without a list is an error.
    pub fn resolve_options(&self, opts: &DecodeOptions) -> Result<DecodeOptions> {
        let mut opts = opts.clone();
        let weight = opts
            .word_freq_weight
            .or(self.config.decode.word_freq_weight)
            .unwrap_or(0.0);
        opts.word_freq_weight = Some(weight);
        if opts.word_freq.is_none() {
            opts.word_freq = self.word_freq.clone();
        }
        if weight != 0.0 && opts.word_freq.is_none() {
            return Err(Error::arg(
                "translate",
                "word_freq_weight",
                "0 for a model without a word-frequency list ([decode] word_freq)",
                weight,
            ));
        }
        opts.validate()?;
        Ok(opts)
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

    /// Decodes every input; per input, its outputs best first.
    ///
    /// Memory stays bounded: inputs are decoded [`DECODE_CHUNK`] at a time (results do not
    /// depend on it), an input longer than [`limits::MAX_SOURCE_CHARS`] characters is an error
    /// naming it, and a beam that would not fit in memory is refused with the estimate.
    pub fn translate(&self, inputs: &[&str], opts: &DecodeOptions) -> Result<Vec<Vec<Output>>> {
        let opts = &self.resolve_options(opts)?;
        if let Some((i, s)) = inputs
            .iter()
            .enumerate()
            .find(|(_, s)| s.chars().count() > limits::MAX_SOURCE_CHARS)
        {
            return Err(Error::arg(
                "translate",
                "input",
                format!("at most {} characters", limits::MAX_SOURCE_CHARS),
                format!("input {} with {} characters", i + 1, s.chars().count()),
            ));
        }
        let mut outputs = Vec::with_capacity(inputs.len());
        for part in inputs.chunks(DECODE_CHUNK) {
            let srcs: Vec<Vec<i64>> = part.iter().map(|s| self.encode_source(s)).collect();
            let longest = srcs.iter().map(Vec::len).max().unwrap_or(0);
            let bytes =
                limits::decode_bytes(&self.model.config, srcs.len(), opts.beam_size, longest);
            let what = format!(
                "decoding {} inputs of up to {longest} tokens at beam {}",
                srcs.len(),
                opts.beam_size
            );
            limits::check_memory("translate", &what, bytes)?;
            for hs in translate(&self.model, &srcs, opts)? {
                outputs.push(hs.into_iter().map(|h| self.output(h)).collect());
            }
        }
        Ok(outputs)
    }

    /// Scores the model on `(source, reference)` pairs with [`crate::eval::evaluate`]: sources
    /// grouped after preprocessing, decoded with `opts`, the first `k` hypotheses of each
    /// scored.
    pub fn evaluate(&self, pairs: &[Pair], opts: &DecodeOptions, k: usize) -> Result<EvalReport> {
        let opts = self.resolve_options(opts)?;
        let vocabs = (&self.src_vocab, &self.tgt_vocab);
        let examples = crate::eval::examples(pairs, &self.config.data, vocabs);
        crate::eval::evaluate(&self.model, &examples, &opts, k)
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

    /// Sentence mode: transduces every word of each line (see [`crate::text`]: a run of
    /// characters the source alphabet covers) and passes everything else through, after the
    /// model's `[text]` rules (sentence-final punctuation, digits, word separators).
    pub fn translate_sentences(&self, lines: &[&str], opts: &DecodeOptions) -> Result<Vec<String>> {
        Ok(self
            .translate_sentences_detailed(lines, opts)?
            .into_iter()
            .map(|s| s.output)
            .collect())
    }

    /// [`Self::translate_sentences`] with, for every word of every line, its outputs best
    /// first (`opts.nbest` of them, with attention when asked for).
    pub fn translate_sentences_detailed(
        &self,
        lines: &[&str],
        opts: &DecodeOptions,
    ) -> Result<Vec<SentenceOutput>> {
        let split: Vec<Vec<Piece>> = lines
            .iter()
            .map(|l| text::segment(l, |c| self.covers(c)))
            .collect();
        let words: Vec<&str> = split
            .iter()
            .flatten()
            .filter_map(|p| match p {
                Piece::Word(w) => Some(*w),
                Piece::Keep(_) => None,
            })
            .collect();
        // `translate` decodes in chunks of a bounded size (the same results: decoding does not
        // depend on batch composition), which keeps every buffer small enough to be reused.
        let mut outs = self.translate(&words, opts)?.into_iter();
        let rules = &self.config.text;
        let mut result = Vec::with_capacity(lines.len());
        for pieces in &split {
            let (mut output, mut words) = (String::new(), Vec::new());
            for (i, p) in pieces.iter().enumerate() {
                match p {
                    Piece::Word(w) => {
                        let hyps = outs.next().unwrap_or_default();
                        output.push_str(hyps.first().map_or("", |o| o.text.as_str()));
                        words.push(WordOutput {
                            word: w.to_string(),
                            outputs: hyps,
                        });
                    }
                    Piece::Keep(k) => output.push_str(&rules.keep(k, i + 1 == pieces.len())),
                }
            }
            result.push(SentenceOutput { output, words });
        }
        Ok(result)
    }

    /// Whether the model's source alphabet has the character `c` (after the source
    /// preprocessing); with symbol sources, any character but white space.
    pub fn covers(&self, c: char) -> bool {
        match self.config.data.src_tokens {
            Tokenizer::Symbols => !c.is_whitespace(),
            Tokenizer::Chars => {
                let mut buf = [0u8; 4];
                let pre = self.config.data.preprocess_source(c.encode_utf8(&mut buf));
                let mut chars = pre.chars();
                match (chars.next(), chars.next()) {
                    (Some(one), None) => self.src_vocab.id(one.encode_utf8(&mut buf)).is_some(),
                    _ => false,
                }
            }
        }
    }
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
    fn training_configs_refuse_a_word_frequency_list() {
        let mut cfg = RunConfig::default();
        cfg.data.train = PathBuf::from("t.tsv");
        assert!(cfg.validate().is_ok());
        cfg.decode.word_freq_weight = Some(0.0);
        assert!(cfg.validate().is_ok(), "off is fine");
        cfg.decode.word_freq = Some("wordfreq.tsv".into());
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("training does not copy it"), "{e}");
        cfg.decode.word_freq = None;
        cfg.decode.word_freq_weight = Some(0.5);
        assert!(cfg.validate().is_err());
    }

    fn shipped(name: &str) -> Transducer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models")
            .join(name);
        Transducer::load(dir).unwrap()
    }

    #[test]
    fn sentence_mode_passes_digits_scripts_and_symbols_through() {
        let t = shipped("hi-translit");
        let opts = DecodeOptions {
            beam_size: 4,
            ..Default::default()
        };
        let lines = [
            "mere paas 25 rupaye hain.",
            "मैं office जा रहा हूँ",
            "meeting 10:30 baje hai 🙂 mail a@b.com",
        ];
        let out = t.translate_sentences(&lines, &opts).unwrap();
        assert!(
            out[0].contains(" 25 ") && out[0].ends_with('।'),
            "{}",
            out[0]
        );
        assert!(
            out[1].starts_with("मैं ") && out[1].ends_with(" जा रहा हूँ"),
            "{}",
            out[1]
        );
        assert!(
            out[2].contains(" 10:30 ") && out[2].contains(" 🙂 ") && out[2].ends_with(" a@b.com")
        );
        assert!(
            !out[..2]
                .iter()
                .any(|l| l.chars().any(|c| c.is_ascii_lowercase())),
            "{out:?}"
        );
    }

    #[test]
    fn sentence_mode_keeps_word_boundaries_of_symbol_targets() {
        let t = shipped("en-g2p");
        let opts = DecodeOptions {
            beam_size: 1,
            ..Default::default()
        };
        let out = t
            .translate_sentences(&["The quick brown fox", "don't stop"], &opts)
            .unwrap();
        assert_eq!(out[0].matches(" | ").count(), 3, "{}", out[0]);
        assert_eq!(
            out[1].matches(" | ").count(),
            1,
            "one word each: {}",
            out[1]
        );
        assert!(!out[1].contains('\''), "{}", out[1]);
    }
}
