//! The encoder-decoder of `reference/seq2seq.py`: training pass (teacher forcing, optional
//! scheduled sampling) with hand-written backward, and encoding for decoding.
//!
//! All token tensors are time-major: `src` (S, B), `tgt_in`/`tgt_out` (T, B), with
//! `tgt_in[0] = BOS` and PAD = 0 past each sequence's end.

use std::sync::Arc;

use rand::Rng;

use super::attention::{Attention, Memory, MemoryGrad};
use super::config::{Seq2SeqConfig, PAD};
use super::decoder::{Decoder, DecoderPacked, DecoderState, StateGrad, StepWork};
use super::encoder::Encoder;
use crate::error::{Error, Result};
use crate::loss::cross_entropy;
use crate::module::{mix_version, Init, Module, Param, Rng64};
use crate::nn::{RnnDeferred, RnnPacked, RnnState};
use crate::tensor::Tensor;

/// The weights of a [`Seq2Seq`] packed for inference by [`Seq2Seq::pack`].
#[derive(Clone, Debug)]
pub struct Seq2SeqPacked {
    /// The encoder's recurrent layers.
    pub encoder: RnnPacked,
    /// The decoder's weights (shared by every decode state).
    pub decoder: Arc<DecoderPacked>,
    /// [`Seq2Seq::stamp`] when packed (the encoder's embedding is folded into `encoder`).
    stamp: u64,
}

impl Seq2SeqPacked {
    /// The [`Seq2Seq::stamp`] of the parameters it was packed from.
    pub fn stamp(&self) -> u64 {
        self.stamp
    }
}

/// An encoder-decoder with attention.
#[derive(Clone, Debug)]
pub struct Seq2Seq {
    /// Its hyper-parameters.
    pub config: Seq2SeqConfig,
    /// `encoder.*`.
    pub encoder: Encoder,
    /// `decoder.*`.
    pub decoder: Decoder,
}

/// A padded, time-major batch of token ids.
#[derive(Clone, Copy, Debug)]
pub struct TokenBatch<'a> {
    /// Source ids (S, B).
    pub src: &'a [i64],
    /// Source lengths (B).
    pub src_lengths: &'a [usize],
    /// Decoder inputs (T, B), starting with BOS.
    pub tgt_in: &'a [i64],
    /// Targets (T, B), PAD where ignored.
    pub tgt_out: &'a [i64],
}

/// Options of a training pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrainOptions {
    /// PyTorch's `label_smoothing` of the cross entropy.
    pub label_smoothing: f32,
    /// Scheduled sampling: the probability that a decoder input (after the first) is the
    /// model's own previous prediction (argmax) instead of the reference token.
    pub sampling_probability: f32,
}

/// The result of a training pass.
#[derive(Clone, Debug)]
pub struct TrainOutput {
    /// Mean cross entropy over non-PAD targets.
    pub loss: f32,
    /// Logits (T, B, V).
    pub logits: Tensor,
    /// Non-PAD target tokens.
    pub tokens: usize,
}

impl Module for Seq2Seq {
    fn params(&self) -> Vec<&Param> {
        let mut v = self.encoder.params();
        v.extend(self.decoder.params());
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v = self.encoder.params_mut();
        v.extend(self.decoder.params_mut());
        v
    }
}

impl Seq2Seq {
    /// Builds a model with PyTorch's default initialisation from `rng`.
    pub fn new(config: Seq2SeqConfig, rng: &mut impl Init) -> Result<Self> {
        config.validate()?;
        let encoder = Encoder::new(&config, rng)?;
        let decoder = Decoder::new(&config, rng)?;
        Ok(Seq2Seq {
            config,
            encoder,
            decoder,
        })
    }

    fn check_batch(&self, src: &[i64], lengths: &[usize]) -> Result<(usize, usize)> {
        let b = lengths.len();
        if b == 0 || !src.len().is_multiple_of(b) {
            return Err(Error::shape(
                "Seq2Seq",
                "src of shape (S, B) with B = number of lengths",
                format!("{} ids for {b} lengths", src.len()),
            ));
        }
        let s = src.len() / b;
        if let Some((i, &l)) = lengths.iter().enumerate().find(|(_, &l)| l > s) {
            return Err(Error::arg(
                "Seq2Seq",
                "src_lengths",
                format!("each <= source length {s}"),
                format!("src_lengths[{i}] = {l}"),
            ));
        }
        Ok((s, b))
    }

    /// Encodes a batch for decoding: the attention memory and the decoder's initial state.
    pub fn encode(&self, src: &[i64], src_lengths: &[usize]) -> Result<(Memory, DecoderState)> {
        self.encode_with(None, src, src_lengths)
    }

