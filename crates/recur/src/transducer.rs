//! A trained model as a string transducer: the model, its vocabularies and tokenizers, and the
//! run configuration it was trained with, loaded from and saved to a model directory.
//!
//! ```text
//!   MODEL_DIR/model.safetensors   parameters under PyTorch names (encoder.rnn.weight_ih_l0, ...)
//!   MODEL_DIR/config.json         the RunConfig: [data], [model], [train]
//!   MODEL_DIR/src_vocab.json      source vocabulary (PAD=0 BOS=1 EOS=2 UNK=3)
//!   MODEL_DIR/tgt_vocab.json      target vocabulary
//!   MODEL_DIR/lexicon.tsv         optional: words with known outputs, consulted before the
//!                                 model; used when config.json names it (`text.lexicon`)
//!   MODEL_DIR/NAME/               further ensemble members, when config.json lists them
//!   MODEL_DIR/<word_freq>         optional: target word frequencies ([decode] word_freq)
//! ```
//!
//! An ensemble: config.json's top-level `"members": ["NAME", ...]` names subdirectories of the
//! model directory, each a complete model directory (any cell, size and attention kind, the same
//! vocabularies and source preprocessing); [`Transducer::load`] decodes them together with the
//! model itself (see [`crate::seq2seq::ensemble`]). A bundled model lists the same members
//! (see [`crate::models::BundledModel::members`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::checkpoint::{
    set_params, tensors_from_bytes, Checkpoint, TrainingState, CONFIG_FILE, MODEL_FILE,
};
use crate::data::{EvalReport, Pair, Tokenizer, Vocab};
use crate::error::{Error, Result};
use crate::lexicon::Lexicon;
use crate::limits;
use crate::models::{self, ModelFiles, ModelSource};
use crate::module::seeded_rng;
use crate::seq2seq::ensemble::translate_ensemble_packed;
use crate::seq2seq::inference::translate_packed;
use crate::seq2seq::search::{DecodeOptions, Hypothesis, MaxLen};
use crate::seq2seq::word_freq::WordFreq;
use crate::seq2seq::{Seq2Seq, Seq2SeqConfig, Seq2SeqPacked};
use crate::text::{self, Numbers, Piece, TextConfig};
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
    /// A model directory's further ensemble members: subdirectory names, decoded together with
    /// this model (see the [module docs](self)); empty for one model. Not a training option.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

impl RunConfig {
    /// Checks every value of `[data]` and `[train]` against its documented range (the model's
    /// sizes are checked when it is built), so that nonsense is an error, never a silent
    /// clip or a run that trains nothing.
    pub fn validate(&self) -> Result<()> {
        if let Some(first) = self.members.first() {
            // A trained model's config.json would list members its directory does not have.
            let want = "none in a run config (members belong to a model directory's config.json)";
            return Err(Error::arg("run config", "members", want, first));
        }
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
    /// λ in sentence mode, where the words of running text are mostly frequent ones (tuned on
    /// sentences, it can exceed the λ of single words); unset: `word_freq_weight`.
    pub sentence_word_freq_weight: Option<f32>,
    /// Probability of a word missing from the list, in (0, 1]; unset: the list's smallest.
    pub word_freq_floor: Option<f32>,
}

/// Decoding as a front end asks for it (the CLI's flags, the Python keywords): `None` takes
/// the model's `[decode]` setting, else the built-in default (beam 5, the default length rule,
/// the model's λ). [`DecodeRequest::resolve`] checks every value and never clips one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodeRequest {
    /// Beam size (1 = greedy).
    pub beam: Option<usize>,
    /// Hypotheses per input, 1 to the beam size.
    pub nbest: usize,
    /// GNMT length-penalty alpha (0 = raw log-probability), at least 0.
    pub alpha: f32,
    /// Maximum output tokens, 1 to [`limits::MAX_OUTPUT_TOKENS`].
    pub max_len: Option<usize>,
    /// Minimum output tokens.
    pub min_len: usize,
    /// Whether hypotheses carry their attention.
    pub attention: bool,
    /// λ of the word-frequency list, at least 0 (0 = off).
    pub word_freq_weight: Option<f32>,
}

impl Default for DecodeRequest {
    fn default() -> Self {
        DecodeRequest {
            beam: None,
            nbest: 1,
            alpha: 0.0,
            max_len: None,
            min_len: 0,
            attention: false,
            word_freq_weight: None,
        }
    }
}

impl DecodeRequest {
    /// The options, with `stored` (a model's `[decode]`) where the request says nothing. An
    /// out-of-range value is an [`Error::InvalidArgument`] whose `arg` is the field's name.
    pub fn resolve(&self, stored: &DecodeConfig) -> Result<DecodeOptions> {
        const OP: &str = "decode";
        let beam = self.beam.or(stored.beam).unwrap_or(5);
        if beam == 0 {
            return Err(Error::arg(OP, "beam", "at least 1 (1 = greedy)", 0));
        }
        if self.nbest == 0 || self.nbest > beam {
            let expected = format!("1 to the beam size ({beam})");
            return Err(Error::arg(OP, "nbest", expected, self.nbest));
        }
        if !self.alpha.is_finite() || self.alpha < 0.0 {
            return Err(Error::arg(OP, "alpha", "a number >= 0", self.alpha));
        }
        let max_len = self.max_len.or(stored.max_len);
        if let Some(n) = max_len.filter(|&n| n == 0 || n > limits::MAX_OUTPUT_TOKENS) {
            let expected = format!("1 to {} output tokens", limits::MAX_OUTPUT_TOKENS);
            return Err(Error::arg(OP, "max_len", expected, n));
        }
        if let Some(w) = self
            .word_freq_weight
            .filter(|w| !(w.is_finite() && *w >= 0.0))
        {
            return Err(Error::arg(
                OP,
                "word_freq_weight",
                "a number >= 0 (0 = off)",
                w,
            ));
        }
        Ok(DecodeOptions {
            beam_size: beam,
            nbest: self.nbest,
            length_penalty: self.alpha,
            max_len: max_len.map_or(MaxLen::DEFAULT, MaxLen::Fixed),
            min_len: self.min_len,
            return_attention: self.attention,
            // `None` lets the model's λ apply ([`Transducer::resolve_options`]).
            word_freq_weight: self.word_freq_weight,
            word_freq: None,
        })
    }
}

