//! Decoding with a trained model: [`Seq2Seq`] as a [`StepModel`] for greedy and beam search, and
//! [`translate`], which pads a batch of token-id sequences, encodes them once and decodes them.

use std::cell::RefCell;
use std::sync::Arc;

use super::attention::Memory;
use super::decoder::{DecoderPacked, DecoderState, StepWork};
use super::model::Seq2SeqPacked;
use super::search::{decode, DecodeOptions, Hypothesis, StepModel};
use super::{Seq2Seq, TokenId, PAD};
use crate::error::Result;

/// What decoding carries per row (the source's attention memory and the decoder state) and the
/// buffers every step reuses: after the first steps, a step and a gather allocate nothing. The
/// buffers also outlive the state: dropped, it leaves them to the next state made on the same
/// thread, so that decoding batch after batch does not allocate (and fault in) them again.
#[derive(Clone, Debug)]
pub struct DecodeState {
    /// Attention memory, one row per hypothesis.
    pub memory: Memory,
    /// Decoder state, one row per hypothesis.
    pub decoder: DecoderState,
    /// The decoder's weights, packed once for every step ([`super::decoder::Decoder::pack`]).
    pub packed: Arc<DecoderPacked>,
    /// The gather target of [`StepModel::select`], swapped with `decoder`.
    spare: DecoderState,
    work: StepWork,
}

thread_local! {
    /// The buffers of the last [`DecodeState`] dropped on this thread.
    static BUFFERS: RefCell<Option<(DecoderState, StepWork)>> = const { RefCell::new(None) };
}

impl DecodeState {
    /// The state of an encoded batch ([`Seq2Seq::encode`]) decoded with `packed`.
    pub fn new(memory: Memory, decoder: DecoderState, packed: Arc<DecoderPacked>) -> Self {
        let (spare, work) = BUFFERS
            .try_with(|b| b.borrow_mut().take())
            .ok()
            .flatten()
            .unwrap_or_default();
        DecodeState {
            memory,
            decoder,
            packed,
            spare,
            work,
        }
    }
}

impl Drop for DecodeState {
    fn drop(&mut self) {
        let buffers = (
            std::mem::take(&mut self.spare),
            std::mem::take(&mut self.work),
        );
        // Keeps the larger set when two states were alive at once.
        let _ = BUFFERS.try_with(|b| {
            let mut b = b.borrow_mut();
            let bigger = b
                .as_ref()
                .is_none_or(|(s, _)| s.h.capacity() <= buffers.0.h.capacity());
            if bigger {
                *b = Some(buffers);
            }
        });
    }
}

impl StepModel for Seq2Seq {
    type State = DecodeState;

    fn step(
        &self,
        state: &mut DecodeState,
        prev: &[TokenId],
        logp: &mut Vec<f32>,
        attn: &mut Vec<f32>,
    ) -> Result<()> {
        let DecodeState {
            memory,
            decoder,
            packed,
            work,
            ..
        } = state;
        let out = self
            .decoder
            .step_infer(packed, prev, decoder, memory, work)?;
        let v = self.config.tgt_vocab;
        logp.clear();
        logp.extend_from_slice(out.logits);
        for row in logp.chunks_exact_mut(v) {
            log_softmax_inplace(row);
        }
        attn.clear();
        attn.extend_from_slice(out.attention);
        Ok(())
    }

    fn select(&self, state: &mut DecodeState, keep: &[usize]) -> Result<()> {
        state.memory.select(keep)?;
        state.spare.gather_from(&state.decoder, keep)?;
        std::mem::swap(&mut state.decoder, &mut state.spare);
        Ok(())
    }

    fn vocab_size(&self) -> usize {
        self.config.tgt_vocab
    }
}

/// `x - logsumexp(x)` in place.
fn log_softmax_inplace(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    let lse = max + sum.ln();
    row.iter_mut().for_each(|x| *x -= lse);
}

/// Decodes every source (token ids without BOS/EOS; ids must fit the source vocabulary), all at
/// once: returns, per source, its hypotheses best first (one for greedy). An empty source
/// decodes to an empty output.
pub fn translate(
    model: &Seq2Seq,
    sources: &[Vec<i64>],
    opts: &DecodeOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    translate_packed(model, &model.pack()?, sources, opts)
}

/// [`translate`] with weights packed once by [`Seq2Seq::pack`], for callers that decode many
/// times with the same model (the same results, bit for bit).
pub fn translate_packed(
    model: &Seq2Seq,
    packed: &Seq2SeqPacked,
    sources: &[Vec<i64>],
    opts: &DecodeOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let (mut state, lengths) = encode_sources(model, packed, sources)?;
    decode(model, &mut state, &lengths, opts)
}

/// Pads and encodes `sources` (ids must fit the source vocabulary) for decoding with `packed`:
/// the decode state and the source lengths, as [`decode`] takes them.
pub fn encode_sources(
    model: &Seq2Seq,
    packed: &Seq2SeqPacked,
    sources: &[Vec<i64>],
) -> Result<(DecodeState, Vec<usize>)> {
    for s in sources {
        model.check_ids(s, model.config.src_vocab, "translate")?;
    }
    let b = sources.len();
    let lengths: Vec<usize> = sources.iter().map(|s| s.len()).collect();
    let steps = lengths.iter().copied().max().unwrap_or(0).max(1);
    let mut src = vec![PAD as i64; steps * b];
    for (j, s) in sources.iter().enumerate() {
        for (t, &id) in s.iter().enumerate() {
            src[t * b + j] = id;
        }
    }
    let (memory, decoder) = model.encode_with(Some(packed), &src, &lengths)?;
    let state = DecodeState::new(memory, decoder, Arc::clone(&packed.decoder));
    Ok((state, lengths))
}
