//! Recurrent-layer properties the PyTorch fixtures do not cover: an independent f64 reference
//! with finite differences, layout equivalences, batch-composition invariance, zero lengths,
//! dropout and argument validation.

use rand::{Rng, SeedableRng};
use recur::nn::{Rnn, RnnCell, RnnConfig, RnnMode, RnnState};
use recur::{seeded_rng, Module, Tensor};

fn random(shape: &[usize], rng: &mut rand_chacha::ChaCha8Rng) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()).unwrap()
}

fn modes() -> [RnnMode; 4] {
    [
        RnnMode::Lstm,
        RnnMode::Gru,
        RnnMode::RnnTanh,
        RnnMode::RnnRelu,
    ]
}

fn config(mode: RnnMode, i: usize, h: usize) -> RnnConfig {
    let mut c = RnnConfig::lstm(i, h);
    c.mode = mode;
    c
}

// ---------------------------------------------------------------------------------------------
// An independent, plain f64 implementation (one layer, one direction, full length).
// ---------------------------------------------------------------------------------------------

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Returns the outputs `[T][B][H]` of a single-layer unidirectional recurrence.
fn reference(
    mode: RnnMode,
    p: &[Vec<f64>],
    x: &[f64],
    t: usize,
    b: usize,
    i: usize,
    h: usize,
) -> Vec<f64> {
    let (w_ih, w_hh, b_ih, b_hh) = (&p[0], &p[1], &p[2], &p[3]);
    let g = mode.gates() * h;
    let mut hs = vec![0.0; b * h];
    let mut cs = vec![0.0; b * h];
    let mut out = Vec::new();
    let lin = |w: &[f64], bias: &[f64], v: &[f64], n_in: usize| -> Vec<f64> {
        (0..g)
            .map(|r| bias[r] + (0..n_in).map(|k| w[r * n_in + k] * v[k]).sum::<f64>())
            .collect()
    };
    for step in 0..t {
        for bb in 0..b {
            let xv = &x[(step * b + bb) * i..][..i];
            let hv = hs[bb * h..][..h].to_vec();
            let gi = lin(w_ih, b_ih, xv, i);
            let gh = lin(w_hh, b_hh, &hv, h);
            for j in 0..h {
                let new_h = match mode {
                    RnnMode::Lstm => {
                        let ig = sig(gi[j] + gh[j]);
                        let fg = sig(gi[h + j] + gh[h + j]);
                        let gg = (gi[2 * h + j] + gh[2 * h + j]).tanh();
                        let og = sig(gi[3 * h + j] + gh[3 * h + j]);
                        let c = fg * cs[bb * h + j] + ig * gg;
                        cs[bb * h + j] = c;
                        og * c.tanh()
                    }
                    RnnMode::Gru => {
                        let r = sig(gi[j] + gh[j]);
                        let z = sig(gi[h + j] + gh[h + j]);
                        let n = (gi[2 * h + j] + r * gh[2 * h + j]).tanh();
                        (1.0 - z) * n + z * hv[j]
                    }
                    RnnMode::RnnTanh => (gi[j] + gh[j]).tanh(),
                    RnnMode::RnnRelu => (gi[j] + gh[j]).max(0.0),
                };
                hs[bb * h + j] = new_h;
            }
        }
        out.extend_from_slice(&hs);
    }
    out
}

