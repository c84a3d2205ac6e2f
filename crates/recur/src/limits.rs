//! Input limits and memory estimates: no input makes memory grow without bound. Texts have
//! fixed limits; a model, a training run or a decoding request whose estimated memory exceeds
//! half of what the machine has available is refused before anything is allocated, with the
//! estimate in the message.

use crate::error::{Error, Result};
use crate::nn::RnnMode;
use crate::seq2seq::Seq2SeqConfig;

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

/// Bytes of a model's parameters (f32), from [`Seq2SeqConfig::param_count`].
pub fn model_bytes(cfg: &Seq2SeqConfig) -> u64 {
    u64::try_from(cfg.param_count().saturating_mul(4)).unwrap_or(u64::MAX)
}

/// Gates per recurrent layer.
fn gates(cell: RnnMode) -> u64 {
    match cell {
        RnnMode::Lstm => 4,
        RnnMode::Gru => 3,
        _ => 1,
    }
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
