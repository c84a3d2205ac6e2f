//! `RNNCell`, `LSTMCell` and `GRUCell`: one time step, for code that steps layers by hand.
//!
//! A cell is a one-layer, one-direction recurrent layer run for one step, so it shares the
//! layer's kernels and backward exactly; only its parameter names (`weight_ih`, `bias_hh`, ...)
//! and shapes differ:
//! ```text
//!   input (B, I) or (I)      h, c (B, H) or (H)      →  h1, c1 like h
//! ```

use super::rnn::{Rnn, RnnCache, RnnConfig, RnnMode, RnnState};
use crate::error::{Error, Result};
use crate::module::{Init, Module, Param};
use crate::tensor::{fmt_shape, Tensor};

/// One recurrent cell (LSTM, GRU or Elman RNN).
#[derive(Clone, Debug)]
pub struct RnnCell {
    inner: Rnn,
}

/// What [`RnnCell::forward_train`] saves for backward.
#[derive(Clone, Debug)]
pub struct CellCache {
    inner: RnnCache,
}

/// Gradients of a cell step's inputs.
#[derive(Clone, Debug)]
pub struct CellGrads {
    /// ∂L/∂input.
    pub input: Tensor,
    /// ∂L/∂h.
    pub h0: Tensor,
    /// ∂L/∂c (LSTM).
    pub c0: Option<Tensor>,
}

impl Module for RnnCell {
    fn params(&self) -> Vec<&Param> {
        self.inner.params()
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.inner.params_mut()
    }
}

impl RnnCell {
    /// `nn.LSTMCell` / `nn.GRUCell` / `nn.RNNCell(nonlinearity=...)`, initialised as PyTorch.
    pub fn new(
        mode: RnnMode,
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        rng: &mut impl Init,
    ) -> Result<Self> {
        let mut cfg = RnnConfig::lstm(input_size, hidden_size).bias(bias);
        cfg.mode = mode;
        let mut inner = cfg.build(rng)?;
        for p in inner.params_mut() {
            p.name = p.name.trim_end_matches("_l0").to_string();
        }
        Ok(RnnCell { inner })
    }

    /// The recurrence.
    pub fn mode(&self) -> RnnMode {
        self.inner.config().mode
    }

    /// Adds the time axis: (B, ·) → (1, B, ·), (·) → (1, ·).
    fn lift(t: &Tensor) -> Result<Tensor> {
        let mut shape = vec![1];
        shape.extend_from_slice(t.shape());
        t.clone().reshape(&shape)
    }

    fn lower(t: Tensor) -> Tensor {
        let shape = t.shape()[1..].to_vec();
        t.reshape(&shape).expect("same size")
    }

    fn prepare(
        &self,
        input: &Tensor,
        h: Option<&Tensor>,
        c: Option<&Tensor>,
    ) -> Result<(Tensor, Option<RnnState>)> {
        let batched = match input.rank() {
            1 => false,
            2 => true,
            _ => {
                return Err(Error::shape(
                    "RNNCell.forward",
                    "input (batch, feature) or (feature)",
                    fmt_shape(input.shape()),
                ))
            }
        };
        let x = Self::lift(input)?;
        let state = match (h, c) {
            (None, None) => None,
            _ => {
                let hidden = self.inner.config().hidden_size;
                let mut zero_shape = if batched {
                    vec![input.dim(0), hidden]
                } else {
                    vec![hidden]
                };
                let h = match h {
                    Some(h) => h.clone(),
                    None => Tensor::zeros(&zero_shape),
                };
                let c = match (self.mode(), c) {
                    (_, Some(c)) => Some(c.clone()),
                    (RnnMode::Lstm, None) => Some(Tensor::zeros(&std::mem::take(&mut zero_shape))),
                    _ => None,
                };
                Some(RnnState {
                    h: Self::lift(&h)?,
                    c: c.as_ref().map(Self::lift).transpose()?,
                })
            }
        };
        Ok((x, state))
    }

    /// One step: returns `(h1, c1)` (`c1` for LSTM only).
    pub fn forward(
        &self,
        input: &Tensor,
        h: Option<&Tensor>,
        c: Option<&Tensor>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (x, state) = self.prepare(input, h, c)?;
        let out = self.inner.forward(&x, None, state.as_ref())?;
        Ok((Self::lower(out.h_n), out.c_n.map(Self::lower)))
    }

    /// One step, keeping what [`RnnCell::backward`] needs.
    pub fn forward_train(
        &self,
        input: &Tensor,
        h: Option<&Tensor>,
        c: Option<&Tensor>,
    ) -> Result<(Tensor, Option<Tensor>, CellCache)> {
        let (x, state) = self.prepare(input, h, c)?;
        // A single layer has no inter-layer dropout, so the RNG is never drawn from.
        let (out, inner) = self.inner.forward_train(
            &x,
            None,
            state.as_ref(),
            &mut crate::module::seeded_rng(0),
        )?;
        Ok((
            Self::lower(out.h_n),
            out.c_n.map(Self::lower),
            CellCache { inner },
        ))
    }

    /// Adds parameter gradients; returns ∂L/∂input, ∂L/∂h, ∂L/∂c.
    pub fn backward(
        &mut self,
        cache: &CellCache,
        grad_h1: Option<&Tensor>,
        grad_c1: Option<&Tensor>,
    ) -> Result<CellGrads> {
        let gh = grad_h1.map(Self::lift).transpose()?;
        let gc = grad_c1.map(Self::lift).transpose()?;
        let g = self
            .inner
            .backward(&cache.inner, None, gh.as_ref(), gc.as_ref())?;
        Ok(CellGrads {
            input: Self::lower(g.input),
            h0: Self::lower(g.h0),
            c0: g.c0.map(Self::lower),
        })
    }
}