#[test]
fn fused_kernels_match_plain_f64_reference_forward_and_backward() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for mode in modes() {
        for &(t, b, i, h) in &[(1, 1, 1, 1), (3, 2, 4, 5), (6, 5, 3, 8), (4, 7, 9, 16)] {
            let rnn = config(mode, i, h)
                .build(&mut seeded_rng(t as u64 * 31 + h as u64))
                .unwrap();
            let params: Vec<Vec<f64>> = rnn
                .params()
                .iter()
                .map(|p| p.value.data().iter().map(|&v| v as f64).collect())
                .collect();
            let x = random(&[t, b, i], &mut rng);
            let dout = random(&[t, b, h], &mut rng);
            let x64: Vec<f64> = x.data().iter().map(|&v| v as f64).collect();

            // Forward.
            let want = reference(mode, &params, &x64, t, b, i, h);
            let mut rnn = rnn;
            let (got, cache) = rnn
                .forward_train(&x, None, None, &mut seeded_rng(0))
                .unwrap();
            for (g, w) in got.output.data().iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() <= 1e-5 + 1e-4 * w.abs(),
                    "{mode:?} forward {g} vs {w}"
                );
            }

            // Backward against central differences of the f64 reference, L = sum(out * dout).
            let grads = rnn.backward(&cache, Some(&dout), None, None).unwrap();
            let loss = |p: &[Vec<f64>], xs: &[f64]| -> f64 {
                reference(mode, p, xs, t, b, i, h)
                    .iter()
                    .zip(dout.data())
                    .map(|(o, d)| o * *d as f64)
                    .sum()
            };
            let eps = 1e-6;
            let check = |analytic: f32, plus: f64, minus: f64, what: &str| {
                let numeric = (plus - minus) / (2.0 * eps);
                assert!(
                    (analytic as f64 - numeric).abs() <= 1e-4 + 1e-3 * numeric.abs(),
                    "{mode:?} {what}: analytic {analytic} vs numeric {numeric}"
                );
            };
            for (k, p) in rnn.params().iter().enumerate() {
                for idx in [0, p.value.numel() / 2, p.value.numel() - 1] {
                    let mut pp = params.clone();
                    pp[k][idx] += eps;
                    let plus = loss(&pp, &x64);
                    pp[k][idx] -= 2.0 * eps;
                    let minus = loss(&pp, &x64);
                    check(
                        p.grad.data()[idx],
                        plus,
                        minus,
                        &format!("{}[{idx}]", p.name),
                    );
                }
            }
            for idx in [0, x64.len() / 3, x64.len() - 1] {
                let mut xp = x64.clone();
                xp[idx] += eps;
                let plus = loss(&params, &xp);
                xp[idx] -= 2.0 * eps;
                let minus = loss(&params, &xp);
                check(
                    grads.input.data()[idx],
                    plus,
                    minus,
                    &format!("input[{idx}]"),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Layout equivalences and batch-composition invariance.
// ---------------------------------------------------------------------------------------------

fn stacked(mode: RnnMode, batch_first: bool) -> Rnn {
    let mut cfg = config(mode, 6, 7)
        .num_layers(2)
        .bidirectional(true)
        .batch_first(batch_first);
    if mode == RnnMode::Lstm {
        cfg = cfg.proj_size(5);
    }
    cfg.build(&mut seeded_rng(11)).unwrap()
}

#[test]
fn batch_first_and_time_major_agree_bitwise() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for mode in modes() {
        let mut tm = stacked(mode, false);
        let mut bf = stacked(mode, true);
        let x = random(&[5, 4, 6], &mut rng);
        let lens = [5, 2, 0, 4];
        let (a, ca) = tm
            .forward_train(&x, Some(&lens), None, &mut seeded_rng(0))
            .unwrap();
        let (b, cb) = bf
            .forward_train(&x.transpose01(), Some(&lens), None, &mut seeded_rng(0))
            .unwrap();
        assert_eq!(a.output, b.output.transpose01(), "{mode:?}");
        assert_eq!(a.h_n, b.h_n);
        assert_eq!(a.c_n, b.c_n);
        let dy = random(a.output.shape(), &mut rng);
        let ga = tm.backward(&ca, Some(&dy), None, None).unwrap();
        let gb = bf
            .backward(&cb, Some(&dy.transpose01()), None, None)
            .unwrap();
        assert_eq!(ga.input, gb.input.transpose01());
        for (p, q) in tm.params().iter().zip(bf.params()) {
            assert_eq!(p.grad, q.grad, "{}", p.name);
        }
    }
}

/// Row `b` of a time-major `(T, B, F)` tensor, first `len` steps.
fn row(t: &Tensor, b: usize, len: usize) -> Vec<f32> {
    let (bsz, f) = (t.dim(1), t.dim(2));
    (0..len)
        .flat_map(|s| t.data()[(s * bsz + b) * f..][..f].to_vec())
        .collect()
}

/// Runs each sequence alone (unpadded) and inside padded batches in different orders: its
/// outputs, final states and input gradients must be bit-identical everywhere.
#[test]
fn a_sequence_gives_bit_identical_results_in_any_batch() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for mode in modes() {
        let mut rnn = stacked(mode, false);
        let (tmax, feat, out_w) = (6, 6, rnn.config().output_size());
        let lens = [6usize, 3, 1, 5, 6, 2];
        let xs: Vec<Tensor> = lens
            .iter()
            .map(|&l| random(&[l, 1, feat], &mut rng))
            .collect();
        let dys: Vec<Tensor> = lens
            .iter()
            .map(|&l| random(&[l, 1, out_w], &mut rng))
            .collect();

        // Alone, unpadded.
        let alone: Vec<_> = (0..lens.len())
            .map(|k| {
                let (o, c) = rnn
                    .forward_train(&xs[k], None, None, &mut seeded_rng(0))
                    .unwrap();
                let g = rnn.backward(&c, Some(&dys[k]), None, None).unwrap();
                (o, g)
            })
            .collect();

        for order in [vec![0, 1, 2, 3, 4, 5], vec![5, 3, 1, 0, 2, 4], vec![2, 4]] {
            let b = order.len();
            let mut x = Tensor::zeros(&[tmax, b, feat]);
            let mut dy = Tensor::zeros(&[tmax, b, out_w]);
            for (pos, &k) in order.iter().enumerate() {
                for s in 0..lens[k] {
                    x.data_mut()[(s * b + pos) * feat..][..feat]
                        .copy_from_slice(&xs[k].data()[s * feat..][..feat]);
                    dy.data_mut()[(s * b + pos) * out_w..][..out_w]
                        .copy_from_slice(&dys[k].data()[s * out_w..][..out_w]);
                }
            }
            let batch_lens: Vec<usize> = order.iter().map(|&k| lens[k]).collect();
            let (o, c) = rnn
                .forward_train(&x, Some(&batch_lens), None, &mut seeded_rng(0))
                .unwrap();
            let g = rnn.backward(&c, Some(&dy), None, None).unwrap();
            for (pos, &k) in order.iter().enumerate() {
                let (ao, ag) = &alone[k];
                assert_eq!(
                    row(&o.output, pos, lens[k]),
                    ao.output.data(),
                    "{mode:?} output of seq {k} at {pos}"
                );
                assert!(
                    row(&o.output, pos, tmax)[lens[k] * out_w..]
                        .iter()
                        .all(|&v| v == 0.0),
                    "padding must be zero"
                );
                assert_eq!(
                    row(&o.h_n, pos, o.h_n.dim(0)),
                    ao.h_n.data(),
                    "{mode:?} h_n of seq {k}"
                );
                if let (Some(cn), Some(acn)) = (&o.c_n, &ao.c_n) {
                    assert_eq!(row(cn, pos, cn.dim(0)), acn.data());
                }
                assert_eq!(
                    row(&g.input, pos, lens[k]),
                    ag.input.data(),
                    "{mode:?} grad input of seq {k}"
                );
                assert!(row(&g.input, pos, tmax)[lens[k] * feat..]
                    .iter()
                    .all(|&v| v == 0.0));
            }
        }
    }
}

