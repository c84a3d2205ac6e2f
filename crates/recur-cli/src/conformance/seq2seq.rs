//! Whole encoder-decoder models (`seq2seq`): logits, loss and every parameter gradient.

use super::Checker;
use recur::error::{Error, Result};
use recur::fixture::{Fixture, Tolerance};
use recur::module::{load_params, seeded_rng, Module};
use recur::nn::RnnMode;
use recur::seq2seq::{AttentionKind, Seq2Seq, Seq2SeqConfig, TokenBatch, TrainOptions};
use recur::tensor::Tensor;

fn config(fx: &Fixture) -> Result<Seq2SeqConfig> {
    let cell = match fx.arg_str("cell") {
        Some("lstm") => RnnMode::Lstm,
        Some("gru") => RnnMode::Gru,
        Some("rnn") => RnnMode::RnnTanh,
        other => {
            return Err(Error::tensor(
                "conformance",
                "case.cell",
                format!("unsupported cell {other:?}"),
            ))
        }
    };
    let attention = match fx.arg_str("attention") {
        Some("none") => AttentionKind::None,
        Some("bahdanau") => AttentionKind::Bahdanau,
        Some("luong_dot") => AttentionKind::LuongDot,
        Some("luong_general") => AttentionKind::LuongGeneral,
        other => {
            return Err(Error::tensor(
                "conformance",
                "case.attention",
                format!("unsupported attention {other:?}"),
            ))
        }
    };
    Ok(Seq2SeqConfig {
        cell,
        src_vocab: fx.arg_usize("src_vocab", 0),
        tgt_vocab: fx.arg_usize("tgt_vocab", 0),
        emb_dim: fx.arg_usize("emb_dim", 0),
        hidden_size: fx.arg_usize("hidden_size", 0),
        layers: fx.arg_usize("layers", 1),
        bidirectional: fx.arg_bool("bidirectional", true),
        attention,
        attn_dim: fx.arg_usize("attn_dim", 0),
        dropout: 0.0,
    })
}

pub(super) fn run(fx: &Fixture, chk: &mut Checker) -> Result<()> {
    let cfg = config(fx)?;
    let mut model = Seq2Seq::new(cfg, &mut seeded_rng(0))?;
    load_params(&mut model, |name| fx.tensor(name).ok())?;
    let src = fx.ints("src")?.1;
    let lengths: Vec<usize> = fx
        .ints("src_lengths")?
        .1
        .iter()
        .map(|&l| l as usize)
        .collect();
    let tgt_in = fx.ints("tgt_in")?.1;
    let tgt_out = fx.ints("tgt_out")?.1;
    let batch = TokenBatch {
        src: &src,
        src_lengths: &lengths,
        tgt_in: &tgt_in,
        tgt_out: &tgt_out,
    };
    let opts = TrainOptions {
        label_smoothing: fx.arg_f64("label_smoothing", 0.0) as f32,
        sampling_probability: 0.0,
    };
    let out = model.train_batch(batch, opts, &mut seeded_rng(0))?;

    // The inference path (teacher-forced, nothing saved) must give the same logits.
    let infer = model.forward(&src, &lengths, &tgt_in)?;
    if infer.data() != out.logits.data() {
        return Err(Error::tensor(
            "conformance",
            "logits",
            "inference forward differs from training forward",
        ));
    }
    chk.tensor("logits", &out.logits, Tolerance::OUTPUT)?;
    // And as decoding computes them (weights packed, keys projected once for Bahdanau).
    let packed = model.pack()?;
    let decoding = model.forward_with(Some(&packed), &src, &lengths, &tgt_in)?;
    chk.tensor("logits", &decoding, Tolerance::OUTPUT)?;
    chk.tensor(
        "loss",
        &Tensor::from_vec(&[1], vec![out.loss])?,
        Tolerance::OUTPUT,
    )?;
    chk.param_grads(model.params(), Tolerance::LONG_GRADIENT)
}