    /// [`Seq2Seq::encode`] with the weights from [`Seq2Seq::pack`], for decoding: the same keys
    /// and state, bit for bit, and the memory readied for the packed decoder
    /// ([`Decoder::prepare_memory`]).
    pub fn encode_with(
        &self,
        packed: Option<&Seq2SeqPacked>,
        src: &[i64],
        src_lengths: &[usize],
    ) -> Result<(Memory, DecoderState)> {
        let (s, b) = self.check_batch(src, src_lengths)?;
        if let Some(p) = packed {
            self.check_packed(p)?;
        }
        if let (Some(p), Attention::None) = (packed, &self.decoder.attention) {
            // Nothing reads the encoder's outputs: only its final state is computed.
            let state = self
                .encoder
                .encode_state(&p.encoder, src, s, b, src_lengths)?;
            let mem = Memory::new(Vec::new(), Vec::new(), src_lengths.to_vec(), s, 0, 0);
            return Ok((mem, self.decoder.initial_state(state)));
        }
        let enc_packed = packed.map(|p| &p.encoder);
        let (keys, state, _) = self
            .encoder
            .encode(enc_packed, src, s, b, src_lengths, None)?;
        let mut mem = self.memory(&keys, src_lengths)?;
        if let Some(p) = packed {
            self.decoder.prepare_memory(&p.decoder, &mut mem);
        }
        Ok((mem, self.decoder.initial_state(state)))
    }

    /// Keys (S, B, K) → batch-major memory with the projected keys.
    fn memory(&self, keys: &Tensor, lengths: &[usize]) -> Result<Memory> {
        let (s, b, k) = (keys.dim(0), keys.dim(1), keys.dim(2));
        let bm = keys.transpose01().into_vec(); // (B, S, K)
        let (proj, proj_dim) = self.decoder.attention.project_keys(&bm, b * s)?;
        Ok(Memory::new(bm, proj, lengths.to_vec(), s, k, proj_dim))
    }

    /// Every weight inference multiplies by, packed once for many encodes and decodes (a served
    /// model packs once). Stale once the parameters change.
    pub fn pack(&self) -> Result<Seq2SeqPacked> {
        Ok(Seq2SeqPacked {
            encoder: self.encoder.pack()?,
            decoder: Arc::new(self.decoder.pack()?),
            stamp: self.stamp(),
        })
    }

    /// A fingerprint of the versions of every parameter ([`Param::version`]); changes whenever
    /// one of them is updated.
    pub fn stamp(&self) -> u64 {
        self.params().into_iter().fold(0, mix_version)
    }

    /// Checks that `packed` was packed from the current parameters.
    pub fn check_packed(&self, packed: &Seq2SeqPacked) -> Result<()> {
        if packed.stamp != self.stamp() {
            return Err(Error::arg(
                "Seq2Seq.encode",
                "packed",
                "weights packed from the current parameters",
                "stale weights (packed before a parameter update; pack again)",
            ));
        }
        Ok(())
    }

    /// Teacher-forced logits (T, B, V) without training (no dropout, nothing saved): the bits
    /// of [`Seq2Seq::train_batch`]'s logits.
    pub fn forward(&self, src: &[i64], src_lengths: &[usize], tgt_in: &[i64]) -> Result<Tensor> {
        self.forward_with(None, src, src_lengths, tgt_in)
    }

    /// [`Seq2Seq::forward`] as decoding computes it, with the weights of [`Seq2Seq::pack`]
    /// (`packed`) and the memory readied for them ([`Seq2Seq::encode_with`]): with Bahdanau
    /// attention, equal to `forward`'s to float rounding, not to the bit.
    pub fn forward_with(
        &self,
        packed: Option<&Seq2SeqPacked>,
        src: &[i64],
        src_lengths: &[usize],
        tgt_in: &[i64],
    ) -> Result<Tensor> {
        let (mem, mut state) = self.encode_with(packed, src, src_lengths)?;
        let b = src_lengths.len();
        let t = tgt_in.len() / b;
        let v = self.config.tgt_vocab;
        let mut logits = Vec::with_capacity(t * b * v);
        let decoder = match packed {
            Some(p) => Arc::clone(&p.decoder),
            None => Arc::new(self.decoder.pack()?),
        };
        let packed = &*decoder;
        let mut work = StepWork::default();
        let mut prev = vec![0u32; b];
        for i in 0..t {
            to_token_ids(&tgt_in[i * b..][..b], v, &mut prev)?;
            let out = self
                .decoder
                .step_infer(packed, &prev, &mut state, &mem, &mut work)?;
            logits.extend_from_slice(out.logits);
        }
        Tensor::from_vec(&[t, b, v], logits)
    }

