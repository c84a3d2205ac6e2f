//! The layers behind `recur.nn`: arrays cross the boundary as `(shape, bytes)` pairs of
//! little-endian float32 (int64 for embedding ids), so that this module needs no numpy C API
//! (the Python side turns them into numpy arrays without a copy; see `recur/nn.py`).
//!
//! Forward passes are inference passes (PyTorch's `eval()` mode: no dropout) and run with the
//! GIL released.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};
use recur::module::{load_params, seeded_rng, Module};
use recur::nn::{Embedding, Linear, Rnn, RnnCell, RnnConfig, RnnMode, RnnState};
use recur::tensor::fmt_shape;
use recur::Tensor;

use crate::value_error;

/// An array from Python: its shape and its raw little-endian bytes.
type RawArray<'py> = (Vec<usize>, Bound<'py, PyBytes>);

/// An array for Python: its shape and a writable buffer numpy wraps without copying.
type OutArray<'py> = (Vec<usize>, Bound<'py, PyByteArray>);

/// One `state_dict` entry: `(name, shape, bytes)`.
type StateEntry<'py> = (String, Vec<usize>, Bound<'py, PyBytes>);

/// The number of elements of `shape`, or an error if it overflows.
fn element_count(what: &str, shape: &[usize]) -> PyResult<usize> {
    let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    n.ok_or_else(|| value_error(format!("{what}: shape {} is too large", fmt_shape(shape))))
}

/// Decodes `width`-byte little-endian elements, checking the byte count against the shape.
fn elements<T>(
    what: &str,
    shape: &[usize],
    bytes: &[u8],
    width: usize,
    decode: impl Fn(&[u8]) -> T,
) -> PyResult<Vec<T>> {
    let n = element_count(what, shape)?;
    if n.checked_mul(width) != Some(bytes.len()) {
        let msg = format!(
            "{what}: {} bytes do not hold shape {} of {width}-byte elements",
            bytes.len(),
            fmt_shape(shape)
        );
        return Err(value_error(msg));
    }
    Ok(bytes.chunks_exact(width).map(decode).collect())
}

fn to_tensor(what: &str, (shape, bytes): &RawArray<'_>) -> PyResult<Tensor> {
    let data = elements(what, shape, bytes.as_bytes(), 4, |b| {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    })?;
    Tensor::from_vec(shape, data).map_err(value_error)
}

fn to_ids(what: &str, (shape, bytes): &RawArray<'_>) -> PyResult<Vec<i64>> {
    elements(what, shape, bytes.as_bytes(), 8, |b| {
        i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    })
}

fn opt_tensor(what: &str, raw: Option<&RawArray<'_>>) -> PyResult<Option<Tensor>> {
    raw.map(|r| to_tensor(what, r)).transpose()
}

fn le_bytes(t: &Tensor) -> Vec<u8> {
    t.data().iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn out_array<'py>(py: Python<'py>, t: &Tensor) -> OutArray<'py> {
    (t.shape().to_vec(), PyByteArray::new(py, &le_bytes(t)))
}

/// Every parameter under its PyTorch name, in the module's order.
fn state_of<'py>(py: Python<'py>, m: &impl Module) -> Vec<StateEntry<'py>> {
    let entry = |p: &recur::Param| {
        let bytes = PyBytes::new(py, &le_bytes(&p.value));
        (p.name.clone(), p.value.shape().to_vec(), bytes)
    };
    m.params().into_iter().map(entry).collect()
}

/// Loads every parameter as PyTorch's `load_state_dict(strict=True)` does: a missing,
/// unexpected or wrongly shaped entry is an error, and on an error nothing changes.
fn load_state<M: Module + Clone>(m: &mut M, entries: Vec<StateEntry<'_>>) -> PyResult<()> {
    let mut tensors = HashMap::with_capacity(entries.len());
    for (name, shape, bytes) in entries {
        let t = to_tensor(&name, &(shape, bytes))?;
        tensors.insert(name, t);
    }
    let mut fresh = m.clone();
    load_params(&mut fresh, |name| tensors.remove(name)).map_err(value_error)?;
    if !tensors.is_empty() {
        let mut names: Vec<String> = tensors.into_keys().collect();
        names.sort();
        let msg = format!("unexpected key(s) in state_dict: {}", names.join(", "));
        return Err(value_error(msg));
    }
    *m = fresh;
    Ok(())
}

fn mode_named(name: &str) -> PyResult<RnnMode> {
    match name {
        "lstm" => Ok(RnnMode::Lstm),
        "gru" => Ok(RnnMode::Gru),
        "rnn_tanh" => Ok(RnnMode::RnnTanh),
        "rnn_relu" => Ok(RnnMode::RnnRelu),
        other => Err(value_error(format!(
            "mode: expected lstm, gru, rnn_tanh or rnn_relu, got {other:?}"
        ))),
    }
}

/// `nn.RNN` / `nn.LSTM` / `nn.GRU`.
#[pyclass(module = "recur._recur")]
pub struct Recurrent {
    rnn: Rnn,
}

#[pymethods]
impl Recurrent {
    #[new]
    #[pyo3(signature = (mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size, seed))]
    #[allow(clippy::too_many_arguments)] // PyTorch's constructor arguments, one each
    fn new(
        mode: &str,
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
        bias: bool,
        batch_first: bool,
        dropout: f32,
        bidirectional: bool,
        proj_size: usize,
        seed: u64,
    ) -> PyResult<Self> {
        let mut cfg = RnnConfig::lstm(input_size, hidden_size)
            .num_layers(num_layers)
            .bias(bias)
            .batch_first(batch_first)
            .dropout(dropout)
            .bidirectional(bidirectional)
            .proj_size(proj_size);
        cfg.mode = mode_named(mode)?;
        let rnn = cfg.build(&mut seeded_rng(seed)).map_err(value_error)?;
        Ok(Recurrent { rnn })
    }

