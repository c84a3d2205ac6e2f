//! `recur._recur.Model`: a loaded [`Transducer`], decoded with the GIL released.
//!
//! Decoding only reads the model, so one object serves any number of Python threads at once.

use pyo3::prelude::*;
use recur::seq2seq::search::DecodeOptions;
use recur::transducer::{DecodeRequest, Output, SentenceOutput, Transducer, DECODE_CHUNK};

use crate::value_error;

/// One hypothesis as Python receives it: `(text, tokens, score, log_prob, truncated,
/// attention rows or None)`; `recur.Hypothesis` is built from it on the Python side.
type HypothesisTuple = (String, Vec<String>, f32, f32, bool, Option<Vec<Vec<f32>>>);

/// A sentence in sentence mode: its output line and, per word, `(word, hypotheses)`.
type SentenceTuple = (String, Vec<(String, Vec<HypothesisTuple>)>);

/// A trained model (see `recur.load`).
#[pyclass(frozen, module = "recur._recur")]
pub struct Model {
    inner: Transducer,
    location: String,
}

/// The library's options for `request` (the keywords, named as the CLI's flags), with the
/// same checks and messages as `recur translate` (out-of-range values are errors).
fn options(request: DecodeRequest, t: &Transducer) -> PyResult<DecodeOptions> {
    request.resolve(&t.config.decode).map_err(|e| match e {
        recur::Error::InvalidArgument {
            arg, expected, got, ..
        } => {
            let hint = if arg == "nbest" { " (raise beam)" } else { "" };
            value_error(format!("{arg}: expected {expected}, got {got}{hint}"))
        }
        e => value_error(e),
    })
}

/// Decodes `inputs` a chunk at a time with the GIL released, letting Python handle pending
/// signals between chunks, so that Ctrl-C stops a long call within one chunk's time.
/// Results do not depend on the chunking: the library decodes in smaller batches itself
/// ([`recur::transducer::decode_batch`], at most [`DECODE_CHUNK`]; one per kernel thread at
/// once), and an input's result does not depend on its batch.
fn in_chunks<T: Send>(
    py: Python<'_>,
    inputs: &[&str],
    decode: impl Fn(&[&str]) -> recur::Result<Vec<T>> + Sync,
) -> PyResult<Vec<T>> {
    let mut outs = Vec::with_capacity(inputs.len());
    let chunk = DECODE_CHUNK * recur::gemm::num_threads().max(1);
    for part in inputs.chunks(chunk) {
        outs.extend(py.detach(|| decode(part)).map_err(value_error)?);
        py.check_signals()?;
    }
    Ok(outs)
}

impl Model {
    fn hypothesis(&self, o: Output, attention: bool) -> HypothesisTuple {
        // The output's tokens are its text split the way the target side was tokenized
        // (characters, or space-separated symbols), so they need not be stored twice.
        let tokens = self.inner.config.data.tgt_tokens.tokenize(&o.text);
        let tokens = tokens.into_iter().map(str::to_owned).collect();
        let rows = attention.then_some(o.attention);
        (o.text, tokens, o.score, o.log_prob, o.truncated, rows)
    }

    fn hypotheses(&self, outs: Vec<Output>, nbest: usize, attention: bool) -> Vec<HypothesisTuple> {
        let kept = outs.into_iter().take(nbest);
        kept.map(|o| self.hypothesis(o, attention)).collect()
    }

    fn sentence(&self, s: SentenceOutput, nbest: usize, attention: bool) -> SentenceTuple {
        let words = s.words.into_iter();
        let words = words.map(|w| (w.word, self.hypotheses(w.outputs, nbest, attention)));
        (s.output, words.collect())
    }
}

#[pymethods]
impl Model {
    /// Loads a model directory, a training run (its `best/`), a model in `$RECUR_MODELS`, or a
    /// model shipped inside the package (`"hi-translit"`, `"en-g2p"`).
    /// With `ensemble`, the members its directory lists are loaded and decoded with it, as the
    /// CLI and the server do; without, the first model alone.
    #[staticmethod]
    #[pyo3(signature = (spec, ensemble = true))]
    fn load(py: Python<'_>, spec: std::path::PathBuf, ensemble: bool) -> PyResult<Model> {
        // Resolved once: the location reported is the one loaded.
        let source = recur::models::resolve(&spec).map_err(value_error)?;
        let location = source.location();
        let inner = py
            .detach(|| match ensemble {
                true => Transducer::from_source(&source),
                false => Transducer::from_files(&source.files()?),
            })
            .map_err(value_error)?;
        Ok(Model { inner, location })
    }

    /// Where the model was loaded from (a directory, or `bundled:NAME`).
    #[getter]
    fn location(&self) -> &str {
        &self.location
    }

    /// How many models decode together (1 + the ensemble's members).
    #[getter]
    fn ensemble_size(&self) -> usize {
        1 + self.inner.members.len()
    }

    /// The run configuration the model was trained with, as JSON.
    #[getter]
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner.config).map_err(value_error)
    }

    /// Decodes each input; per input, its `nbest` best hypotheses.
    #[pyo3(signature = (inputs, beam = None, nbest = 1, alpha = 0.0, max_len = None, min_len = 0, attention = false, word_freq_weight = None))]
    #[allow(clippy::too_many_arguments)] // the CLI's decoding options, one keyword each
    fn translate(
        &self,
        py: Python<'_>,
        inputs: Vec<String>,
        beam: Option<usize>,
        nbest: usize,
        alpha: f32,
        max_len: Option<usize>,
        min_len: usize,
        attention: bool,
        word_freq_weight: Option<f32>,
    ) -> PyResult<Vec<Vec<HypothesisTuple>>> {
        let request = DecodeRequest {
            beam,
            nbest,
            alpha,
            max_len,
            min_len,
            attention,
            word_freq_weight,
        };
        let opts = options(request, &self.inner)?;
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let outs = in_chunks(py, &refs, |part| self.inner.translate(part, &opts))?;
        let per_input = outs.into_iter();
        Ok(per_input
            .map(|o| self.hypotheses(o, nbest, attention))
            .collect())
    }

    /// Sentence mode: every word of each line decoded, everything else passed through.
    #[pyo3(signature = (lines, beam = None, nbest = 1, alpha = 0.0, max_len = None, min_len = 0, attention = false, word_freq_weight = None))]
    #[allow(clippy::too_many_arguments)] // the CLI's decoding options, one keyword each
    fn translate_sentences(
        &self,
        py: Python<'_>,
        lines: Vec<String>,
        beam: Option<usize>,
        nbest: usize,
        alpha: f32,
        max_len: Option<usize>,
        min_len: usize,
        attention: bool,
        word_freq_weight: Option<f32>,
    ) -> PyResult<Vec<SentenceTuple>> {
        let request = DecodeRequest {
            beam,
            nbest,
            alpha,
            max_len,
            min_len,
            attention,
            word_freq_weight,
        };
        let opts = options(request, &self.inner)?;
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let outs = in_chunks(py, &refs, |part| {
            self.inner.translate_sentences_detailed(part, &opts)
        })?;
        let per_line = outs.into_iter();
        Ok(per_line
            .map(|s| self.sentence(s, nbest, attention))
            .collect())
    }
}
