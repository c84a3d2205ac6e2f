//! Import of g2p-en 2.1.0's `checkpoint20.npz` (Apache-2.0, PyPI package `g2p_en`).
//!
//! The model is a GRU encoder-decoder without attention, 256-wide embeddings and states:
//! `predict(word)` encodes the word's characters followed by `</s>` (a character outside a–z
//! becomes `<unk>`; `predict` does not lowercase), starts the decoder from the encoder's final
//! state with `<s>`, and decodes greedily (`logits = fc(h)`) until `</s>`, at most 20 steps.
//! Its GRU is `torch.nn.GRU`'s (gates r, z, n; `b_hn` inside the `r` product), so the arrays
//! load 1:1 into recur's GRU. Only the vocabularies differ: recur's specials have fixed ids
//! (PAD 0, BOS 1, EOS 2, UNK 3), so embedding rows and output rows are permuted to them.
//!
//! The resulting [`Transducer`] sets `[data] src_eos = true` and `[decode] beam = 1,
//! max_len = 20`, so `recur translate` reproduces `predict` exactly.

use std::collections::HashMap;
use std::path::Path;

use super::read_npz;
use recur::data::{Tokenizer, Vocab};
use recur::error::{Error, Result};
use recur::module::load_params;
use recur::nn::RnnMode;
use recur::seq2seq::{AttentionKind, Seq2SeqConfig};
use recur::tensor::{fmt_shape, Tensor};
use recur::transducer::{DataConfig, DecodeConfig, RunConfig, Transducer};

/// g2p_en's graphemes, by its ids.
pub const GRAPHEMES: [&str; 29] = [
    "<pad>", "<unk>", "</s>", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n",
    "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z",
];

/// g2p_en's phonemes, by its ids.
pub const PHONEMES: [&str; 74] = [
    "<pad>", "<unk>", "<s>", "</s>", "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2",
    "AO0", "AO1", "AO2", "AW0", "AW1", "AW2", "AY0", "AY1", "AY2", "B", "CH", "D", "DH", "EH0",
    "EH1", "EH2", "ER0", "ER1", "ER2", "EY0", "EY1", "EY2", "F", "G", "HH", "IH0", "IH1", "IH2",
    "IY0", "IY1", "IY2", "JH", "K", "L", "M", "N", "NG", "OW0", "OW1", "OW2", "OY0", "OY1", "OY2",
    "P", "R", "S", "SH", "T", "TH", "UH0", "UH1", "UH2", "UW", "UW0", "UW1", "UW2", "V", "W", "Y",
    "Z", "ZH",
];

/// Embedding and hidden size.
const DIM: usize = 256;
/// g2p_en's decoding limit (`for i in range(20)`).
const MAX_STEPS: usize = 20;

/// The checkpoint's arrays and the recur parameters they become.
const ARRAYS: [(&str, &str); 12] = [
    ("enc_emb", "encoder.embedding.weight"),
    ("enc_w_ih", "encoder.rnn.weight_ih_l0"),
    ("enc_w_hh", "encoder.rnn.weight_hh_l0"),
    ("enc_b_ih", "encoder.rnn.bias_ih_l0"),
    ("enc_b_hh", "encoder.rnn.bias_hh_l0"),
    ("dec_emb", "decoder.embedding.weight"),
    ("dec_w_ih", "decoder.rnn.weight_ih_l0"),
    ("dec_w_hh", "decoder.rnn.weight_hh_l0"),
    ("dec_b_ih", "decoder.rnn.bias_ih_l0"),
    ("dec_b_hh", "decoder.rnn.bias_hh_l0"),
    ("fc_w", "decoder.out.weight"),
    ("fc_b", "decoder.out.bias"),
];

/// The shape g2p_en 2.1.0 has for an array of [`ARRAYS`].
fn expected_shape(name: &str) -> Vec<usize> {
    match name {
        "enc_emb" => vec![GRAPHEMES.len(), DIM],
        "dec_emb" | "fc_w" => vec![PHONEMES.len(), DIM],
        "fc_b" => vec![PHONEMES.len()],
        n if n.ends_with("_w_ih") || n.ends_with("_w_hh") => vec![3 * DIM, DIM],
        _ => vec![3 * DIM],
    }
}