#[test]
fn zero_length_sequence_keeps_its_initial_state() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    for mode in modes() {
        let mut rnn = stacked(mode, false);
        let cfg = rnn.config().clone();
        let ld = cfg.num_layers * cfg.num_directions();
        let x = random(&[4, 3, 6], &mut rng);
        let h0 = random(&[ld, 3, cfg.state_size()], &mut rng);
        let c0 = (mode == RnnMode::Lstm).then(|| random(&[ld, 3, cfg.hidden_size], &mut rng));
        let state = RnnState {
            h: h0.clone(),
            c: c0.clone(),
        };
        let (o, cache) = rnn
            .forward_train(&x, Some(&[4, 0, 2]), Some(&state), &mut seeded_rng(0))
            .unwrap();
        assert!(row(&o.output, 1, 4).iter().all(|&v| v == 0.0));
        assert_eq!(row(&o.h_n, 1, ld), row(&h0, 1, ld));
        let gh = random(o.h_n.shape(), &mut rng);
        let g = rnn.backward(&cache, None, Some(&gh), None).unwrap();
        assert_eq!(
            row(&g.h0, 1, ld),
            row(&gh, 1, ld),
            "gradient passes straight through"
        );
        assert!(row(&g.input, 1, 4).iter().all(|&v| v == 0.0));
    }
}

