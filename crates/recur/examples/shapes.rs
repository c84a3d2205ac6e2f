//! The tutorials' tensor shapes, computed by recur and checked: `cargo run --example shapes`.

use recur::nn::embedding::Embedding;
use recur::nn::linear::Linear;
use recur::nn::{RnnConfig, RnnState};
use recur::seq2seq::encoder::bridge;
use recur::tensor::fmt_shape;
use recur::{seeded_rng, Tensor};

/// Prints `what: shape` and checks it against the expected shape.
fn show(what: &str, t: &Tensor, want: &[usize]) {
    println!("  {what:<8} {}", fmt_shape(t.shape()));
    assert_eq!(t.shape(), want, "{what}");
}

fn main() -> recur::Result<()> {
    let mut rng = seeded_rng(0);

    println!("LSTM(10, 20, num_layers=2, bidirectional=True) on (5, 3, 10)");
    let lstm = RnnConfig::lstm(10, 20)
        .num_layers(2)
        .bidirectional(true)
        .build(&mut rng)?;
    let out = lstm.forward(&Tensor::zeros(&[5, 3, 10]), None, None)?;
    show("output", &out.output, &[5, 3, 40]);
    show("h_n", &out.h_n, &[4, 3, 20]);
    show("c_n", out.c_n.as_ref().unwrap(), &[4, 3, 20]);

    println!("  decoder LSTM(8, 40, num_layers=2) initialised from the encoder's final states,");
    println!("  forward and backward halves concatenated per layer:");
    let h0 = bridge(&out.h_n, 2, 2);
    let c0 = bridge(out.c_n.as_ref().unwrap(), 2, 2);
    show("h0", &h0, &[2, 3, 40]);
    show("c0", &c0, &[2, 3, 40]);
    let decoder = RnnConfig::lstm(8, 40).num_layers(2).build(&mut rng)?;
    let dec = decoder.forward(
        &Tensor::zeros(&[1, 3, 8]),
        None,
        Some(&RnnState { h: h0, c: Some(c0) }),
    )?;
    show("output", &dec.output, &[1, 3, 40]);

    println!("LSTM(5, 15, num_layers=2, dropout=0.5) on (4, 6, 5)");
    let lstm = RnnConfig::lstm(5, 15)
        .num_layers(2)
        .dropout(0.5)
        .build(&mut rng)?;
    let out = lstm.forward(&Tensor::zeros(&[4, 6, 5]), None, None)?;
    show("output", &out.output, &[4, 6, 15]);
    show("h_n", &out.h_n, &[2, 6, 15]);

    println!("GRU(5, 15) on (4, 6, 5)");
    let gru = RnnConfig::gru(5, 15).build(&mut rng)?;
    let out = gru.forward(&Tensor::zeros(&[4, 6, 5]), None, None)?;
    show("output", &out.output, &[4, 6, 15]);
    show("h_n", &out.h_n, &[1, 6, 15]);

    println!("RNN(3, 5) on (2, 2, 3)");
    let rnn = RnnConfig::rnn(3, 5).build(&mut rng)?;
    let out = rnn.forward(&Tensor::zeros(&[2, 2, 3]), None, None)?;
    show("output", &out.output, &[2, 2, 5]);
    show("h_n", &out.h_n, &[1, 2, 5]);

    println!("Embedding(5, 20) on (5, 4) token ids");
    let emb = Embedding::new(5, 20, None, &mut rng)?;
    let ids: Vec<i64> = (0..20).map(|i| i % 5).collect();
    show("output", &emb.forward(&ids, &[5, 4])?, &[5, 4, 20]);

    println!("Linear(5, 15) on (4, 6, 5)");
    let lin = Linear::new(5, 15, true, &mut rng);
    show(
        "output",
        &lin.forward(&Tensor::zeros(&[4, 6, 5]))?,
        &[4, 6, 15],
    );

    println!("every shape checked");
    Ok(())
}