impl DecodeConfig {
    /// Refuses word-frequency settings in a training run: checkpoints are written without the
    /// list, so a saved config naming it (or weighing it) would not load or decode.
    fn validate_for_training(&self) -> Result<()> {
        let weighed = [self.word_freq_weight, self.sentence_word_freq_weight]
            .iter()
            .any(|w| w.is_some_and(|w| w != 0.0));
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

/// Where an output came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Decoded by the model.
    #[default]
    Model,
    /// An entry of the lexicon (see [`Transducer::lexicon`]).
    Lexicon,
}

impl Origin {
    /// Whether it is [`Origin::Model`] (which JSON leaves out).
    pub fn is_model(&self) -> bool {
        *self == Origin::Model
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
    /// Attention weights per output token over the source tokens (when asked for; none for
    /// a lexicon entry).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attention: Vec<Vec<f32>>,
    /// The model or the lexicon (serialized as `"origin": "lexicon"`, left out for the model).
    #[serde(skip_serializing_if = "Origin::is_model")]
    pub origin: Origin,
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
    /// Words with known outputs, consulted before the model (shared by clones).
    lexicon: Option<Arc<Lexicon>>,
    /// Further models decoded together with `model` as an ensemble (empty: `model` alone);
    /// added by [`Transducer::add_member`], which checks that they read and write the same
    /// tokens.
    pub members: Vec<Seq2Seq>,
    /// The target word frequencies of `[decode] word_freq`, when the model has them.
    pub word_freq: Option<Arc<WordFreq>>,
    /// The models' decoding weights, packed at the first call and kept for the next ones.
    packs: PackCache,
}

/// Decoding weights packed from an ensemble's models ([`Seq2Seq::pack`]), kept between calls
/// so that a served or embedded model packs once, not at every call (packing copies every
/// weight: for en-g2p it cost more than decoding one word). A pack whose stamp no longer
/// matches its model's parameters (a model changed since) is packed again.
#[derive(Default)]
struct PackCache(Mutex<Vec<Arc<Seq2SeqPacked>>>);

impl PackCache {
    fn slots(&self) -> MutexGuard<'_, Vec<Arc<Seq2SeqPacked>>> {
        // A panic while packing leaves only complete packs behind: the slots stay usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One current pack per model, in the models' order.
    fn packs(&self, models: &[&Seq2Seq]) -> Result<Vec<Arc<Seq2SeqPacked>>> {
        let mut slots = self.slots();
        slots.truncate(models.len());
        for (i, model) in models.iter().enumerate() {
            if slots.get(i).is_some_and(|p| p.stamp() == model.stamp()) {
                continue;
            }
            let pack = Arc::new(model.pack()?);
            match slots.get_mut(i) {
                Some(slot) => *slot = pack,
                None => slots.push(pack),
            }
        }
        Ok(slots.clone())
    }
}

impl Clone for PackCache {
    fn clone(&self) -> Self {
        PackCache(Mutex::new(self.slots().clone()))
    }
}

/// A set of tokens checked many times (a lexicon's targets against the target vocabulary):
/// tokens of up to 7 bytes are compared as integers, which is several times faster than
/// hashing or comparing CMUdict's 800,000 phonemes as strings.
struct TokenSet<'a> {
    short: Vec<u64>,
    long: Vec<&'a str>,
}

impl<'a> TokenSet<'a> {
    fn new(tokens: impl Iterator<Item = &'a str>) -> Self {
        let (mut short, mut long) = (Vec::new(), Vec::new());
        for t in tokens {
            match Self::short_key(t) {
                Some(k) => short.push(k),
                None => long.push(t),
            }
        }
        short.sort_unstable();
        long.sort_unstable();
        TokenSet { short, long }
    }

    /// A token of at most 7 bytes as one integer: its bytes, and its length in the last byte.
    fn short_key(t: &str) -> Option<u64> {
        let bytes = t.as_bytes();
        (bytes.len() < 8).then(|| {
            let mut b = [0u8; 8];
            b[..bytes.len()].copy_from_slice(bytes);
            b[7] = bytes.len() as u8;
            u64::from_le_bytes(b)
        })
    }

    fn contains(&self, t: &str) -> bool {
        match Self::short_key(t) {
            Some(k) => self.short.binary_search(&k).is_ok(),
            None => self.long.binary_search(&t).is_ok(),
        }
    }
}

impl std::fmt::Debug for PackCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackCache({} packs)", self.slots().len())
    }
}

/// Inputs decoded together at most (by [`Transducer::translate_in_batches`]).
pub const DECODE_CHUNK: usize = 256;

/// Rows of a decoder step (inputs × beam) that [`Transducer::translate`] decodes together.
/// More rows use the GEMM no better and touch more memory: en-g2p (four members, beam 5) on
/// 1,000 words took 3.45 s user and 0.19 s system at 256 words a batch (1,280 rows), 3.28 s
/// and 0.13 s at 64, and hi-translit at beam 4 was fastest at 64 words too.
pub const DECODE_ROWS: usize = 256;