#[test]
fn unbatched_equals_batch_of_one() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for mode in modes() {
        let rnn = stacked(mode, false);
        let x = random(&[5, 6], &mut rng);
        let a = rnn.forward(&x, None, None).unwrap();
        let b = rnn
            .forward(&x.clone().reshape(&[5, 1, 6]).unwrap(), None, None)
            .unwrap();
        assert_eq!(a.output.data(), b.output.data());
        assert_eq!(a.output.shape(), &[5, rnn.config().output_size()]);
        assert_eq!(a.h_n.shape().len(), 2);
        assert_eq!(a.h_n.data(), b.h_n.data());
    }
}

#[test]
fn thread_count_does_not_change_results() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let x = random(&[7, 9, 6], &mut rng);
    let lens = [7, 7, 1, 3, 6, 0, 5, 7, 2];
    let mut results = Vec::new();
    for threads in [1, 2] {
        recur::gemm::set_num_threads(threads);
        let mut rnn = stacked(RnnMode::Lstm, false);
        let (o, c) = rnn
            .forward_train(&x, Some(&lens), None, &mut seeded_rng(0))
            .unwrap();
        let dy = Tensor::full(o.output.shape(), 0.5);
        let g = rnn.backward(&c, Some(&dy), None, None).unwrap();
        results.push((o, g));
    }
    recur::gemm::set_num_threads(0);
    assert_eq!(results[0], results[1]);
}

/// A few rows on two threads take the sharded sweep (hidden units split among the threads):
/// packed inference, from features and from tabulated tokens, gives the bits of one thread.
#[test]
fn packed_inference_of_a_few_rows_does_not_depend_on_threads() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for mode in modes() {
        let rnn = config(mode, 16, 256)
            .num_layers(2)
            .build(&mut seeded_rng(5))
            .unwrap();
        let packed = rnn.pack();
        let embedding = random(&[9, 16], &mut rng);
        let tabled = rnn.pack_embedded(&embedding).unwrap();
        for lens in [vec![6], vec![3, 6, 6, 1]] {
            let b = lens.len();
            let x = random(&[6, b, 16], &mut rng);
            let ids: Vec<i64> = (0..6 * b).map(|_| rng.gen_range(0..9)).collect();
            let mut results = Vec::new();
            for threads in [1, 2] {
                recur::gemm::set_num_threads(threads);
                let from_x = rnn.forward_packed(&packed, &x, Some(&lens), None).unwrap();
                let from_ids = rnn
                    .forward_tokens_packed(&tabled, &ids, (6, b), Some(&lens), None)
                    .unwrap();
                results.push((from_x, from_ids));
            }
            recur::gemm::set_num_threads(0);
            assert!(results[0] == results[1], "{mode:?} {lens:?}");
        }
    }
}

