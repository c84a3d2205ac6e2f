//! Ensembles: several models decoded as one [`StepModel`], so that greedy and beam search (and
//! everything built on them) decode an ensemble exactly as they decode one model, batched.
//!
//! Per step, every member advances its own state over the same working-set rows and writes its
//! log-probabilities; the ensemble's log-probability of token v in row r is their mean,
//!
//! ```text
//!   logp[r, v] = (1/K) · Σ_k logp_k[r, v]          (K members, summed in member order)
//! ```
//!
//! the per-step average of log-probabilities (a geometric mean of the members' distributions,
//! not renormalised: a row's probabilities may sum to less than 1, which the search does not
//! need). It rewards tokens that every member finds likely, where the log of the mean
//! probability would let one confident member outvote the rest. With one member the mean is the
//! member's own value (`x / 1` is exact): a one-member ensemble decodes bit for bit as the model.
//!
//! The attention weights of an ensemble are the mean of those of the members that have
//! attention (empty when none has), over the narrowest width they return (every member's width
//! covers the longest live source).
//!
//! The members may differ in cell, size and attention kind; they must share the target
//! vocabulary (checked here by size; [`crate::transducer::Transducer::add_member`] checks the
//! vocabularies themselves). Every row's value depends on that row alone, so batch invariance
//! carries over from the members.

use super::inference::{encode_sources, DecodeState};
use super::search::{decode, DecodeOptions, Hypothesis, StepModel};
use super::{Seq2Seq, Seq2SeqPacked, TokenId};
use crate::error::{Error, Result};

/// Several step models decoded as one (see the [module docs](self)).
#[derive(Debug)]
pub struct Ensemble<'m, M> {
    members: Vec<&'m M>,
}

/// The decoding state of an [`Ensemble`]: each member's own state, and the buffers its step
/// writes into, reused across steps (once grown, a step allocates nothing).
#[derive(Debug)]
pub struct EnsembleState<S> {
    members: Vec<S>,
    logp: Vec<Vec<f32>>,
    attn: Vec<Vec<f32>>,
    /// Whether the next step runs the members last to first.
    backwards: bool,
}

impl<S> EnsembleState<S> {
    /// The state of an ensemble from each member's initial state, in member order (each with
    /// one row per source, as the search takes them).
    pub fn new(members: Vec<S>) -> Self {
        let k = members.len();
        EnsembleState {
            members,
            logp: vec![Vec::new(); k],
            attn: vec![Vec::new(); k],
            backwards: false,
        }
    }
}

impl<'m, M: StepModel> Ensemble<'m, M> {
    /// An ensemble of `members` (at least one), which must have the same number of output
    /// classes.
    pub fn new(members: Vec<&'m M>) -> Result<Self> {
        let Some(first) = members.first() else {
            return Err(Error::arg("Ensemble", "members", "at least one", 0));
        };
        let vocab = first.vocab_size();
        if let Some((i, m)) = members
            .iter()
            .enumerate()
            .find(|(_, m)| m.vocab_size() != vocab)
        {
            let want = format!("{vocab} output classes (as member 1)");
            let got = format!("member {} with {}", i + 1, m.vocab_size());
            return Err(Error::arg("Ensemble", "members", want, got));
        }
        Ok(Ensemble { members })
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: an ensemble has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn check_state(&self, state: &EnsembleState<M::State>) -> Result<()> {
        if state.members.len() != self.members.len() {
            let want = format!("{} member states", self.members.len());
            let got = state.members.len().to_string();
            return Err(Error::shape("Ensemble.step", want, got));
        }
        Ok(())
    }
}

impl<M: StepModel> StepModel for Ensemble<'_, M> {
    type State = EnsembleState<M::State>;

    /// Steps every member over the same rows (`prev`: B tokens), then writes the mean of their
    /// log-probabilities (B × V) into `logp` and the mean of their attention rows
    /// (B × the narrowest member width) into `attn`.
    fn step(
        &self,
        state: &mut Self::State,
        prev: &[TokenId],
        logp: &mut Vec<f32>,
        attn: &mut Vec<f32>,
    ) -> Result<()> {
        self.check_state(state)?;
        // Every other step runs the members backwards: the weights used last are used first
        // again, still in cache, when all the members' weights do not fit in it at once. The
        // members' steps are independent, and their log-probs are summed in member order below.
        let k = self.members.len();
        for i in 0..k {
            let i = if state.backwards { k - 1 - i } else { i };
            let (lp, at) = (&mut state.logp[i], &mut state.attn[i]);
            lp.clear();
            at.clear();
            self.members[i].step(&mut state.members[i], prev, lp, at)?;
        }
        state.backwards = !state.backwards;
        mean_log_probs(&state.logp, logp)?;
        mean_attention(&state.attn, prev.len(), attn)
    }

    fn select(&self, state: &mut Self::State, keep: &[usize]) -> Result<()> {
        self.check_state(state)?;
        for (m, s) in self.members.iter().zip(&mut state.members) {
            m.select(s, keep)?;
        }
        Ok(())
    }

