//! Packed weights remember the parameter values they were packed from: after a parameter update
//! (an optimizer step), using weights packed before it is an error, at every level.

use std::sync::Arc;

use recur::nn::{RnnConfig, RnnMode, RnnScratch, StepInput};
use recur::optim::{Adam, AdamConfig, Optimizer};
use recur::seq2seq::decoder::StepWork;
use recur::seq2seq::inference::{translate_packed, DecodeState};
use recur::seq2seq::search::{greedy, DecodeOptions, MaxLen};
use recur::seq2seq::{AttentionKind, Seq2Seq, Seq2SeqConfig};
use recur::{seeded_rng, Error, Module, Tensor};

fn model(attention: AttentionKind) -> Seq2Seq {
    let cfg = Seq2SeqConfig {
        cell: RnnMode::Lstm,
        src_vocab: 11,
        tgt_vocab: 13,
        emb_dim: 6,
        hidden_size: 5,
        layers: 1,
        bidirectional: true,
        attention,
        attn_dim: 7,
        dropout: 0.0,
    };
    Seq2Seq::new(cfg, &mut seeded_rng(5)).unwrap()
}

/// One Adam step on every parameter with a nonzero gradient.
fn update<M: Module>(m: &mut M) {
    for p in m.params_mut() {
        p.grad.data_mut().fill(0.1);
    }
    let mut opt = Adam::new(AdamConfig::default()).unwrap();
    opt.step(&mut m.params_mut()).unwrap();
}

fn is_stale(e: Error) -> bool {
    e.to_string().contains("stale")
}

#[test]
fn stale_packed_weights_are_errors() {
    let srcs = vec![vec![4, 5, 6], vec![7, 8]];
    let opts = DecodeOptions {
        beam_size: 2,
        max_len: MaxLen::Fixed(5),
        ..DecodeOptions::default()
    };
    for att in [
        AttentionKind::None,
        AttentionKind::Bahdanau,
        AttentionKind::LuongGeneral,
    ] {
        let mut m = model(att);
        let packed = m.pack().unwrap();
        let (mem, mut state) = m
            .encode_with(Some(&packed), &[4, 7, 5, 8, 6, 0], &[3, 2])
            .unwrap();
        assert!(translate_packed(&m, &packed, &srcs, &opts).is_ok());
        let train_packed = m.decoder.pack_for_training();

        update(&mut m);

        // The whole model's pack: encoding and translating.
        let e = translate_packed(&m, &packed, &srcs, &opts).unwrap_err();
        assert!(is_stale(e), "{att:?}");
        let e = m
            .encode_with(Some(&packed), &[4, 7, 5, 8, 6, 0], &[3, 2])
            .unwrap_err();
        assert!(is_stale(e), "{att:?}");
        // The decoder's: a decoding step, a training step, a search over a state holding it.
        let mut work = StepWork::default();
        let e = m
            .decoder
            .step_infer(&packed.decoder, &[1, 1], &mut state, &mem, &mut work)
            .unwrap_err();
        assert!(is_stale(e), "{att:?}");
        let e = m
            .decoder
            .step_train(&train_packed, &[1, 1], &state, &mem, &mut seeded_rng(0))
            .unwrap_err();
        assert!(is_stale(e), "{att:?}");
        let mut st = DecodeState::new(mem.clone(), state.clone(), Arc::clone(&packed.decoder));
        assert!(greedy(&m, &mut st, &[3, 2], &opts).is_err());

        // Packing again gives usable weights.
        let fresh = m.pack().unwrap();
        assert!(translate_packed(&m, &fresh, &srcs, &opts).is_ok());
    }
}

#[test]
fn stale_rnn_packs_are_errors() {
    let mut rnn = RnnConfig::lstm(3, 4)
        .num_layers(2)
        .build(&mut seeded_rng(1))
        .unwrap();
    let packed = rnn.pack();
    let x = Tensor::from_vec(&[1, 2, 3], vec![0.5; 6]).unwrap();
    assert!(rnn.forward_packed(&packed, &x, None, None).is_ok());
    update(&mut rnn);
    let e = rnn.forward_packed(&packed, &x, None, None).unwrap_err();
    assert!(is_stale(e));
    let (mut h, mut c) = (vec![0.0; 2 * 2 * 4], vec![0.0; 2 * 2 * 4]);
    let input = StepInput::Features(&x.data()[..6]);
    let mut scratch = RnnScratch::default();
    let e = rnn
        .step_packed(&packed, input, 2, &mut h, &mut c, &mut scratch)
        .unwrap_err();
    assert!(is_stale(e));
    let fresh = rnn.pack();
    assert!(rnn
        .step_packed(&fresh, input, 2, &mut h, &mut c, &mut scratch)
        .is_ok());
}