/// Callers that share one packed model from several threads contend for the thread team: one
/// takes the sharded sweep, the others the plain one. Every result keeps the bits.
#[test]
fn concurrent_callers_of_a_sharded_sweep_get_the_same_bits() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let rnn = config(RnnMode::Lstm, 16, 256)
        .build(&mut seeded_rng(6))
        .unwrap();
    let packed = rnn.pack();
    let x = random(&[9, 1, 16], &mut rng);
    let expected =
        recur::gemm::with_threads(1, || rnn.forward_packed(&packed, &x, None, None)).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..200 {
                    let got = recur::gemm::with_threads(2, || {
                        rnn.forward_packed(&packed, &x, None, None)
                    })
                    .unwrap();
                    assert!(got == expected);
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Dropout between layers.
// ---------------------------------------------------------------------------------------------

#[test]
fn dropout_only_between_layers_and_only_in_training() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let x = random(&[5, 3, 4], &mut rng);
    let plain = RnnConfig::lstm(4, 6)
        .num_layers(2)
        .build(&mut seeded_rng(1))
        .unwrap();
    let dropped = RnnConfig::lstm(4, 6)
        .num_layers(2)
        .dropout(0.5)
        .build(&mut seeded_rng(1))
        .unwrap();
    // Evaluation: identical to no dropout.
    assert_eq!(
        plain.forward(&x, None, None).unwrap(),
        dropped.forward(&x, None, None).unwrap()
    );
    // Training: different, and reproducible from the seed.
    let (a, _) = dropped
        .forward_train(&x, None, None, &mut seeded_rng(5))
        .unwrap();
    let (b, _) = dropped
        .forward_train(&x, None, None, &mut seeded_rng(5))
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a.output, plain.forward(&x, None, None).unwrap().output);
    // A single layer has nothing to drop between.
    let one = RnnConfig::gru(4, 6)
        .dropout(0.9)
        .build(&mut seeded_rng(1))
        .unwrap();
    let (t, _) = one
        .forward_train(&x, None, None, &mut seeded_rng(5))
        .unwrap();
    assert_eq!(t, one.forward(&x, None, None).unwrap());
}

