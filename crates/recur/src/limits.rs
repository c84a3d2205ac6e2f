//! Input limits and memory estimates: no input makes memory grow without bound. Texts have
//! fixed limits; a model, a training run or a decoding request whose estimated memory exceeds
//! half of what the machine has available is refused before anything is allocated, with the
//! estimate in the message.

use crate::error::{Error, Result};
use crate::nn::RnnMode;
use crate::seq2seq::{AttentionKind, Seq2SeqConfig};

/// Characters of one source (a word in sentence mode, a line otherwise).
pub const MAX_SOURCE_CHARS: usize = 1000;
/// Output tokens a decoding may be asked for (`--max-len`); the default rule stops at 500.
pub const MAX_OUTPUT_TOKENS: usize = 5000;
/// Bytes of one input line.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Bytes the machine has available (`MemAvailable` of `/proc/meminfo`; 8 GiB where unknown).
pub fn available_memory() -> u64 {
    const UNKNOWN: u64 = 8 << 30;
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return UNKNOWN;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(UNKNOWN, |kb| kb.saturating_mul(1024))
}

/// Refuses `bytes` of `what` for `op` when they exceed half the available memory.
pub fn check_memory(op: &'static str, what: &str, bytes: u64) -> Result<()> {
    let budget = available_memory() / 2;
    if bytes <= budget {
        return Ok(());
    }
    Err(Error::arg(
        op,
        "memory",
        format!(
            "at most {} (half of the memory available)",
            human_bytes(budget)
        ),
        format!("{what} needing about {}", human_bytes(bytes)),
    ))
}

/// `1234567` → `1.2 MB`.
pub fn human_bytes(b: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

/// Gates per recurrent layer.
fn gates(cell: RnnMode) -> u64 {
    match cell {
        RnnMode::Lstm => 4,
        RnnMode::Gru => 3,
        _ => 1,
    }
}

/// The number of parameters of a model (saturating: absurd sizes stay comparable).
pub fn parameter_count(cfg: &Seq2SeqConfig) -> u64 {
    let n = |v: usize| v as u64;
    let (e, h, layers) = (n(cfg.emb_dim), n(cfg.hidden_size), n(cfg.layers));
    let d = if cfg.bidirectional { 2 } else { 1 };
    let g = gates(cfg.cell);
    let rnn = |input: u64, hidden: u64| {
        // weight_ih, weight_hh, two biases.
        g.saturating_mul(hidden)
            .saturating_mul(input.saturating_add(hidden).saturating_add(2))
    };
    let mut total = (n(cfg.src_vocab).saturating_add(n(cfg.tgt_vocab))).saturating_mul(e);
    for l in 0..layers.min(1 << 20) {
        let input = if l == 0 { e } else { d * h };
        total = total.saturating_add(rnn(input, h).saturating_mul(d));
    }
    let hd = d * h;
    let attends = cfg.attention != AttentionKind::None;
    let ctx = if attends { hd } else { 0 };
    for l in 0..layers.min(1 << 20) {
        let input = if l == 0 { e.saturating_add(ctx) } else { hd };
        total = total.saturating_add(rnn(input, hd));
    }
    let attention = match cfg.attention {
        AttentionKind::None | AttentionKind::LuongDot => 0,
        AttentionKind::Bahdanau => n(cfg.attn_dim).saturating_mul(hd.saturating_mul(2) + 2),
        AttentionKind::LuongGeneral => hd.saturating_mul(hd).saturating_mul(3),
    };
    let out_in = hd.saturating_add(ctx).saturating_add(e);
    total
        .saturating_add(attention)
        .saturating_add(n(cfg.tgt_vocab).saturating_mul(out_in.saturating_add(1)))
}

/// Bytes of a model's parameters (f32).
pub fn model_bytes(cfg: &Seq2SeqConfig) -> u64 {
    parameter_count(cfg).saturating_mul(4)
}

/// Bytes a training run needs at least: parameters, gradients and Adam's two moments.
pub fn training_bytes(cfg: &Seq2SeqConfig) -> u64 {
    model_bytes(cfg).saturating_mul(4)
}

/// Bytes a decoding call holds at once, roughly: for every source and beam, the decoder
/// state, a row of logits and the keys over the source.
pub fn decode_bytes(cfg: &Seq2SeqConfig, sources: usize, beam: usize, src_len: usize) -> u64 {
    let n = |v: usize| v as u64;
    let d = if cfg.bidirectional { 2 } else { 1 };
    let hd = d * n(cfg.hidden_size);
    let state = hd
        .saturating_mul(n(cfg.layers))
        .saturating_mul(2 * gates(cfg.cell) + 2);
    let keys = hd.saturating_mul(2).saturating_mul(n(src_len));
    let per_row = state
        .saturating_add(n(cfg.tgt_vocab).saturating_mul(3))
        .saturating_add(keys);
    per_row
        .saturating_mul(n(sources))
        .saturating_mul(n(beam))
        .saturating_mul(4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::{seeded_rng, Module};
    use crate::seq2seq::Seq2Seq;

    #[test]
    fn parameter_count_matches_the_built_models() {
        for attention in [
            AttentionKind::None,
            AttentionKind::Bahdanau,
            AttentionKind::LuongDot,
            AttentionKind::LuongGeneral,
        ] {
            for (cell, layers, bidirectional) in
                [(RnnMode::Lstm, 2, true), (RnnMode::Gru, 1, false)]
            {
                let cfg = Seq2SeqConfig {
                    cell,
                    src_vocab: 11,
                    tgt_vocab: 13,
                    emb_dim: 5,
                    hidden_size: 7,
                    layers,
                    bidirectional,
                    attention,
                    attn_dim: 6,
                    dropout: 0.0,
                };
                let model = Seq2Seq::new(cfg.clone(), &mut seeded_rng(0)).unwrap();
                let built: usize = model.params().iter().map(|p| p.value.data().len()).sum();
                let est = parameter_count(&cfg);
                assert!(
                    est as f64 >= built as f64 * 0.9 && est as f64 <= built as f64 * 1.5,
                    "{attention:?} {cell:?}: estimate {est}, built {built}"
                );
            }
        }
    }

    #[test]
    fn absurd_sizes_are_refused_with_the_estimate() {
        let cfg = Seq2SeqConfig {
            hidden_size: 100_000_000,
            ..Seq2SeqConfig::default()
        };
        let e = check_memory("train", "the model", training_bytes(&cfg)).unwrap_err();
        assert!(e.to_string().contains("needing about"), "{e}");
        assert!(check_memory("x", "a little", 1000).is_ok());
        assert_eq!(human_bytes(1_234_567), "1.2 MB");
    }
}