/// A recur vocabulary with the specials, then `symbols` minus g2p_en's specials, in order;
/// and for each recur id the g2p_en row it takes (`None`: a special g2p_en lacks).
fn vocab_and_rows(symbols: &[&str]) -> (Vocab, Vec<Option<usize>>) {
    // g2p_en spells its specials `<pad>`, `<unk>`, `<s>`, `</s>` as recur does.
    let mut tokens: Vec<String> = recur::data::vocab::SPECIALS
        .iter()
        .map(|s| s.to_string())
        .collect();
    tokens.extend(
        symbols
            .iter()
            .filter(|s| !recur::data::vocab::SPECIALS.contains(s))
            .map(|s| s.to_string()),
    );
    let rows = tokens
        .iter()
        .map(|t| symbols.iter().position(|s| s == t))
        .collect();
    let vocab = Vocab::from_tokens(tokens).expect("fixed, distinct symbols");
    (vocab, rows)
}

/// Rows of a (N, ...) tensor picked by `rows` (zeros where `None`).
fn permute_rows(t: &Tensor, rows: &[Option<usize>]) -> Result<Tensor> {
    let width: usize = t.shape()[1..].iter().product();
    let mut data = Vec::with_capacity(rows.len() * width);
    for r in rows {
        match r {
            Some(r) => data.extend_from_slice(&t.data()[r * width..][..width]),
            None => data.extend(std::iter::repeat_n(0.0, width)),
        }
    }
    let mut shape = t.shape().to_vec();
    shape[0] = rows.len();
    Tensor::from_vec(&shape, data)
}

/// Converts g2p_en's `checkpoint20.npz` into a [`Transducer`] (save it with
/// [`Transducer::save`]). A missing, unexpected or wrongly shaped array is an error naming it.
pub fn import(npz: impl AsRef<Path>) -> Result<Transducer> {
    let path = npz.as_ref();
    let mut arrays = read_npz(path)?;
    let bad = |msg: String| Error::Parse {
        path: path.to_path_buf(),
        line: None,
        msg,
    };
    let missing: Vec<&str> = ARRAYS
        .iter()
        .map(|a| a.0)
        .filter(|n| !arrays.contains_key(*n))
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "not a g2p_en checkpoint: missing array(s) {}",
            missing.join(", ")
        )));
    }
    let extra: Vec<&str> = arrays
        .keys()
        .map(String::as_str)
        .filter(|n| !ARRAYS.iter().any(|a| a.0 == *n))
        .collect();
    if !extra.is_empty() {
        return Err(bad(format!(
            "not a g2p_en checkpoint: unexpected array(s) {}",
            extra.join(", ")
        )));
    }
    for (name, _) in ARRAYS {
        let (got, want) = (arrays[name].shape(), expected_shape(name));
        if got != want.as_slice() {
            return Err(bad(format!(
                "array {name} has shape {}, expected {}",
                fmt_shape(got),
                fmt_shape(&want)
            )));
        }
    }

    let (src_vocab, src_rows) = vocab_and_rows(&GRAPHEMES);
    let (tgt_vocab, tgt_rows) = vocab_and_rows(&PHONEMES);
    let mut params: HashMap<&str, Tensor> = HashMap::new();
    for (name, param) in ARRAYS {
        let t = arrays.remove(name).expect("checked above");
        let t = match name {
            "enc_emb" => permute_rows(&t, &src_rows)?,
            "dec_emb" | "fc_w" | "fc_b" => permute_rows(&t, &tgt_rows)?,
            _ => t,
        };
        params.insert(param, t);
    }

    let config = RunConfig {
        data: DataConfig {
            src_tokens: Tokenizer::Chars,
            tgt_tokens: Tokenizer::Symbols,
            src_eos: true,
            ..DataConfig::default()
        },
        model: Seq2SeqConfig {
            cell: RnnMode::Gru,
            emb_dim: DIM,
            hidden_size: DIM,
            layers: 1,
            bidirectional: false,
            attention: AttentionKind::None,
            dropout: 0.0,
            ..Seq2SeqConfig::default()
        },
        decode: DecodeConfig {
            beam: Some(1),
            max_len: Some(MAX_STEPS),
            ..DecodeConfig::default()
        },
        ..RunConfig::default()
    };
    let mut t = Transducer::new(config, src_vocab, tgt_vocab)?;
    load_params(&mut t.model, |n| params.remove(n))?;
    Ok(t)
}
