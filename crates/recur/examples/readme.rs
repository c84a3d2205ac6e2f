//! The README's library example, compiled and run by CI:
//! `cargo run -p recur --features bundled-models --example readme`.

use recur::nn::RnnConfig;
use recur::seq2seq::search::DecodeOptions;
use recur::transducer::Transducer;
use recur::{seeded_rng, Module, Tensor};

fn main() -> recur::Result<()> {
    // A shipped model by name (or a model directory, or a training run's output).
    let model = Transducer::load("hi-translit")?;
    let opts = DecodeOptions {
        beam_size: 4,
        nbest: 2,
        ..Default::default()
    };
    for (word, outputs) in ["ghar", "kitaab"]
        .iter()
        .zip(model.translate(&["ghar", "kitaab"], &opts)?)
    {
        for o in outputs {
            println!("{word} → {} (log p = {:.3})", o.text, o.log_prob);
        }
    }

    // nn.LSTM(10, 20, num_layers=2, bidirectional=True), PyTorch's names and shapes.
    let mut rng = seeded_rng(0);
    let mut lstm = RnnConfig::lstm(10, 20)
        .num_layers(2)
        .bidirectional(true)
        .build(&mut rng)?;
    let x = Tensor::zeros(&[5, 3, 10]); // (seq, batch, feature)
    let out = lstm.forward(&x, Some(&[5, 2, 0]), None)?; // lengths: packed semantics
    assert_eq!(out.output.shape(), &[5, 3, 40]); // (seq, batch, 2 * hidden)
    assert_eq!(out.h_n.shape(), &[4, 3, 20]); // (layers * directions, batch, hidden)

    // Training: forward_train keeps what backward needs; backward adds into every grad.
    let (out, cache) = lstm.forward_train(&x, None, None, &mut rng)?;
    let dy = Tensor::full(out.output.shape(), 1.0); // d sum(output) / d output
    lstm.backward(&cache, Some(&dy), None, None)?;
    for p in lstm.params().iter().take(2) {
        println!("{} {:?}", p.name, p.value.shape()); // weight_ih_l0 [80, 10], ...
    }
    Ok(())
}