#[test]
fn dropout_backward_matches_finite_differences() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
    let x = random(&[4, 2, 3], &mut rng);
    let mut rnn = RnnConfig::gru(3, 5)
        .num_layers(3)
        .dropout(0.4)
        .build(&mut seeded_rng(2))
        .unwrap();
    let dy = random(&[4, 2, 5], &mut rng);
    let loss = |rnn: &Rnn, x: &Tensor| -> f64 {
        let (o, _) = rnn
            .forward_train(x, None, None, &mut seeded_rng(8))
            .unwrap();
        o.output.dot(&dy)
    };
    let (_, cache) = rnn
        .forward_train(&x, None, None, &mut seeded_rng(8))
        .unwrap();
    let g = rnn.backward(&cache, Some(&dy), None, None).unwrap();
    let eps = 1e-2f32;
    for idx in 0..x.numel() {
        let mut xp = x.clone();
        xp.data_mut()[idx] += eps;
        let plus = loss(&rnn, &xp);
        xp.data_mut()[idx] -= 2.0 * eps;
        let minus = loss(&rnn, &xp);
        let numeric = (plus - minus) / (2.0 * eps as f64);
        let analytic = g.input.data()[idx] as f64;
        assert!(
            (analytic - numeric).abs() <= 2e-3 + 2e-2 * numeric.abs(),
            "input[{idx}]: {analytic} vs {numeric}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Validation: errors, never panics, naming the operation, the expectation and the value.
// ---------------------------------------------------------------------------------------------

fn err_text<T: std::fmt::Debug>(r: recur::Result<T>) -> String {
    r.expect_err("should be an error").to_string()
}

#[test]
fn invalid_arguments_are_errors_that_say_what_was_expected() {
    let mut rng = seeded_rng(0);
    let e = err_text(RnnConfig::lstm(3, 4).dropout(1.5).build(&mut rng));
    assert!(
        e.contains("dropout") && e.contains("[0, 1]") && e.contains("1.5"),
        "{e}"
    );
    let e = err_text(RnnConfig::lstm(3, 4).proj_size(4).build(&mut rng));
    assert!(
        e.contains("proj_size") && e.contains("< hidden_size (4)"),
        "{e}"
    );
    let e = err_text(RnnConfig::gru(3, 4).proj_size(2).build(&mut rng));
    assert!(e.contains("LSTM-only"), "{e}");
    let e = err_text(RnnConfig::rnn(3, 4).num_layers(0).build(&mut rng));
    assert!(e.contains("num_layers"), "{e}");

    let rnn = RnnConfig::lstm(3, 4).num_layers(2).build(&mut rng).unwrap();
    let e = err_text(rnn.forward(&Tensor::zeros(&[2, 3, 4, 5]), None, None));
    assert!(
        e.contains("RNN.forward") && e.contains("(2, 3, 4, 5)"),
        "{e}"
    );
    let e = err_text(rnn.forward(&Tensor::zeros(&[5, 2, 7]), None, None));
    assert!(e.contains("input feature size 3") && e.contains('7'), "{e}");
    let e = err_text(rnn.forward(&Tensor::zeros(&[5, 2, 3]), Some(&[5, 6]), None));
    assert!(
        e.contains("lengths[1] = 6") && e.contains("<= sequence length 5"),
        "{e}"
    );
    let e = err_text(rnn.forward(&Tensor::zeros(&[5, 2, 3]), Some(&[5]), None));
    assert!(e.contains("2 lengths"), "{e}");
    let bad_h = RnnState {
        h: Tensor::zeros(&[1, 2, 4]),
        c: None,
    };
    let e = err_text(rnn.forward(&Tensor::zeros(&[5, 2, 3]), None, Some(&bad_h)));
    assert!(
        e.contains("h0 of shape (2, 2, 4)") && e.contains("(1, 2, 4)"),
        "{e}"
    );
    let bad_c = RnnState {
        h: Tensor::zeros(&[2, 2, 4]),
        c: Some(Tensor::zeros(&[2, 3, 4])),
    };
    let e = err_text(rnn.forward(&Tensor::zeros(&[5, 2, 3]), None, Some(&bad_c)));
    assert!(e.contains("c0 of shape (2, 2, 4)"), "{e}");
    let gru = RnnConfig::gru(3, 4).build(&mut rng).unwrap();
    let e = err_text(gru.forward(
        &Tensor::zeros(&[5, 2, 3]),
        None,
        Some(&RnnState {
            h: Tensor::zeros(&[1, 2, 4]),
            c: Some(Tensor::zeros(&[1, 2, 4])),
        }),
    ));
    assert!(
        e.contains("c0") && e.contains("GRU has no cell state"),
        "{e}"
    );
    let cell = RnnCell::new(RnnMode::Gru, 3, 4, true, &mut rng).unwrap();
    let e = err_text(cell.forward(&Tensor::zeros(&[2, 2, 3]), None, None));
    assert!(e.contains("RNNCell"), "{e}");
}

#[test]
fn parameter_names_and_shapes_follow_pytorch() {
    let rnn = RnnConfig::lstm(10, 20)
        .num_layers(2)
        .bidirectional(true)
        .proj_size(5)
        .build(&mut seeded_rng(0))
        .unwrap();
    let names: Vec<(String, Vec<usize>)> = rnn
        .params()
        .iter()
        .map(|p| (p.name.clone(), p.value.shape().to_vec()))
        .collect();
    let want = [
        ("weight_ih_l0", vec![80, 10]),
        ("weight_hh_l0", vec![80, 5]),
        ("bias_ih_l0", vec![80]),
        ("bias_hh_l0", vec![80]),
        ("weight_hr_l0", vec![5, 20]),
        ("weight_ih_l0_reverse", vec![80, 10]),
        ("weight_hh_l0_reverse", vec![80, 5]),
        ("bias_ih_l0_reverse", vec![80]),
        ("bias_hh_l0_reverse", vec![80]),
        ("weight_hr_l0_reverse", vec![5, 20]),
        ("weight_ih_l1", vec![80, 10]),
    ];
    for (k, (n, s)) in want.iter().enumerate() {
        assert_eq!((&names[k].0[..], &names[k].1), (*n, s));
    }
    assert_eq!(names.len(), 20);
    // Default init: U(-1/sqrt(H), 1/sqrt(H)).
    let bound = 1.0 / 20f32.sqrt();
    assert!(rnn
        .params()
        .iter()
        .all(|p| p.value.data().iter().all(|v| v.abs() <= bound)));
    let cell = RnnCell::new(RnnMode::Gru, 3, 4, true, &mut seeded_rng(0)).unwrap();
    let names: Vec<&str> = cell.params().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]);
}

