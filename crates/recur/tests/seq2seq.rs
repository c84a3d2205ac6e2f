//! Seq2seq behaviour beyond the golden cases: search semantics on real models, and the seed
//! tasks as tests that learn.

use recur::data::tasks::{cipher_pairs, double_pairs, CipherOptions, DoubleOptions};
use recur::data::{encode_pairs, EncodeOptions, Tokenizer, Vocab};
use recur::eval::{exact_match, examples};
use recur::nn::RnnMode;
use recur::seeded_rng;
use recur::seq2seq::inference::{translate, translate_packed};
use recur::seq2seq::search::{DecodeOptions, MaxLen};
use recur::seq2seq::{AttentionKind, Seq2Seq, Seq2SeqConfig};
use recur::train::{pairs_from_strings, TrainConfig, Trainer};
use recur::transducer::DataConfig;

fn model(attention: AttentionKind, cell: RnnMode) -> Seq2Seq {
    let cfg = Seq2SeqConfig {
        cell,
        src_vocab: 12,
        tgt_vocab: 9,
        emb_dim: 8,
        hidden_size: 10,
        layers: 2,
        bidirectional: true,
        attention,
        attn_dim: 7,
        dropout: 0.0,
    };
    Seq2Seq::new(cfg, &mut seeded_rng(3)).unwrap()
}

fn sources() -> Vec<Vec<i64>> {
    vec![
        vec![4, 5, 6],
        vec![7],
        vec![8, 9, 10, 11, 4, 5],
        vec![],
        vec![6, 6, 6, 6],
        vec![11, 10],
    ]
}

const ALL: [AttentionKind; 4] = [
    AttentionKind::None,
    AttentionKind::Bahdanau,
    AttentionKind::LuongDot,
    AttentionKind::LuongGeneral,
];

#[test]
fn weights_packed_once_decode_exactly_as_packed_per_call() {
    for att in ALL {
        let m = model(att, RnnMode::Gru);
        let packed = m.pack().unwrap();
        for beam_size in [1, 3] {
            let opts = DecodeOptions {
                beam_size,
                max_len: MaxLen::Fixed(12),
                ..DecodeOptions::default()
            };
            // The same pack serves several calls with different batches.
            for srcs in [sources(), sources()[1..3].to_vec()] {
                let once = translate_packed(&m, &packed, &srcs, &opts).unwrap();
                assert_eq!(once, translate(&m, &srcs, &opts).unwrap(), "{att:?}");
            }
        }
    }
}