    fn vocab_size(&self) -> usize {
        self.members.first().map_or(0, |m| m.vocab_size())
    }
}

/// `out[i] = (Σ_k members[k][i]) / K`, summed in member order (the same bits for a row
/// whatever the batch). Members of different lengths are an error.
fn mean_log_probs(members: &[Vec<f32>], out: &mut Vec<f32>) -> Result<()> {
    let Some((first, rest)) = members.split_first() else {
        return Ok(());
    };
    if let Some(bad) = rest.iter().find(|m| m.len() != first.len()) {
        let want = format!("{} log-probs, as member 1", first.len());
        return Err(Error::shape("Ensemble.step", want, bad.len().to_string()));
    }
    out.clear();
    out.extend_from_slice(first);
    for m in rest {
        out.iter_mut().zip(m).for_each(|(o, &x)| *o += x);
    }
    let k = members.len() as f32;
    out.iter_mut().for_each(|o| *o /= k);
    Ok(())
}

/// The mean attention rows (`rows` × the narrowest width) of the members that returned any;
/// `out` is left empty when none did. Allocates nothing once `out` has grown.
fn mean_attention(members: &[Vec<f32>], rows: usize, out: &mut Vec<f32>) -> Result<()> {
    out.clear();
    let with = || members.iter().filter(|a| !a.is_empty());
    if rows == 0 || with().next().is_none() {
        return Ok(());
    }
    if let Some(bad) = with().find(|a| a.len() % rows != 0) {
        let want = format!("{rows} attention rows");
        return Err(Error::shape("Ensemble.step", want, bad.len().to_string()));
    }
    let width = with().map(|a| a.len() / rows).min().unwrap_or(0);
    out.resize(rows * width, 0.0);
    for a in with() {
        for (o, row) in out
            .chunks_exact_mut(width.max(1))
            .zip(a.chunks_exact(a.len() / rows))
        {
            o.iter_mut().zip(row).for_each(|(o, &x)| *o += x);
        }
    }
    let k = with().count() as f32;
    out.iter_mut().for_each(|o| *o /= k);
    Ok(())
}

/// Decodes every source (token ids without BOS/EOS, fitting every member's source vocabulary)
/// with the ensemble of `members`, each encoding the sources itself: per source, its hypotheses
/// best first, as [`super::inference::translate`] gives them for one model.
pub fn translate_ensemble(
    members: &[&Seq2Seq],
    sources: &[Vec<i64>],
    opts: &DecodeOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    let packs = members
        .iter()
        .map(|m| m.pack())
        .collect::<Result<Vec<_>>>()?;
    translate_ensemble_packed(members, &packs, sources, opts)
}