    /// Forward, loss and backward of one batch: adds every parameter gradient (call
    /// `zero_grad` first) and returns the loss and logits.
    pub fn train_batch(
        &mut self,
        batch: TokenBatch,
        opts: TrainOptions,
        rng: &mut Rng64,
    ) -> Result<TrainOutput> {
        let (s, b) = self.check_batch(batch.src, batch.src_lengths)?;
        if batch.tgt_in.len() != batch.tgt_out.len() || !batch.tgt_in.len().is_multiple_of(b) {
            return Err(Error::shape(
                "Seq2Seq.train_batch",
                format!("tgt_in and tgt_out of shape (T, {b})"),
                format!("{} and {} ids", batch.tgt_in.len(), batch.tgt_out.len()),
            ));
        }
        let (t, v) = (batch.tgt_in.len() / b, self.config.tgt_vocab);
        // Encoder.
        let (keys, state0, enc_cache) =
            self.encoder
                .encode(None, batch.src, s, b, batch.src_lengths, Some(rng))?;
        let enc_cache = enc_cache
            .ok_or_else(|| Error::arg("Seq2Seq.train_batch", "encoder cache", "kept", "none"))?;
        let mem = self.memory(&keys, batch.src_lengths)?;
        // Decoder, teacher forcing (with optional scheduled sampling).
        let mut state = self.decoder.initial_state(state0);
        let mut caches = Vec::with_capacity(t);
        let mut logits = Vec::with_capacity(t * b * v);
        let mut prev = batch.tgt_in[..b].to_vec();
        let mut prev_ids = vec![0u32; b];
        let packed = self.decoder.pack_for_training(); // once for the batch's steps
        for i in 0..t {
            if i > 0 {
                prev.copy_from_slice(&batch.tgt_in[i * b..][..b]);
                if opts.sampling_probability > 0.0 {
                    let last = &logits[(i - 1) * b * v..][..b * v];
                    for (r, p) in prev.iter_mut().enumerate() {
                        if *p != PAD as i64 && rng.gen::<f32>() < opts.sampling_probability {
                            *p = argmax(&last[r * v..][..v]) as i64;
                        }
                    }
                }
            }
            to_token_ids(&prev, v, &mut prev_ids)?;
            let step = self
                .decoder
                .step_train(&packed, &prev_ids, &state, &mem, rng)?;
            logits.extend_from_slice(&step.logits);
            caches.push(step.cache);
            state = step.next;
        }
        // Loss.
        let (loss, dlogits) = cross_entropy(
            &logits,
            t * b,
            v,
            batch.tgt_out,
            Some(PAD as i64),
            opts.label_smoothing,
        )?;
        let tokens = batch.tgt_out.iter().filter(|&&y| y != PAD as i64).count();
        // Backward through the decoder, last step first.
        let mut dmem = MemoryGrad::zeros(&mem);
        let mut dstate = StateGrad::zeros(&state);
        let dz = self.decoder.output_backward(&caches, &dlogits)?; // (T·B, Z), one GEMM
        let zw = dz.len() / (t * b).max(1);
        let mut deferred = RnnDeferred::default();
        for i in (0..t).rev() {
            let dz_i = &dz[i * b * zw..][..b * zw];
            let cache = &caches[i];
            dstate = self.decoder.step_backward(
                &packed,
                cache,
                &mem,
                dz_i,
                &dstate,
                &mut dmem,
                &mut deferred,
            )?;
        }
        // The recurrence's weight gradients of all steps: one GEMM per weight.
        self.decoder.flush_deferred(&mut deferred);
        self.decoder
            .attention
            .project_keys_backward(&mem.keys, b * s, &mut dmem)?;
        // Back into the encoder: memory gradient to time-major (S, B, K).
        let dkeys = Tensor::from_vec(&[b, s, mem.key_dim], dmem.keys)?.transpose01();
        let dstate0 = RnnState {
            h: dstate.h,
            c: dstate.c,
        };
        self.encoder.backward(&enc_cache, &dkeys, &dstate0)?;
        Ok(TrainOutput {
            loss,
            logits: Tensor::from_vec(&[t, b, v], logits)?,
            tokens,
        })
    }

    /// Checks that a token id tensor fits the vocabulary (used by tools before decoding).
    pub fn check_ids(&self, ids: &[i64], vocab: usize, what: &'static str) -> Result<()> {
        match ids.iter().find(|&&i| i < 0 || i as usize >= vocab) {
            Some(&i) => Err(Error::IndexOutOfRange {
                op: what,
                index: i,
                size: vocab,
            }),
            None => Ok(()),
        }
    }
}

/// Token ids of one step as the decoder reads them, checked against the vocabulary `v`.
fn to_token_ids(ids: &[i64], v: usize, out: &mut [u32]) -> Result<()> {
    for (o, &id) in out.iter_mut().zip(ids) {
        *o = match u32::try_from(id) {
            Ok(t) if (t as usize) < v => t,
            _ => {
                return Err(Error::IndexOutOfRange {
                    op: "Decoder.step",
                    index: id,
                    size: v,
                })
            }
        };
    }
    Ok(())
}

/// Index of the largest value (the first on ties).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
}