#[test]
fn beam_of_one_is_exactly_greedy() {
    for att in ALL {
        let m = model(att, RnnMode::Lstm);
        let greedy = translate(
            &m,
            &sources(),
            &DecodeOptions {
                beam_size: 1,
                max_len: MaxLen::Fixed(12),
                ..Default::default()
            },
        )
        .unwrap();
        let beam = recur::seq2seq::search::beam_search(
            &m,
            &mut {
                let packed = m.pack().unwrap();
                let (memory, decoder) = encode_padded(&m, &packed, &sources());
                recur::seq2seq::inference::DecodeState::new(memory, decoder, packed.decoder)
            },
            &sources().iter().map(|s| s.len()).collect::<Vec<_>>(),
            &DecodeOptions {
                beam_size: 1,
                nbest: 1,
                max_len: MaxLen::Fixed(12),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(greedy, beam, "{att:?}");
    }
}

/// Encodes `srcs` for decoding with `packed`, as `translate` does.
fn encode_padded(
    m: &Seq2Seq,
    packed: &recur::seq2seq::Seq2SeqPacked,
    srcs: &[Vec<i64>],
) -> (
    recur::seq2seq::attention::Memory,
    recur::seq2seq::decoder::DecoderState,
) {
    let b = srcs.len();
    let steps = srcs.iter().map(|s| s.len()).max().unwrap().max(1);
    let mut src = vec![0i64; steps * b];
    for (j, s) in srcs.iter().enumerate() {
        for (t, &id) in s.iter().enumerate() {
            src[t * b + j] = id;
        }
    }
    let lengths: Vec<usize> = srcs.iter().map(|s| s.len()).collect();
    m.encode_with(Some(packed), &src, &lengths).unwrap()
}

#[test]
fn results_do_not_depend_on_how_sources_are_batched() {
    for att in ALL {
        for cell in [RnnMode::Lstm, RnnMode::Gru] {
            let m = model(att, cell);
            let opts = DecodeOptions {
                beam_size: 3,
                nbest: 2,
                max_len: MaxLen::Fixed(10),
                return_attention: true,
                ..Default::default()
            };
            let together = translate(&m, &sources(), &opts).unwrap();
            for (k, s) in sources().iter().enumerate() {
                let alone = translate(&m, std::slice::from_ref(s), &opts).unwrap();
                assert_eq!(alone[0], together[k], "{att:?} {cell:?} source {k}");
            }
            let mut reversed = sources();
            reversed.reverse();
            let rev = translate(&m, &reversed, &opts).unwrap();
            for k in 0..rev.len() {
                assert_eq!(rev[k], together[rev.len() - 1 - k]);
            }
        }
    }
}

#[test]
fn empty_source_truncation_and_attention_shapes() {
    let m = model(AttentionKind::Bahdanau, RnnMode::Gru);
    let out = translate(
        &m,
        &sources(),
        &DecodeOptions {
            beam_size: 2,
            max_len: MaxLen::Fixed(3),
            return_attention: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        out[3][0].tokens.is_empty(),
        "an empty source decodes to an empty output"
    );
    for (k, s) in sources().iter().enumerate() {
        let h = &out[k][0];
        assert!(h.tokens.len() <= 3);
        assert_eq!(
            h.truncated,
            h.tokens.len() == 3,
            "hitting max_len is reported"
        );
        assert_eq!(h.attention.len(), h.tokens.len());
        assert!(
            h.attention.iter().all(|row| row.len() == s.len()),
            "attention rows cover the source"
        );
        for row in &h.attention {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
}

#[test]
fn bad_ids_are_errors_naming_the_index() {
    let m = model(AttentionKind::None, RnnMode::Lstm);
    let e = translate(&m, &[vec![4, 99]], &DecodeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("99") && e.contains("12"), "{e}");
}

/// Trains on generated pairs and returns held-out exact match.
fn learn(
    train: Vec<(String, String)>,
    test: Vec<(String, String)>,
    tok: Tokenizer,
    cfg: TrainConfig,
) -> f64 {
    let train_pairs = pairs_from_strings(&train);
    let test_pairs = pairs_from_strings(&test);
    let src_vocab = Vocab::from_sequences(train.iter().map(|p| tok.tokenize(&p.0)), 1);
    let tgt_vocab = Vocab::from_sequences(train.iter().map(|p| tok.tokenize(&p.1)), 1);
    let enc = encode_pairs(
        &train_pairs,
        (tok, tok),
        (&src_vocab, &tgt_vocab),
        &EncodeOptions::default(),
    );
    let data = DataConfig {
        src_tokens: tok,
        tgt_tokens: tok,
        ..DataConfig::default()
    };
    let dev = examples(&test_pairs[..200], &data, (&src_vocab, &tgt_vocab));
    let test_set = examples(&test_pairs[200..], &data, (&src_vocab, &tgt_vocab));
    let model_cfg = Seq2SeqConfig {
        cell: RnnMode::Lstm,
        src_vocab: src_vocab.len(),
        tgt_vocab: tgt_vocab.len(),
        emb_dim: 32,
        hidden_size: 64,
        layers: 1,
        bidirectional: true,
        attention: AttentionKind::Bahdanau,
        attn_dim: 32,
        dropout: 0.0,
    };
    let mut trainer = Trainer::new(model_cfg, cfg).unwrap();
    let mut perfect_in_a_row = 0;
    trainer
        .fit(&enc.examples, &dev, |_, ev| {
            if let recur::train::Event::Eval { dev_accuracy, .. } = ev {
                perfect_in_a_row = if *dev_accuracy >= 1.0 {
                    perfect_in_a_row + 1
                } else {
                    0
                };
            }
            Ok(perfect_in_a_row < 2)
        })
        .unwrap();
    exact_match(&trainer.model, &test_set, 3.0).unwrap()
}

/// Adam at 3e-3, halved after three dev evaluations without improvement; the caller stops
/// once the dev set is decoded perfectly twice in a row.
fn schedule() -> TrainConfig {
    TrainConfig {
        lr: 3e-3,
        epochs: 25,
        max_tokens: 1024,
        eval_every: 30,
        plateau_patience: 3,
        ..Default::default()
    }
}

fn held_out(
    train: &[(String, String)],
    candidates: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let seen: std::collections::HashSet<&String> = train.iter().map(|p| &p.0).collect();
    candidates
        .into_iter()
        .filter(|p| !seen.contains(&p.0))
        .take(500)
        .collect()
}

#[test]
fn learns_the_tutorial_cipher() {
    let opts = CipherOptions {
        min_len: 4,
        max_len: 12,
    };
    // The tutorial's task: decrypt (cipher text → plain text).
    let flip = |v: Vec<(String, String)>| v.into_iter().map(|(p, c)| (c, p)).collect::<Vec<_>>();
    let train = flip(cipher_pairs(3000, 1, &opts).unwrap());
    let test = held_out(&train, flip(cipher_pairs(1000, 2, &opts).unwrap()));
    let cfg = schedule();
    let acc = learn(train, test, Tokenizer::Chars, cfg);
    assert!(acc >= 0.99, "held-out exact match {acc}");
}

#[test]
fn learns_the_word_doubler() {
    let opts = DoubleOptions {
        min_words: 1,
        max_words: 5,
    };
    let train = double_pairs(3000, 1, &opts).unwrap();
    let test = held_out(&train, double_pairs(2000, 2, &opts).unwrap());
    let cfg = schedule();
    let acc = learn(train, test, Tokenizer::Symbols, cfg);
    assert!(acc >= 0.99, "held-out exact match {acc}");
}

/// The largest `|a - b| / (1e-5 + 1e-4 |b|)` over two equally long slices: above 1 fails the
/// fixtures' output tolerance.
fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1e-5 + 1e-4 * y.abs()));
    d.fold(0.0, f32::max)
}

/// The packed inference path (embeddings folded into the first layers' input projections,
/// weights packed once) computes the same bits as the plain one, step by step; with Bahdanau
/// attention, whose decoding sums projected keys (`Decoder::prepare_memory`) where training
/// projects the context, the same values to float rounding, and the bits again when the memory
/// is not projected. Without attention the packed path computes the encoder's final state
/// alone (the same bits), not its outputs.
#[test]
fn packed_encode_and_steps_equal_unpacked() {
    let srcs = sources();
    let b = srcs.len();
    let steps = srcs.iter().map(|s| s.len()).max().unwrap();
    let mut src = vec![0i64; steps * b];
    for (j, s) in srcs.iter().enumerate() {
        for (t, &id) in s.iter().enumerate() {
            src[t * b + j] = id;
        }
    }
    let lengths: Vec<usize> = srcs.iter().map(|s| s.len()).collect();
    for att in ALL {
        for cell in [RnnMode::Lstm, RnnMode::Gru, RnnMode::RnnTanh] {
            let m = model(att, cell);
            let packed = m.pack().unwrap();
            let train_packed = m.decoder.pack_for_training();
            let (mem, mut plain) = m.encode(&src, &lengths).unwrap();
            let (mem_p, mut fast) = m.encode_with(Some(&packed), &src, &lengths).unwrap();
            if att == AttentionKind::None {
                // Nothing attends: the packed path keeps the encoder's final state alone.
                assert!(mem_p.keys.is_empty() && !mem.keys.is_empty(), "{cell:?}");
            } else {
                assert_eq!(mem.keys, mem_p.keys, "{att:?} {cell:?}");
            }
            assert_eq!((&plain.h, &plain.c), (&fast.h, &fast.c), "{att:?} {cell:?}");
            let projected = att == AttentionKind::Bahdanau;
            assert_eq!(mem_p.has_values(), projected, "{att:?}");
            let mut exact = fast.clone();
            let mut work = recur::seq2seq::decoder::StepWork::default();
            let mut rng = seeded_rng(0);
            let mut prev = vec![1u32; b];
            for step in 0..4 {
                let at = format!("{att:?} {cell:?} step {step}");
                // The training step (no dropout here) runs the unpacked recurrence.
                let t = m
                    .decoder
                    .step_train(&train_packed, &prev, &plain, &mem, &mut rng)
                    .unwrap();
                let same = m
                    .decoder
                    .step_infer(&packed.decoder, &prev, &mut exact, &mem, &mut work)
                    .unwrap();
                assert_eq!(t.logits, same.logits, "{at}");
                let out = m
                    .decoder
                    .step_infer(&packed.decoder, &prev, &mut fast, &mem_p, &mut work)
                    .unwrap();
                let logits_diff = max_rel_diff(out.logits, &t.logits);
                plain = t.next;
                assert_eq!(
                    (&plain.h, &plain.c, &plain.feed),
                    (&exact.h, &exact.c, &exact.feed)
                );
                if projected {
                    let h = max_rel_diff(&fast.h, &plain.h).max(max_rel_diff(&fast.c, &plain.c));
                    // Within 5% of the fixtures' output tolerance (2% seen).
                    assert!(logits_diff < 0.05 && h < 0.05, "{at}: {logits_diff} {h}");
                    assert!(logits_diff > 0.0 || h > 0.0, "{at}: the projected path ran");
                } else {
                    assert_eq!(logits_diff, 0.0, "{at}");
                    assert_eq!((&fast.h, &fast.c), (&plain.h, &plain.c), "{at}");
                }
                prev = (0..b).map(|r| ((r + step) % 9) as u32).collect();
            }
        }
    }
}