    fn state<'py>(&self, py: Python<'py>) -> Vec<StateEntry<'py>> {
        state_of(py, &self.rnn)
    }

    fn load_state(&mut self, entries: Vec<StateEntry<'_>>) -> PyResult<()> {
        load_state(&mut self.rnn, entries)
    }

    /// `(output, h_n, c_n or None)`.
    #[pyo3(signature = (input, lengths = None, h0 = None, c0 = None))]
    #[allow(clippy::type_complexity)] // the tuple PyTorch returns
    fn forward<'py>(
        &self,
        py: Python<'py>,
        input: RawArray<'py>,
        lengths: Option<Vec<usize>>,
        h0: Option<RawArray<'py>>,
        c0: Option<RawArray<'py>>,
    ) -> PyResult<(OutArray<'py>, OutArray<'py>, Option<OutArray<'py>>)> {
        let x = to_tensor("input", &input)?;
        let h = opt_tensor("h0", h0.as_ref())?;
        let c = opt_tensor("c0", c0.as_ref())?;
        let state = match (h, c) {
            (None, None) => None,
            (Some(h), c) => Some(RnnState { h, c }),
            (None, Some(_)) => return Err(value_error("c0 given without h0")),
        };
        let out = py
            .detach(|| self.rnn.forward(&x, lengths.as_deref(), state.as_ref()))
            .map_err(value_error)?;
        let c_n = out.c_n.as_ref().map(|c| out_array(py, c));
        Ok((out_array(py, &out.output), out_array(py, &out.h_n), c_n))
    }
}

/// `nn.RNNCell` / `nn.LSTMCell` / `nn.GRUCell`.
#[pyclass(module = "recur._recur")]
pub struct Cell {
    cell: RnnCell,
}

#[pymethods]
impl Cell {
    #[new]
    fn new(
        mode: &str,
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        seed: u64,
    ) -> PyResult<Self> {
        let mode = mode_named(mode)?;
        let cell = RnnCell::new(mode, input_size, hidden_size, bias, &mut seeded_rng(seed))
            .map_err(value_error)?;
        Ok(Cell { cell })
    }

    fn state<'py>(&self, py: Python<'py>) -> Vec<StateEntry<'py>> {
        state_of(py, &self.cell)
    }

    fn load_state(&mut self, entries: Vec<StateEntry<'_>>) -> PyResult<()> {
        load_state(&mut self.cell, entries)
    }

    /// `(h1, c1 or None)`.
    #[pyo3(signature = (input, h = None, c = None))]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        input: RawArray<'py>,
        h: Option<RawArray<'py>>,
        c: Option<RawArray<'py>>,
    ) -> PyResult<(OutArray<'py>, Option<OutArray<'py>>)> {
        let x = to_tensor("input", &input)?;
        let h = opt_tensor("hx", h.as_ref())?;
        let c = opt_tensor("cx", c.as_ref())?;
        let (h1, c1) = py
            .detach(|| self.cell.forward(&x, h.as_ref(), c.as_ref()))
            .map_err(value_error)?;
        Ok((out_array(py, &h1), c1.as_ref().map(|c| out_array(py, c))))
    }
}

/// `nn.Linear`.
#[pyclass(module = "recur._recur")]
pub struct Dense {
    linear: Linear,
}

#[pymethods]
impl Dense {
    #[new]
    fn new(in_features: usize, out_features: usize, bias: bool, seed: u64) -> Self {
        let linear = Linear::new(in_features, out_features, bias, &mut seeded_rng(seed));
        Dense { linear }
    }

    fn state<'py>(&self, py: Python<'py>) -> Vec<StateEntry<'py>> {
        state_of(py, &self.linear)
    }

    fn load_state(&mut self, entries: Vec<StateEntry<'_>>) -> PyResult<()> {
        load_state(&mut self.linear, entries)
    }

    fn forward<'py>(&self, py: Python<'py>, input: RawArray<'py>) -> PyResult<OutArray<'py>> {
        let x = to_tensor("input", &input)?;
        let y = py.detach(|| self.linear.forward(&x)).map_err(value_error)?;
        Ok(out_array(py, &y))
    }
}

/// `nn.Embedding`.
#[pyclass(module = "recur._recur")]
pub struct Lookup {
    embedding: Embedding,
}

#[pymethods]
impl Lookup {
    #[new]
    #[pyo3(signature = (num_embeddings, embedding_dim, padding_idx, seed))]
    fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<usize>,
        seed: u64,
    ) -> PyResult<Self> {
        let mut rng = seeded_rng(seed);
        let embedding = Embedding::new(num_embeddings, embedding_dim, padding_idx, &mut rng)
            .map_err(value_error)?;
        Ok(Lookup { embedding })
    }

    fn state<'py>(&self, py: Python<'py>) -> Vec<StateEntry<'py>> {
        state_of(py, &self.embedding)
    }

    fn load_state(&mut self, entries: Vec<StateEntry<'_>>) -> PyResult<()> {
        load_state(&mut self.embedding, entries)
    }

    fn forward<'py>(&self, py: Python<'py>, ids: RawArray<'py>) -> PyResult<OutArray<'py>> {
        let shape = ids.0.clone();
        let ids = to_ids("input", &ids)?;
        let y = py
            .detach(|| self.embedding.forward(&ids, &shape))
            .map_err(value_error)?;
        Ok(out_array(py, &y))
    }
}