/// The inputs [`Transducer::translate`] decodes together at beam `beam`: [`DECODE_ROWS`] ÷
/// beam, 1 to [`DECODE_CHUNK`] (256 greedy, 64 at beam 4).
pub fn decode_batch(beam: usize) -> usize {
    (DECODE_ROWS / beam.max(1)).clamp(1, DECODE_CHUNK)
}

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
            lexicon: None,
            members: Vec::new(),
            word_freq: None,
            packs: PackCache::default(),
        })
    }

    /// Loads a model by directory or by name (see [`crate::models::resolve`]: a model
    /// directory, a training run's `best/`, a model in `$RECUR_MODELS`, or a bundled one),
    /// checking every tensor's name and shape.
    pub fn load(spec: impl AsRef<Path>) -> Result<Self> {
        Transducer::from_source(&models::resolve(spec)?)
    }

    /// Loads the model at `source` with the ensemble members its config lists (each from
    /// [`ModelSource::member`], itself one model: members do not nest).
    pub fn from_source(source: &ModelSource) -> Result<Self> {
        let mut t = Transducer::from_files(&source.files()?)?;
        for name in t.config.members.clone() {
            let member_source = source.member(&name)?;
            let member = Transducer::from_files(&member_source.files()?)?;
            if !member.config.members.is_empty() {
                return Err(Error::Parse {
                    path: PathBuf::from(member_source.location()).join(CONFIG_FILE),
                    line: None,
                    msg: "an ensemble member lists members of its own (members do not nest)".into(),
                });
            }
            t.add_member(member, &member_source.location())?;
        }
        Ok(t)
    }

    /// Adds `other` (with its own members) to the models decoded together, after checking
    /// that it reads and writes the same tokens: the same vocabularies, tokenizers and source
    /// preprocessing. `origin` names it in the error.
    pub fn add_member(&mut self, other: Transducer, origin: &str) -> Result<()> {
        if let Some(what) = self.incompatibility(&other) {
            return Err(Error::Parse {
                path: PathBuf::from(origin),
                line: None,
                msg: format!(
                    "cannot decode it in an ensemble with the first model: its {what} differs"
                ),
            });
        }
        self.members.push(other.model);
        self.members.extend(other.members);
        Ok(())
    }

    /// What makes `other` read or write other tokens than `self` (vocabularies, tokenizers,
    /// source preprocessing), if anything: models decoded together, or averaged, must agree.
    pub fn incompatibility(&self, other: &Transducer) -> Option<&'static str> {
        let (a, b) = (&self.config.data, &other.config.data);
        if self.src_vocab != other.src_vocab {
            Some("source vocabulary (src_vocab.json)")
        } else if self.tgt_vocab != other.tgt_vocab {
            Some("target vocabulary (tgt_vocab.json)")
        } else if (a.src_tokens, a.tgt_tokens) != (b.src_tokens, b.tgt_tokens) {
            Some("tokenizers ([data] src_tokens/tgt_tokens)")
        } else if (a.lowercase_src, a.src_eos) != (b.lowercase_src, b.src_eos) {
            Some("source preprocessing ([data] lowercase_src/src_eos)")
        } else {
            None
        }
    }

    /// Every model decoded: `model`, then the members.
    pub fn ensemble(&self) -> Vec<&Seq2Seq> {
        std::iter::once(&self.model).chain(&self.members).collect()
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
        // Every parameter is set from the file next (set_params refuses a missing one).
        let mut model = Seq2Seq::new(config.model.clone(), &mut crate::module::Unset)?;
        set_params(tensors, &weights, &mut model)?;
        let mut t = Transducer {
            model,
            src_vocab,
            tgt_vocab,
            config,
            lexicon: None,
            members: Vec::new(),
            word_freq: None,
            packs: PackCache::default(),
        };
        t.lexicon = t.model_lexicon(files)?.map(Arc::new);
        t.word_freq = t.load_word_freq(files)?.map(Arc::new);
        Ok(t)
    }

    /// The lexicon the model directory's config names (`text.lexicon`), parsed.
    fn model_lexicon(&self, files: &ModelFiles<'_>) -> Result<Option<Lexicon>> {
        let Some(name) = &self.config.text.lexicon else {
            return Ok(None);
        };
        let config = files.origin.join(CONFIG_FILE);
        let path = files.origin.join(models::checked_file_name(name, &config)?);
        match &files.lexicon {
            Some(bytes) => self.parse_lexicon(bytes, &path).map(Some),
            None => Err(Error::Parse {
                path: config,
                line: None,
                msg: format!("text.lexicon names {name}, which the model directory lacks"),
            }),
        }
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

    /// [`Self::resolve_options`] for sentence mode: an unset λ becomes the model's sentence
    /// λ (`[decode] sentence_word_freq_weight`) when it has one.
    pub fn resolve_sentence_options(&self, opts: &DecodeOptions) -> Result<DecodeOptions> {
        let mut opts = opts.clone();
        if opts.word_freq_weight.is_none() {
            opts.word_freq_weight = self.config.decode.sentence_word_freq_weight;
        }
        self.resolve_options(&opts)
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

    /// Saves atomically to `dir` (with the training state, for resuming, when given). Saves
    /// `model` only, not the ensemble members, and a config that lists none (the saved
    /// directory loads as that one model); the swap replaces the whole directory, member
    /// subdirectories included.
    ///
    /// A checkpoint holds no word-frequency list, so the saved config names none (and no
    /// weight for one): the saved directory loads, as the model alone; copy the list and its
    /// `[decode]` keys over to use it there.
    pub fn save(&self, dir: impl AsRef<Path>, state: Option<&TrainingState>) -> Result<()> {
        let mut config = self.config.clone();
        config.decode.word_freq = None;
        config.decode.word_freq_weight = None;
        config.decode.word_freq_floor = None;
        config.decode.sentence_word_freq_weight = None;
        // Nor are the members saved: a config listing them would not load.
        config.members.clear();
        Checkpoint::save(
            dir,
            &self.model,
            &config,
            &[("src", &self.src_vocab), ("tgt", &self.tgt_vocab)],
            state,
        )
    }

    /// The lexicon consulted before the model (by default the model directory's).
    pub fn lexicon(&self) -> Option<&Lexicon> {
        self.lexicon.as_deref()
    }

    /// Replaces the lexicon (`None`: the model alone). Build it with [`Self::read_lexicon`] or
    /// [`Self::parse_lexicon`], which apply this model's rules.
    pub fn set_lexicon(&mut self, lexicon: Option<Lexicon>) {
        self.lexicon = lexicon.map(Arc::new);
    }

    /// Adds `lexicon` on top of the current one: its words replace the current entries of the
    /// same words (`recur translate --lexicon FILE`).
    pub fn add_lexicon(&mut self, lexicon: Lexicon) {
        let merged = match self.lexicon.take() {
            Some(current) => Arc::unwrap_or_clone(current).overridden_by(lexicon),
            None => lexicon,
        };
        self.lexicon = Some(Arc::new(merged));
    }

    /// Reads a lexicon file for this model (see [`Self::parse_lexicon`]).
    pub fn read_lexicon(&self, path: &Path) -> Result<Lexicon> {
        let targets = self.lexicon_targets();
        Lexicon::read(path, &|w, t, key, out| {
            self.lexicon_entry(&targets, w, t, key, out)
        })
    }

    /// Parses a lexicon for this model: words are keyed by [`Self::lexicon_key`], and every
    /// target token must be in the target vocabulary (a lexicon in another phoneme set, e.g.
    /// with stress digits, is an error naming the line).
    pub fn parse_lexicon(&self, bytes: &[u8], origin: &Path) -> Result<Lexicon> {
        let targets = self.lexicon_targets();
        Lexicon::parse(bytes, origin, &|w, t, key, out| {
            self.lexicon_entry(&targets, w, t, key, out)
        })
    }

    /// The target tokens a lexicon may use (not the special ones).
    fn lexicon_targets(&self) -> TokenSet<'_> {
        let first_real = crate::data::UNK as i64 + 1;
        TokenSet::new(
            (first_real..self.tgt_vocab.len() as i64).filter_map(|id| self.tgt_vocab.token(id)),
        )
    }

    /// Writes a lexicon line's key and output text, or says why the target is refused.
    fn lexicon_entry(
        &self,
        targets: &TokenSet<'_>,
        word: &str,
        target: &str,
        key: &mut String,
        output: &mut String,
    ) -> std::result::Result<(), String> {
        let tokenizer = self.config.data.tgt_tokens;
        for token in tokenizer.tokens(target) {
            if !targets.contains(token) {
                return Err(format!(
                    "target token `{token}` is not in the model's target vocabulary"
                ));
            }
            if !output.is_empty() {
                output.push_str(tokenizer.separator());
            }
            output.push_str(token);
        }
        self.write_lexicon_key(word, key);
        Ok(())
    }

    /// A word as the lexicon is keyed: after the source preprocessing (lowercasing when
    /// `[data] lowercase_src`), with `’` read as `'`.
    pub fn lexicon_key(&self, word: &str) -> String {
        let mut key = String::with_capacity(word.len());
        self.write_lexicon_key(word, &mut key);
        key
    }

    /// [`Self::lexicon_key`] written into `key`.
    fn write_lexicon_key(&self, word: &str, key: &mut String) {
        let start = key.len();
        if self.config.data.lowercase_src && !word.is_ascii() {
            key.push_str(&word.to_lowercase()); // Unicode's rules (a final sigma), as training
        } else if self.config.data.lowercase_src {
            key.extend(word.chars().map(|c| c.to_ascii_lowercase()));
        } else {
            key.push_str(word);
        }
        if key[start..].contains('’') {
            let fixed = key[start..].replace('’', "'");
            key.truncate(start);
            key.push_str(&fixed);
        }
    }

    /// The lexicon's outputs for `input` (at most `nbest`), if it has the word: entry `k`
    /// (from 0) has `log_prob` = `score` = `-k`, a rank penalty of one nat per place, so the
    /// first is 0 and the list stays in the lexicon's order.
    fn lexicon_outputs(&self, input: &str, nbest: usize) -> Option<Vec<Output>> {
        let entries = self.lexicon.as_ref()?.get(&self.lexicon_key(input))?;
        // `0.0 - k`, not `-k`: the first entry's score is +0, which JSON prints as `0.0`.
        let penalty = |k: usize| 0.0 - k as f32;
        let output = |(k, text): (usize, &str)| Output {
            text: text.to_string(),
            log_prob: penalty(k),
            score: penalty(k),
            truncated: false,
            attention: Vec::new(),
            origin: Origin::Lexicon,
        };
        Some(entries.take(nbest.max(1)).enumerate().map(output).collect())
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

    /// Decodes every input; per input, its outputs best first. An input the lexicon has gets
    /// its entries instead (at most `opts.nbest`, no model hypotheses after them: the lexicon
    /// is trusted; see [`Self::lexicon`]); the others are decoded together.
    ///
    /// Memory stays bounded: inputs are decoded [`decode_batch`] at a time (results do not
    /// depend on it), an input longer than [`limits::MAX_SOURCE_CHARS`] characters is an error
    /// naming it, and a beam that would not fit in memory is refused with the estimate.
    pub fn translate(&self, inputs: &[&str], opts: &DecodeOptions) -> Result<Vec<Vec<Output>>> {
        self.translate_in_batches(inputs, opts, decode_batch(opts.beam_size))
    }

    /// [`Self::translate`] decoding `batch` inputs together (1 to [`DECODE_CHUNK`]; the
    /// results are the same whatever the batch), the kernel threads taking different batches.
    pub fn translate_in_batches(
        &self,
        inputs: &[&str],
        opts: &DecodeOptions,
        batch: usize,
    ) -> Result<Vec<Vec<Output>>> {
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
        let known: Vec<Option<Vec<Output>>> = inputs
            .iter()
            .map(|s| self.lexicon_outputs(s, opts.nbest))
            .collect();
        let misses: Vec<&str> = inputs
            .iter()
            .zip(&known)
            .filter(|(_, k)| k.is_none())
            .map(|(s, _)| *s)
            .collect();
        let mut decoded = self.decode(&misses, opts, batch)?.into_iter();
        Ok(known
            .into_iter()
            .map(|k| k.unwrap_or_else(|| decoded.next().unwrap_or_default()))
            .collect())
    }

    /// Decodes every input with the model alone, `batch` (at most [`DECODE_CHUNK`]) at a time;
    /// with several kernel threads, the threads decode different batches
    /// ([`crate::chunks::map_chunks`]).
    fn decode(
        &self,
        inputs: &[&str],
        opts: &DecodeOptions,
        batch: usize,
    ) -> Result<Vec<Vec<Output>>> {
        let batch = batch.clamp(1, DECODE_CHUNK);
        crate::chunks::map_chunks(inputs, batch, |part, concurrent| {
            self.decode_chunk(part, opts, concurrent)
        })
    }

    /// Decodes one chunk of inputs, `concurrent` chunks being decoded at once (for the memory
    /// check).
    fn decode_chunk(
        &self,
        part: &[&str],
        opts: &DecodeOptions,
        concurrent: usize,
    ) -> Result<Vec<Vec<Output>>> {
        let srcs: Vec<Vec<i64>> = part.iter().map(|s| self.encode_source(s)).collect();
        let longest = srcs.iter().map(Vec::len).max().unwrap_or(0);
        let bytes = self
            .ensemble()
            .iter()
            .map(|m| limits::decode_bytes(&m.config, srcs.len(), opts.beam_size, longest))
            .fold(0u64, u64::saturating_add)
            .saturating_mul(concurrent as u64);
        let what = format!(
            "decoding {} inputs of up to {longest} tokens at beam {}{}",
            srcs.len(),
            opts.beam_size,
            match concurrent {
                1 => String::new(),
                n => format!(", {n} batches at once"),
            }
        );
        limits::check_memory("translate", &what, bytes)?;
        let hyps = self.decode_ids(&srcs, opts)?;
        Ok(hyps
            .into_iter()
            .map(|hs| hs.into_iter().map(|h| self.output(h)).collect())
            .collect())
    }

    /// Scores the model on `(source, reference)` pairs with [`crate::eval::evaluate`]: sources
    /// grouped after preprocessing, decoded with `opts`, the first `k` hypotheses of each
    /// scored. A source the lexicon has is scored on its entries instead (remove the lexicon
    /// with [`Self::set_lexicon`] to score the model alone).
    pub fn evaluate(&self, pairs: &[Pair], opts: &DecodeOptions, k: usize) -> Result<EvalReport> {
        let opts = self.resolve_options(opts)?;
        let vocabs = (&self.src_vocab, &self.tgt_vocab);
        let examples = crate::eval::examples(pairs, &self.config.data, vocabs);
        let known: Vec<Option<Vec<Vec<i64>>>> = match &self.lexicon {
            None => Vec::new(),
            Some(_) => crate::eval::unique_sources(pairs, &self.config.data)
                .iter()
                .map(|src| self.lexicon_ids(src, k))
                .collect(),
        };
        crate::eval::evaluate_with(|srcs| self.decode_ids(srcs, &opts), &examples, &known, k)
    }

    /// The lexicon's first `k` entries for `source` as target ids.
    fn lexicon_ids(&self, source: &str, k: usize) -> Option<Vec<Vec<i64>>> {
        let outputs = self.lexicon_outputs(source, k)?;
        let tokens = &self.config.data.tgt_tokens;
        let ids = |o: &Output| {
            let ts = tokens.tokenize(&o.text);
            ts.iter()
                .map(|t| {
                    self.tgt_vocab
                        .id(t)
                        .unwrap_or(crate::eval::OUT_OF_VOCABULARY)
                })
                .collect()
        };
        Some(outputs.iter().map(ids).collect())
    }

    /// Decodes source ids with the model, or with the ensemble when it has members.
    fn decode_ids(&self, srcs: &[Vec<i64>], opts: &DecodeOptions) -> Result<Vec<Vec<Hypothesis>>> {
        let models = self.ensemble();
        let packs = self.packs.packs(&models)?;
        match packs.as_slice() {
            [pack] => translate_packed(&self.model, pack, srcs, opts),
            _ => translate_ensemble_packed(&models, &packs, srcs, opts),
        }
    }

    fn output(&self, h: Hypothesis) -> Output {
        Output {
            text: self.decode_target(&h.tokens),
            log_prob: h.log_prob,
            score: h.score,
            truncated: h.truncated,
            attention: h.attention,
            origin: Origin::Model,
        }
    }

    /// Sentence mode: transduces every word of each line (see [`crate::text`]: a run of
    /// characters the source alphabet covers, or a word the lexicon has) and passes everything
    /// else through, after the model's `[text]` rules (numbers spelled out, sentence-final
    /// punctuation, digits, word separators).
    pub fn translate_sentences(&self, lines: &[&str], opts: &DecodeOptions) -> Result<Vec<String>> {
        Ok(self
            .translate_sentences_detailed(lines, opts)?
            .into_iter()
            .map(|s| s.output)
            .collect())
    }

    /// [`Self::translate_sentences`] with, for every word of every line, its outputs best
    /// first (`opts.nbest` of them, with attention when asked for). With `numbers =
    /// "english"`, the words of a number are words of the line (`25` → `twenty`, `five`).
    pub fn translate_sentences_detailed(
        &self,
        lines: &[&str],
        opts: &DecodeOptions,
    ) -> Result<Vec<SentenceOutput>> {
        let spelled: Vec<std::borrow::Cow<str>> = lines
            .iter()
            .map(|l| match self.config.text.numbers {
                Numbers::English => crate::numbers::spell_numbers(l),
                Numbers::Keep => std::borrow::Cow::Borrowed(*l),
            })
            .collect();
        let split: Vec<Vec<Piece>> = spelled.iter().map(|l| self.segment(l)).collect();
        let opts = &self.resolve_sentence_options(opts)?;
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

    /// A line's words and the pieces between them, as sentence mode finds them: runs of
    /// characters [`Self::covers`] accepts, joined by an apostrophe or hyphen the alphabet
    /// lacks when the lexicon has the joined word (see [`text::segment_with`]).
    pub fn segment<'a>(&self, line: &'a str) -> Vec<Piece<'a>> {
        let known = |w: &str| {
            self.lexicon
                .as_ref()
                .is_some_and(|l| l.contains(&self.lexicon_key(w)))
        };
        text::segment_with(line, |c| self.covers(c), known)
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

    /// A small untrained model over the letters a-e (seeded: same seed, same weights).
    fn tiny(attention: crate::seq2seq::AttentionKind, seed: u64, letters: &str) -> Transducer {
        let mut config = RunConfig::default();
        config.model.emb_dim = 6;
        config.model.hidden_size = 5;
        config.model.attn_dim = 4;
        config.model.attention = attention;
        config.train.seed = seed;
        let words: Vec<Vec<String>> = vec![letters.chars().map(String::from).collect()];
        let vocab = Vocab::from_sequences(&words, 1);
        Transducer::new(config, vocab.clone(), vocab).unwrap()
    }

    fn temp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("recur-ens-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn beam(k: usize) -> DecodeOptions {
        DecodeOptions {
            beam_size: k,
            nbest: k,
            return_attention: true,
            ..Default::default()
        }
    }

    /// Several chunks decoded by several threads at once give what one thread gives, in input
    /// order, with an ensemble and attention.
    #[test]
    fn chunks_decoded_in_parallel_equal_one_thread() {
        use crate::seq2seq::AttentionKind;
        let mut t = tiny(AttentionKind::Bahdanau, 1, "abcde");
        t.add_member(tiny(AttentionKind::LuongGeneral, 2, "abcde"), "member")
            .unwrap();
        let words: Vec<String> = (0..2 * DECODE_CHUNK + 37)
            .map(|i| {
                let len = 1 + i % 7;
                (0..len)
                    .map(|j| (b'a' + ((i * 7 + j * 3) % 5) as u8) as char)
                    .collect()
            })
            .collect();
        let inputs: Vec<&str> = words.iter().map(String::as_str).collect();
        let bits = |outs: Vec<Vec<Output>>| -> Vec<(String, u32, Vec<u32>)> {
            outs.into_iter()
                .flatten()
                .map(|o| {
                    let attn = o.attention.iter().flatten().map(|x| x.to_bits()).collect();
                    (o.text, o.score.to_bits(), attn)
                })
                .collect()
        };
        let one = crate::gemm::with_threads(1, || t.translate(&inputs, &beam(2))).unwrap();
        let three = crate::gemm::with_threads(3, || t.translate(&inputs, &beam(2))).unwrap();
        assert_eq!(one.len(), inputs.len());
        assert_eq!(bits(one), bits(three));
    }

    #[test]
    fn decode_requests_take_the_models_defaults_and_refuse_what_they_cannot_do() {
        let stored = DecodeConfig {
            beam: Some(4),
            max_len: Some(30),
            ..Default::default()
        };
        let o = DecodeRequest::default().resolve(&stored).unwrap();
        assert_eq!((o.beam_size, o.nbest, o.max_len), (4, 1, MaxLen::Fixed(30)));
        let o = DecodeRequest::default()
            .resolve(&DecodeConfig::default())
            .unwrap();
        assert_eq!((o.beam_size, o.max_len), (5, MaxLen::DEFAULT));
        let wrong = [
            (
                DecodeRequest {
                    beam: Some(0),
                    ..Default::default()
                },
                "beam",
            ),
            (
                DecodeRequest {
                    nbest: 5,
                    ..Default::default()
                },
                "nbest",
            ),
            (
                DecodeRequest {
                    nbest: 0,
                    ..Default::default()
                },
                "nbest",
            ),
            (
                DecodeRequest {
                    alpha: -0.5,
                    ..Default::default()
                },
                "alpha",
            ),
            (
                DecodeRequest {
                    alpha: f32::NAN,
                    ..Default::default()
                },
                "alpha",
            ),
            (
                DecodeRequest {
                    max_len: Some(0),
                    ..Default::default()
                },
                "max_len",
            ),
            (
                DecodeRequest {
                    max_len: Some(100_000),
                    ..Default::default()
                },
                "max_len",
            ),
            (
                DecodeRequest {
                    word_freq_weight: Some(-1.0),
                    ..Default::default()
                },
                "word_freq_weight",
            ),
        ];
        for (request, field) in wrong {
            match request.resolve(&stored) {
                Err(Error::InvalidArgument { arg, .. }) => assert_eq!(arg, field),
                other => panic!("{request:?}: {other:?}"),
            }
        }
    }

    /// Flips and scales every weight, as an optimizer step would change them.
    fn update(t: &mut Transducer) {
        use crate::module::Module;
        for p in std::iter::once(&mut t.model).chain(&mut t.members) {
            for param in p.params_mut() {
                for v in param.value.data_mut() {
                    *v *= -1.5;
                }
                param.touch();
            }
        }
    }

    #[test]
    fn packed_weights_are_kept_between_calls_and_renewed_after_an_update() {
        use crate::seq2seq::AttentionKind::{Bahdanau, LuongDot};
        let words = ["abc", "ed", "e", "dcba"];
        for members in [0, 2] {
            let make = || {
                let mut t = tiny(Bahdanau, 1, "abcde");
                for i in 0..members {
                    t.add_member(tiny(LuongDot, 2 + i as u64, "abcde"), "m")
                        .unwrap();
                }
                t
            };
            let mut t = make();
            let before = t.translate(&words, &beam(3)).unwrap();
            let first = t.packs.slots().clone();
            assert_eq!(first.len(), 1 + members);
            assert_eq!(t.translate(&words, &beam(3)).unwrap(), before);
            let again = t.packs.slots().clone();
            assert!(
                first.iter().zip(&again).all(|(a, b)| Arc::ptr_eq(a, b)),
                "packed again"
            );
            // After an update the next call decodes with the new weights, as a model that
            // never decoded before does.
            let copy = t.clone();
            update(&mut t);
            let after = t.translate(&words, &beam(3)).unwrap();
            let mut fresh = make();
            update(&mut fresh);
            assert_eq!(after, fresh.translate(&words, &beam(3)).unwrap());
            assert_ne!(
                after, before,
                "the update changed nothing: the test cannot tell"
            );
            // A clone made before the update keeps decoding with its own weights.
            assert_eq!(copy.translate(&words, &beam(3)).unwrap(), before);
        }
    }

    #[test]
    fn a_model_directory_declares_its_ensemble_members() {
        use crate::seq2seq::AttentionKind::{Bahdanau, LuongDot};
        let dir = temp("dir");
        let mut top = tiny(Bahdanau, 1, "abcde");
        top.save(&dir, None).unwrap();
        tiny(LuongDot, 2, "abcde")
            .save(dir.join("seed-2"), None)
            .unwrap();
        // config.json rewritten in place (a save lists no members, and would replace the
        // directory, members included).
        let write_config = |c: &RunConfig| {
            let json = serde_json::to_vec_pretty(c).unwrap();
            std::fs::write(dir.join(CONFIG_FILE), json).unwrap();
        };
        top.config.members = vec!["seed-2".into()];
        write_config(&top.config);
        let t = Transducer::load(&dir).unwrap();
        assert_eq!(t.members.len(), 1);
        assert_eq!(t.members[0].config.attention, LuongDot);
        let out = t.translate(&["abc", "ed"], &beam(3)).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|o| o.len() == 3 && o[0].score.is_finite()));
        // A member listed but missing is an error naming it.
        top.config.members.push("seed-3".into());
        write_config(&top.config);
        let e = Transducer::load(&dir).unwrap_err().to_string();
        assert!(e.contains("seed-3"), "{e}");
        top.config.members = vec!["../x".into()];
        write_config(&top.config);
        let e = Transducer::load(&dir).unwrap_err().to_string();
        assert!(e.contains("subdirectory name"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_saved_model_loads_without_its_word_frequency_list() {
        let dir = std::env::temp_dir().join(format!("recur-wfsave-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let t = shipped("hi-translit");
        assert!(t.word_freq.is_some());
        t.save(&dir, None).unwrap();
        let back = Transducer::load(&dir).unwrap();
        assert!(back.word_freq.is_none() && back.config.decode.word_freq_weight.is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_model_with_itself_decodes_as_the_model_alone() {
        // (x + x) / 2 == x exactly: an ensemble of two copies gives the model's bits.
        let t = tiny(crate::seq2seq::AttentionKind::LuongGeneral, 1, "abcde");
        let mut twice = t.clone();
        twice.add_member(t.clone(), "copy").unwrap();
        let inputs = ["abc", "", "eedcba", "a"];
        for k in [1, 3] {
            assert_eq!(
                t.translate(&inputs, &beam(k)).unwrap(),
                twice.translate(&inputs, &beam(k)).unwrap()
            );
        }
    }

    #[test]
    fn a_run_config_has_no_members() {
        let cfg = RunConfig::load(None, &["data.train=x.tsv".into()]).unwrap();
        cfg.validate().unwrap();
        let cfg = RunConfig::load(None, &["data.train=x.tsv".into(), "members=[\"m\"]".into()]);
        let e = cfg.unwrap().validate().unwrap_err().to_string();
        assert!(e.contains("members"), "{e}");
    }

    #[test]
    fn members_with_other_vocabularies_are_refused_by_name() {
        let mut t = tiny(crate::seq2seq::AttentionKind::None, 1, "abcde");
        let other = tiny(crate::seq2seq::AttentionKind::None, 1, "abcdf");
        let e = t
            .add_member(other, "runs/other/best")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("runs/other/best") && e.contains("source vocabulary"),
            "{e}"
        );
        let mut lower = tiny(crate::seq2seq::AttentionKind::None, 1, "abcde");
        lower.config.data.lowercase_src = true;
        let e = t.add_member(lower, "lower").unwrap_err().to_string();
        assert!(e.contains("lowercase_src"), "{e}");
        assert!(t.members.is_empty());
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
        let mut t = shipped("en-g2p");
        let opts = DecodeOptions {
            beam_size: 1,
            ..Default::default()
        };
        let lines = [
            "The quick brown fox",
            "don't stop",
            "don’t o'clock well-known",
        ];
        let out = t.translate_sentences(&lines, &opts).unwrap();
        assert_eq!(
            out[0], "DH AH | K W IH K | B R AW N | F AA K S",
            "from CMUdict"
        );
        assert_eq!(out[1], "D OW N T | S T AA P");
        assert_eq!(
            out[2], "D OW N T | AH K L AA K | W EH L N OW N",
            "joined by the lexicon"
        );
        t.set_lexicon(None);
        let alone = t.translate_sentences(&lines, &opts).unwrap();
        assert_eq!(alone[0].matches(" | ").count(), 3, "{}", alone[0]);
        assert_eq!(
            alone[1].matches(" | ").count(),
            1,
            "one word each: {}",
            alone[1]
        );
        assert!(!alone[1].contains('\''), "{}", alone[1]);
        assert_eq!(
            alone[2].matches(['’', '-']).count(),
            2,
            "split: {}",
            alone[2]
        );
    }

    #[test]
    fn lexicon_words_come_first_and_misses_are_decoded_together() {
        let mut t = shipped("en-g2p");
        let opts = DecodeOptions {
            beam_size: 3,
            nbest: 3,
            ..Default::default()
        };
        let inputs = ["Read", "zzyxqua", "the"];
        let out = t.translate(&inputs, &opts).unwrap();
        let texts = |o: &[Output]| o.iter().map(|h| h.text.clone()).collect::<Vec<_>>();
        assert_eq!(
            texts(&out[0]),
            ["R EH D", "R IY D"],
            "CMUdict's order, no model after"
        );
        assert_eq!((out[0][0].score, out[0][1].log_prob), (0.0, -1.0));
        assert!(out[0].iter().all(|o| o.origin == Origin::Lexicon));
        assert_eq!(out[1].len(), 3, "decoded: {:?}", texts(&out[1]));
        assert!(out[1].iter().all(|o| o.origin == Origin::Model));
        let json = serde_json::to_string(&out[2][0]).unwrap();
        assert!(json.contains(r#""origin":"lexicon""#), "{json}");
        assert!(!serde_json::to_string(&out[1][0])
            .unwrap()
            .contains("origin"));
        t.set_lexicon(None);
        let alone = t.translate(&inputs, &opts).unwrap();
        assert_eq!(alone[1], out[1], "a miss decodes as without the lexicon");
        assert!(alone[0].iter().all(|o| o.origin == Origin::Model));
    }

    #[test]
    fn a_lexicon_outside_the_target_vocabulary_is_refused_with_its_line() {
        let mut t = shipped("en-g2p");
        let e = t
            .parse_lexicon(b"a\tAH\nb\tB IY1\n", Path::new("user.tsv"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "user.tsv:2: target token `IY1` is not in the model's target vocabulary"
        );
        let user = t.parse_lexicon("Zzyx\tZ IH K S\nthe\tTH IY".as_bytes(), Path::new("u"));
        t.add_lexicon(user.unwrap());
        let lex = t.lexicon().unwrap();
        assert_eq!(
            lex.get("zzyx").unwrap().collect::<Vec<_>>(),
            ["Z IH K S"],
            "keys lowercased"
        );
        assert_eq!(
            lex.get("the").unwrap().collect::<Vec<_>>(),
            ["TH IY"],
            "overrides the model's"
        );
        assert_eq!(
            lex.get("a").unwrap().collect::<Vec<_>>(),
            ["AH", "EY"],
            "the model's others stay"
        );
    }

    #[test]
    fn english_numbers_are_spelled_and_pronounced_from_the_lexicon() {
        let t = shipped("en-g2p");
        let opts = DecodeOptions::default();
        let out = t
            .translate_sentences_detailed(&["I have 25 books."], &opts)
            .unwrap();
        assert_eq!(
            out[0].output,
            "AY | HH AE V | T W EH N T IY | F AY V | B UH K S."
        );
        let words: Vec<&str> = out[0].words.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(words, ["I", "have", "twenty", "five", "books"]);
        assert!(out[0]
            .words
            .iter()
            .all(|w| w.outputs[0].origin == Origin::Lexicon));
    }

    #[test]
    fn a_model_directory_lexicon_must_exist_and_stay_inside() {
        let dir = std::env::temp_dir().join(format!("recur-lexdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let t = shipped("hi-translit");
        t.save(&dir, None).unwrap();
        let set_lexicon = |name: &str| {
            let path = dir.join(CONFIG_FILE);
            let mut cfg: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            cfg["text"]["lexicon"] = name.into();
            std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
        };
        set_lexicon("lexicon.tsv");
        let e = Transducer::load(&dir).unwrap_err().to_string();
        assert!(e.contains("lexicon.tsv"), "{e}");
        std::fs::write(dir.join("lexicon.tsv"), "namaste\tनमस्ते\n").unwrap();
        let t = Transducer::load(&dir).unwrap();
        let out = t
            .translate(&["Namaste"], &DecodeOptions::default())
            .unwrap();
        assert_eq!(out[0][0].text, "नमस्ते");
        set_lexicon("../lexicon.tsv");
        let e = Transducer::load(&dir).unwrap_err().to_string();
        assert!(e.contains("expected a file name"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