#[test]
fn packed_weights_give_bit_identical_results() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    for mode in modes() {
        let rnn = stacked(mode, false);
        let packed = rnn.pack();
        for &(t, b) in &[(1, 1), (1, 7), (5, 3)] {
            let x = random(&[t, b, 6], &mut rng);
            let lens: Vec<usize> = (0..b).map(|i| (i + 1).min(t)).collect();
            assert_eq!(
                rnn.forward(&x, Some(&lens), None).unwrap(),
                rnn.forward_packed(&packed, &x, Some(&lens), None).unwrap(),
                "{mode:?}"
            );
        }
    }
}

#[test]
fn tokens_through_a_packed_embedding_equal_embedding_then_forward() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
    let vocab = 9;
    for mode in modes() {
        let rnn = stacked(mode, false);
        let table = random(&[vocab, 6], &mut rng); // an embedding's weight (V, I)
        let packed = rnn.pack_embedded(&table).unwrap();
        for &(t, b) in &[(1, 1), (1, 7), (5, 3)] {
            let ids: Vec<i64> = (0..t * b).map(|_| rng.gen_range(0..vocab as i64)).collect();
            let rows: Vec<f32> = ids
                .iter()
                .flat_map(|&i| table.data()[i as usize * 6..][..6].to_vec())
                .collect();
            let x = Tensor::from_vec(&[t, b, 6], rows).unwrap();
            let lens: Vec<usize> = (0..b).map(|i| (i + 1).min(t)).collect();
            let state = RnnState {
                h: random(&[4, b, rnn.config().state_size()], &mut rng),
                c: (mode == RnnMode::Lstm).then(|| random(&[4, b, 7], &mut rng)),
            };
            assert_eq!(
                rnn.forward(&x, Some(&lens), Some(&state)).unwrap(),
                rnn.forward_tokens_packed(&packed, &ids, (t, b), Some(&lens), Some(&state))
                    .unwrap(),
                "{mode:?} t={t} b={b}"
            );
        }
    }
    // Ids outside the table, a wrong count, or weights packed without a table are errors.
    let rnn = stacked(RnnMode::Gru, false);
    let packed = rnn.pack_embedded(&random(&[vocab, 6], &mut rng)).unwrap();
    let bad = rnn.forward_tokens_packed(&packed, &[0, 9], (1, 2), None, None);
    assert!(err_text(bad).contains("in 0..9"));
    let short = rnn.forward_tokens_packed(&packed, &[0], (1, 2), None, None);
    assert!(err_text(short).contains("2 ids"));
    let plain = rnn.forward_tokens_packed(&rnn.pack(), &[0, 1], (1, 2), None, None);
    assert!(err_text(plain).contains("pack_embedded"));
    let wide = rnn.pack_embedded(&random(&[vocab, 5], &mut rng));
    assert!(err_text(wide).contains("(V, 6)"));
}

#[test]
fn training_with_weights_packed_once_gives_bit_identical_results() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    for mode in modes() {
        let mut plain = stacked(mode, false);
        let mut fast = plain.clone();
        let packed = fast.pack_for_training();
        // Several calls with one pack, as a decoder's steps use it.
        for &(t, b) in &[(1, 3), (1, 3), (4, 2)] {
            let x = random(&[t, b, 6], &mut rng);
            let lens: Vec<usize> = (0..b).map(|i| (i + 1).min(t)).collect();
            let dout = random(&[t, b, 2 * plain.config().state_size()], &mut rng);
            let (o1, c1) = plain
                .forward_train(&x, Some(&lens), None, &mut seeded_rng(5))
                .unwrap();
            let (o2, c2) = fast
                .forward_train_with(Some(&packed), &x, Some(&lens), None, &mut seeded_rng(5))
                .unwrap();
            assert_eq!(o1, o2, "{mode:?}");
            let g1 = plain.backward(&c1, Some(&dout), None, None).unwrap();
            let g2 = fast
                .backward_with(Some(&packed), &c2, Some(&dout), None, None)
                .unwrap();
            assert_eq!(g1, g2, "{mode:?}");
        }
        for (p, q) in plain.params().iter().zip(fast.params()) {
            assert_eq!(p.grad, q.grad, "{mode:?} {}", p.name);
        }
    }
}