/// [`translate_ensemble`] with each member's weights packed once by [`Seq2Seq::pack`]
/// (`packs[i]` from `members[i]`), for callers that decode many times (the same results).
pub fn translate_ensemble_packed<P: std::borrow::Borrow<Seq2SeqPacked>>(
    members: &[&Seq2Seq],
    packs: &[P],
    sources: &[Vec<i64>],
    opts: &DecodeOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    if packs.len() != members.len() {
        let got = format!("{} packs for {} members", packs.len(), members.len());
        return Err(Error::arg(
            "translate_ensemble",
            "packs",
            "one pack per member",
            got,
        ));
    }
    let ensemble = Ensemble::new(members.to_vec())?;
    let mut states: Vec<DecodeState> = Vec::with_capacity(members.len());
    let mut lengths = Vec::new();
    for (m, packed) in members.iter().zip(packs) {
        let (state, lens) = encode_sources(m, packed.borrow(), sources)?;
        states.push(state);
        lengths = lens;
    }
    let mut state = EnsembleState::new(states);
    decode(&ensemble, &mut state, &lengths, opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::seeded_rng;
    use crate::nn::RnnMode;
    use crate::seq2seq::inference::translate;
    use crate::seq2seq::search::MaxLen;
    use crate::seq2seq::{AttentionKind, Seq2SeqConfig};

    fn model(attention: AttentionKind, cell: RnnMode, hidden: usize, seed: u64) -> Seq2Seq {
        let cfg = Seq2SeqConfig {
            cell,
            src_vocab: 11,
            tgt_vocab: 13,
            emb_dim: 6,
            hidden_size: hidden,
            layers: 1,
            bidirectional: true,
            attention,
            attn_dim: 7,
            dropout: 0.0,
        };
        Seq2Seq::new(cfg, &mut seeded_rng(seed)).unwrap()
    }

    fn sources() -> Vec<Vec<i64>> {
        vec![
            vec![4, 5, 6],
            vec![7, 8],
            vec![],
            vec![9, 10, 4, 5, 6],
            vec![6],
        ]
    }

    fn opts(beam: usize) -> DecodeOptions {
        DecodeOptions {
            beam_size: beam,
            nbest: beam.min(2),
            max_len: MaxLen::Fixed(9),
            return_attention: true,
            ..DecodeOptions::default()
        }
    }

    /// A hypothesis' tokens, log-prob, score and attention as bits.
    type Bits = (Vec<u32>, u32, u32, Vec<Vec<u32>>);

    fn bits(h: &Hypothesis) -> Bits {
        let attn = h.attention.iter();
        let attn = attn.map(|r| r.iter().map(|x| x.to_bits()).collect());
        (
            h.tokens.clone(),
            h.log_prob.to_bits(),
            h.score.to_bits(),
            attn.collect(),
        )
    }

    fn all_bits(hyps: &[Vec<Hypothesis>]) -> Vec<Vec<Bits>> {
        hyps.iter().map(|l| l.iter().map(bits).collect()).collect()
    }

    #[test]
    fn one_member_decodes_bit_for_bit_as_the_model() {
        for att in [
            AttentionKind::None,
            AttentionKind::Bahdanau,
            AttentionKind::LuongGeneral,
        ] {
            let m = model(att, RnnMode::Lstm, 5, 3);
            for beam in [1, 3] {
                let plain = translate(&m, &sources(), &opts(beam)).unwrap();
                let one = translate_ensemble(&[&m], &sources(), &opts(beam)).unwrap();
                assert_eq!(all_bits(&plain), all_bits(&one), "{att:?} beam {beam}");
            }
        }
    }

    #[test]
    fn members_of_different_kinds_decode_batch_invariantly() {
        let a = model(AttentionKind::Bahdanau, RnnMode::Lstm, 5, 3);
        let b = model(AttentionKind::LuongDot, RnnMode::Gru, 4, 4);
        let c = model(AttentionKind::None, RnnMode::RnnTanh, 3, 5);
        let members = [&a, &b, &c];
        let srcs = sources();
        for beam in [1, 3] {
            let together = translate_ensemble(&members, &srcs, &opts(beam)).unwrap();
            for (i, s) in srcs.iter().enumerate() {
                let alone =
                    translate_ensemble(&members, std::slice::from_ref(s), &opts(beam)).unwrap();
                assert_eq!(all_bits(&together[i..=i]), all_bits(&alone), "source {i}");
            }
            let h = &together[0][0];
            assert!(h.log_prob.is_finite() && h.log_prob < 0.0);
            // Attention: the mean over the two members that have it, one row per token.
            assert_eq!(h.attention.len(), h.tokens.len());
            assert!(h.attention.iter().all(|r| r.len() == 3));
        }
    }

    #[test]
    fn the_ensemble_log_prob_is_the_members_mean() {
        let a = model(AttentionKind::Bahdanau, RnnMode::Lstm, 5, 3);
        let b = model(AttentionKind::None, RnnMode::Gru, 4, 4);
        let srcs = vec![vec![4, 5, 6]];
        let o = DecodeOptions {
            max_len: MaxLen::Fixed(1),
            ..opts(1)
        };
        let both = translate_ensemble(&[&a, &b], &srcs, &o).unwrap();
        let token = both[0][0].tokens[0];
        // Each member's log-probability of that first token, teacher-forced one step.
        let first = |m: &Seq2Seq| {
            let packed = m.pack().unwrap();
            let (mut st, _) = encode_sources(m, &packed, &srcs).unwrap();
            let (mut lp, mut at) = (Vec::new(), Vec::new());
            m.step(&mut st, &[super::super::BOS], &mut lp, &mut at)
                .unwrap();
            lp[token as usize]
        };
        let want = (first(&a) + first(&b)) / 2.0;
        assert_eq!(both[0][0].log_prob.to_bits(), want.to_bits());
    }

    #[test]
    fn members_must_agree_on_the_target_vocabulary() {
        let a = model(AttentionKind::None, RnnMode::Lstm, 5, 3);
        let mut cfg = b_config();
        cfg.tgt_vocab = 14;
        let b = Seq2Seq::new(cfg, &mut seeded_rng(1)).unwrap();
        let e = translate_ensemble(&[&a, &b], &sources(), &opts(1)).unwrap_err();
        assert!(e.to_string().contains("member 2 with 14"), "{e}");
        assert!(translate_ensemble(&[], &sources(), &opts(1)).is_err());
    }

    fn b_config() -> Seq2SeqConfig {
        model(AttentionKind::None, RnnMode::Lstm, 5, 3)
            .config
            .clone()
    }

    #[test]
    fn means_are_exact_for_hand_values() {
        let mut out = Vec::new();
        mean_log_probs(&[vec![-1.0, -3.0], vec![-2.0, -0.5]], &mut out).unwrap();
        assert_eq!(out, vec![-1.5, -1.75]);
        assert!(mean_log_probs(&[vec![-1.0], vec![-1.0, -2.0]], &mut out).is_err());
        // Two rows; the second member is wider (4 columns): the narrowest width (2) is kept.
        let (a, b) = (
            vec![0.5, 0.5, 1.0, 0.0],
            vec![0.25, 0.75, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        );
        mean_attention(&[a, Vec::new(), b], 2, &mut out).unwrap();
        assert_eq!(out, vec![0.375, 0.625, 1.0, 0.0]);
        mean_attention(&[Vec::new()], 2, &mut out).unwrap();
        assert!(out.is_empty());
    }
}
