//! One direction of one recurrent layer over time: the forward sweep and backpropagation
//! through time. The layer ([`super::rnn`]) handles stacking, directions, batch order and shapes.
//!
//! Batch rows arrive sorted by decreasing length, so at time `t` the rows still running are the
//! prefix `0..active[t]`: every per-step GEMM and kernel touches only those rows, and a finished
//! (or, in the reverse direction, not yet started) row keeps its state untouched. That one rule
//! gives PyTorch's packed-sequence semantics in both directions, and zero-length rows for free.
//!
//! Forward: (A) one GEMM projects the inputs of all steps (or, when the inputs are embedded
//! tokens and the weights are packed for inference, a lookup in a per-token table of the same
//! products: [`PackedDir::tabulate`]); per step (B) one GEMM for the
//! recurrence, (C) one fused gate kernel, (D) the LSTM projection GEMM when `proj_size > 0`.
//! Backward mirrors it per step, then (E) accumulates every weight gradient with one GEMM over
//! all steps and (F) the input gradient with one more.

use crate::gemm::{matmul, matmul_packed, PackedB, Trans};
use crate::kernels::{elman, gru, lstm};
use crate::module::Param;

use serde::{Deserialize, Serialize};

use crate::kernels::elman::Nonlinearity;

mod sharded;

/// Which recurrence a layer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RnnMode {
    /// LSTM, gates i, f, g, o.
    Lstm,
    /// GRU, gates r, z, n.
    Gru,
    /// Elman RNN, tanh (`nn.RNN` default).
    RnnTanh,
    /// Elman RNN, relu.
    RnnRelu,
}

impl RnnMode {
    /// Gates per hidden unit: 4 (LSTM), 3 (GRU), 1 (RNN).
    pub fn gates(self) -> usize {
        match self {
            RnnMode::Lstm => 4,
            RnnMode::Gru => 3,
            RnnMode::RnnTanh | RnnMode::RnnRelu => 1,
        }
    }

    /// The Elman nonlinearity (tanh for LSTM/GRU, where it is unused).
    pub fn nonlinearity(self) -> Nonlinearity {
        match self {
            RnnMode::RnnRelu => Nonlinearity::Relu,
            _ => Nonlinearity::Tanh,
        }
    }

    /// PyTorch's class name.
    pub fn torch_name(self) -> &'static str {
        match self {
            RnnMode::Lstm => "LSTM",
            RnnMode::Gru => "GRU",
            RnnMode::RnnTanh | RnnMode::RnnRelu => "RNN",
        }
    }
}

/// The parameters of one direction of one layer, PyTorch names and shapes.
#[derive(Clone, Debug)]
pub struct DirWeights {
    /// `weight_ih_l{k}` (G·H, input).
    pub w_ih: Param,
    /// `weight_hh_l{k}` (G·H, out) where out = proj_size or hidden.
    pub w_hh: Param,
    /// `bias_ih_l{k}` (G·H).
    pub b_ih: Option<Param>,
    /// `bias_hh_l{k}` (G·H).
    pub b_hh: Option<Param>,
    /// `weight_hr_l{k}` (proj, hidden), LSTM with projection only.
    pub w_hr: Option<Param>,
}

impl DirWeights {
    /// In PyTorch's `_flat_weights` order.
    pub fn params(&self) -> Vec<&Param> {
        let mut v = vec![&self.w_ih, &self.w_hh];
        v.extend(self.b_ih.iter());
        v.extend(self.b_hh.iter());
        v.extend(self.w_hr.iter());
        v
    }

    /// Mutable, same order.
    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v = vec![&mut self.w_ih, &mut self.w_hh];
        v.extend(self.b_ih.iter_mut());
        v.extend(self.b_hh.iter_mut());
        v.extend(self.w_hr.iter_mut());
        v
    }
}

/// One direction's weights packed for the forward sweep: `op = W_ihᵀ`, `W_hhᵀ`, `W_hrᵀ`, and the
/// folded input bias. Build it once and reuse it while the weights do not change (decoding).
#[derive(Clone, Debug)]
pub struct PackedDir {
    w_ih: PackedB,
    w_hh: PackedB,
    w_hr: Option<PackedB>,
    /// `b_ih + b_hh` (LSTM, RNN) or `b_ih` (GRU, whose `b_hn` stays in the gate kernel).
    bias: Option<Vec<f32>>,
    /// Step (A) precomputed for every possible input row `[V, G·H]` (see [`PackedDir::tabulate`]).
    table: Option<Vec<f32>>,
    /// What backward multiplies by, when packed for training ([`PackedDir::pack_backward`]).
    grad: Option<GradPack>,
    /// The weights cut by hidden units for the threads of a sharded sweep, made on first use.
    shards: std::sync::OnceLock<Option<sharded::Shards>>,
}

/// The weights as backward multiplies by them: `op = W_hh` (G·H × out), `W_hr` (out × H) and
/// `W_ih` (G·H × I), untransposed.
#[derive(Clone, Debug)]
struct GradPack {
    w_hh: PackedB,
    w_hr: Option<PackedB>,
    w_ih: PackedB,
}

impl GradPack {
    fn new(w: &DirWeights, d: Dims) -> Self {
        let (gh, ho, hid) = (d.gates(), d.out, d.hidden);
        GradPack {
            w_hh: PackedB::new(w.w_hh.value.data(), Trans::N, gh, ho),
            w_hr: w
                .w_hr
                .as_ref()
                .map(|p| PackedB::new(p.value.data(), Trans::N, ho, hid)),
            w_ih: PackedB::new(w.w_ih.value.data(), Trans::N, gh, d.input),
        }
    }
}

/// What a sweep reads at each step: features, or token ids whose step (A) is looked up.
#[derive(Clone, Copy, Debug)]
pub enum SweepInput<'a> {
    /// `[T, B, I]`.
    Features(&'a [f32]),
    /// `[T, B]` ids into the table of [`PackedDir::tabulate`].
    Tokens(&'a [u32]),
    /// `[T, B]` ids into the table, plus `[T, B, G·H]` gate pre-activations that the caller
    /// computed for the rest of the input (the features the table's rows leave at zero).
    TokensAndGates(&'a [u32], &'a [f32]),
}

/// Step (A) of `ids.len()` rows from the table of [`PackedDir::tabulate`] (`[V, gh]`), plus
/// `extra` (`[rows, gh]`) when given, into `gates`.
fn lookup_inputs(table: &[f32], gh: usize, ids: &[u32], extra: Option<&[f32]>, gates: &mut [f32]) {
    for (r, (g, &id)) in gates.chunks_exact_mut(gh).zip(ids).enumerate() {
        g.copy_from_slice(&table[id as usize * gh..][..gh]);
        if let Some(extra) = extra {
            g.iter_mut()
                .zip(&extra[r * gh..][..gh])
                .for_each(|(g, &x)| *g += x);
        }
    }
}

impl PackedDir {
    /// Packs `w` for a layer of sizes `d` (only mode, input, hidden and out are used).
    pub fn new(w: &DirWeights, d: Dims) -> Self {
        let gh = d.gates();
        let bias = match (&w.b_ih, &w.b_hh) {
            (Some(bi), Some(bh)) => Some(match d.mode {
                RnnMode::Gru => bi.value.data().to_vec(),
                _ => bi
                    .value
                    .data()
                    .iter()
                    .zip(bh.value.data())
                    .map(|(a, b)| a + b)
                    .collect(),
            }),
            _ => None,
        };
        PackedDir {
            w_ih: PackedB::new(w.w_ih.value.data(), Trans::T, d.input, gh),
            w_hh: PackedB::new(w.w_hh.value.data(), Trans::T, d.out, gh),
            w_hr: w
                .w_hr
                .as_ref()
                .map(|p| PackedB::new(p.value.data(), Trans::T, d.hidden, d.out)),
            bias,
            table: None,
            grad: None,
            shards: std::sync::OnceLock::new(),
        }
    }

    /// Also packs the weights as [`backward`] multiplies by them, so that a sweep run once per
    /// step (a decoder in training) packs nothing per step in either direction.
    pub fn pack_backward(&mut self, w: &DirWeights, d: Dims) {
        self.grad = Some(GradPack::new(w, d));
    }

    /// Precomputes step (A) for each row of `rows` `[V, I]` (an embedding's weight, when the
    /// layer reads embedded tokens): row v of the table is exactly what (A) computes for an input
    /// equal to `rows[v]` (the GEMM's result rows do not depend on the other rows), so a token's
    /// lookup gives the same bits as embedding it and multiplying, without streaming `W_ih`.
    pub fn tabulate(&mut self, rows: &[f32], vocab: usize) {
        let gh = self.w_ih.n();
        let mut table = vec![0.0f32; vocab * gh];
        project_inputs(self, rows, vocab, &mut table, 1);
        self.table = Some(table);
    }

    /// Rows of the table of [`PackedDir::tabulate`], if any.
    pub fn table_rows(&self) -> Option<usize> {
        self.table.as_ref().map(|t| t.len() / self.w_ih.n().max(1))
    }
}

/// Step (A): `gates[r] = bias + x[r]·W_ihᵀ` for `rows` rows.
fn project_inputs(packed: &PackedDir, x: &[f32], rows: usize, gates: &mut [f32], threads: usize) {
    if let Some(bias) = &packed.bias {
        fill_rows(gates, bias);
    }
    let accumulate = packed.bias.is_some();
    matmul_packed(gates, x, Trans::N, &packed.w_ih, rows, accumulate, threads);
}

/// Sizes of one sweep.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    /// The recurrence.
    pub mode: RnnMode,
    /// Input features I.
    pub input: usize,
    /// Hidden size H.
    pub hidden: usize,
    /// State/output size: proj_size P when projecting, else H.
    pub out: usize,
    /// Time steps T.
    pub steps: usize,
    /// Batch rows B.
    pub batch: usize,
}

impl Dims {
    fn gates(&self) -> usize {
        self.mode.gates() * self.hidden
    }
    fn proj(&self) -> bool {
        self.out != self.hidden
    }
}

/// What the forward sweep keeps for backward, all time-major `[T, B, ·]`, zero where inactive.
#[derive(Clone, Debug, Default)]
pub struct DirTrace {
    /// Gate activations (LSTM `[i f g o]`, GRU `[r z n]`, RNN `h'`), `[T, B, G·H]`.
    gates: Vec<f32>,
    /// GRU: `ĥ` with its n-part replaced by `m = ĥ_n + b_hn`, `[T, B, 3H]`.
    hg: Vec<f32>,
    /// State before each step, `[T, B, out]`.
    h_prev: Vec<f32>,
    /// LSTM cell state before each step, `[T, B, H]`.
    c_prev: Vec<f32>,
    /// LSTM `tanh(c')`, `[T, B, H]`.
    tanh_c: Vec<f32>,
    /// LSTM with projection: `o tanh(c')` before projecting, `[T, B, H]`.
    h_full: Vec<f32>,
}

/// Time index of processing step `s`.
#[inline]
fn time_of(s: usize, steps: usize, reverse: bool) -> usize {
    if reverse {
        steps - 1 - s
    } else {
        s
    }
}

/// Fills each of `rows` rows of `dst` (width `bias.len()`) with `bias`.
fn fill_rows(dst: &mut [f32], bias: &[f32]) {
    for row in dst.chunks_exact_mut(bias.len()) {
        row.copy_from_slice(bias);
    }
}

/// Adds the column sums of `src` (rows × width) into `dst` (width).
fn add_col_sums(dst: &mut [f32], src: &[f32]) {
    for row in src.chunks_exact(dst.len()) {
        for (d, s) in dst.iter_mut().zip(row) {
            *d += s;
        }
    }
}

/// Runs one direction forward.
///
/// * `x` `[T, B, I]` features or `[T, B]` tokens (with a table), sorted rows; `active[t]` rows
///   run at time `t`.
/// * `h` `[B, out]`: initial state in, final state out (a row's own last step); `c` `[B, H]`
///   likewise for LSTM (empty otherwise).
/// * `out` `[T, B, out]`, zero-initialised: the state after each step, zero where inactive;
///   empty when the caller needs the final state alone (inference only).
/// * Returns the trace for backward when `train`.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    w: &DirWeights,
    packed: &PackedDir,
    d: Dims,
    x: SweepInput,
    active: &[usize],
    reverse: bool,
    h: &mut [f32],
    c: &mut [f32],
    out: &mut [f32],
    train: bool,
    threads: usize,
) -> Option<DirTrace> {
    let (tb, gh, hid, ho) = (d.steps * d.batch, d.gates(), d.hidden, d.out);
    if let Some(shards) = shards_for(w, packed, d, active, train, threads) {
        if sharded::forward(shards, packed, d, x, active, reverse, h, c, out) {
            return None;
        }
    }
    // (A) input projection of all steps, biases folded in (GRU keeps b_hh for step (C)).
    let mut gates = match x {
        SweepInput::Features(x) => {
            let mut gates = vec![0.0f32; tb * gh];
            project_inputs(packed, x, tb, &mut gates, threads);
            gates
        }
        // Inference looks each step's rows up when it takes the step (below), into one
        // step's worth: they are then still in cache.
        SweepInput::Tokens(_) if !train => vec![0.0f32; d.batch * gh],
        SweepInput::Tokens(ids) => {
            // Filled row by row from the table, not zeroed first (a chunk of 256 words makes
            // this several megabytes).
            let table = packed.table.as_deref().expect("token input needs a table");
            let mut gates = Vec::with_capacity(tb * gh);
            for &id in ids.iter().take(tb) {
                gates.extend_from_slice(&table[id as usize * gh..][..gh]);
            }
            gates.resize(tb * gh, 0.0);
            gates
        }
        SweepInput::TokensAndGates(ids, extra) => {
            let table = packed.table.as_deref().expect("token input needs a table");
            let mut gates = vec![0.0f32; tb * gh];
            lookup_inputs(table, gh, &ids[..tb], Some(extra), &mut gates);
            gates
        }
    };

    let per_step = |width: usize| if train { tb * width } else { d.batch * width };
    let mut hg = if d.mode == RnnMode::Gru {
        vec![0.0f32; per_step(gh)]
    } else {
        Vec::new()
    };
    let is_lstm = d.mode == RnnMode::Lstm;
    let mut tanh_c = if is_lstm {
        vec![0.0f32; per_step(hid)]
    } else {
        Vec::new()
    };
    let mut h_full = if d.proj() {
        vec![0.0f32; per_step(hid)]
    } else {
        Vec::new()
    };
    let mut h_prev = if train {
        vec![0.0f32; tb * ho]
    } else {
        Vec::new()
    };
    let mut c_prev = if train && is_lstm {
        vec![0.0f32; tb * hid]
    } else {
        Vec::new()
    };
    let b_hh = w.b_hh.as_ref().map(|b| b.value.data());

    for s in 0..d.steps {
        let t = time_of(s, d.steps, reverse);
        let n = active[t];
        if n == 0 {
            continue;
        }
        // Offsets of step-sized scratch: row block t when training, the single block otherwise.
        let blk = if train { t * d.batch } else { 0 };
        if train {
            h_prev[t * d.batch * ho..][..n * ho].copy_from_slice(&h[..n * ho]);
            if is_lstm {
                c_prev[t * d.batch * hid..][..n * hid].copy_from_slice(&c[..n * hid]);
            }
        }
        let g = match x {
            SweepInput::Tokens(ids) if !train => {
                let table = packed.table.as_deref().expect("token input needs a table");
                let g = &mut gates[..n * gh];
                lookup_inputs(table, gh, &ids[t * d.batch..][..n], None, g);
                g
            }
            _ => &mut gates[t * d.batch * gh..][..n * gh],
        };
        let scratch = CellScratch {
            hg: if d.mode == RnnMode::Gru {
                &mut hg[blk * gh..][..n * gh]
            } else {
                &mut []
            },
            tanh_c: if is_lstm {
                &mut tanh_c[blk * hid..][..n * hid]
            } else {
                &mut []
            },
            h_full: if d.proj() {
                &mut h_full[blk * hid..][..n * hid]
            } else {
                &mut []
            },
        };
        cell_step(packed, d, b_hh, n, g, h, c, scratch, threads);
        if !out.is_empty() {
            out[t * d.batch * ho..][..n * ho].copy_from_slice(&h[..n * ho]);
        }
    }
    train.then_some(DirTrace {
        gates,
        hg,
        h_prev,
        c_prev,
        tanh_c,
        h_full,
    })
}

/// The shards for a sharded sweep ([`sharded`]), when it applies: inference of at most
/// [`sharded::MAX_ROWS`] rows on several threads, without projection, with weights that the
/// GEMM would split among threads too.
fn shards_for<'a>(
    w: &DirWeights,
    packed: &'a PackedDir,
    d: Dims,
    active: &[usize],
    train: bool,
    threads: usize,
) -> Option<&'a sharded::Shards> {
    let rows = active.iter().copied().max().unwrap_or(0);
    // Parts that wait for each other at every step need a core each.
    let threads = threads.min(crate::gemm::available_cores());
    if train || threads < 2 || d.proj() || rows > sharded::MAX_ROWS {
        return None;
    }
    if d.gates() * d.out < crate::gemm::ROW_PARALLEL_MIN_WORK {
        return None;
    }
    let shards = packed
        .shards
        .get_or_init(|| sharded::Shards::new(w, packed, d, threads))
        .as_ref()?;
    (shards.parts() == threads).then_some(shards)
}

/// Step-sized scratch of one cell step, `n` rows (empty where the mode does not use it).
struct CellScratch<'a> {
    /// GRU `ĥ` `[n, G·H]`.
    hg: &'a mut [f32],
    /// LSTM `tanh(c')` `[n, H]`.
    tanh_c: &'a mut [f32],
    /// LSTM with projection `o tanh(c')` `[n, H]`.
    h_full: &'a mut [f32],
}

/// Steps (B)–(D) for `n` rows: `g` `[n, G·H]` holds step (A)'s input projection (destroyed);
/// `h` `[≥n, out]` and `c` `[≥n, H]` (LSTM) advance in place.
#[allow(clippy::too_many_arguments)]
fn cell_step(
    packed: &PackedDir,
    d: Dims,
    b_hh: Option<&[f32]>,
    n: usize,
    g: &mut [f32],
    h: &mut [f32],
    c: &mut [f32],
    scratch: CellScratch,
    threads: usize,
) {
    let (hid, ho, gh) = (d.hidden, d.out, d.gates());
    let (w_hh, w_hr) = (&packed.w_hh, &packed.w_hr);
    match d.mode {
        RnnMode::Lstm => {
            // (B) a += h·W_hhᵀ
            matmul_packed(g, &h[..n * ho], Trans::N, w_hh, n, true, threads);
            // (C)
            let tc = Rows::of(scratch.tanh_c, hid);
            let (gs, cs) = (Rows::of(g, gh), Rows::of(&mut c[..n * hid], hid));
            if d.proj() {
                let h_full = scratch.h_full;
                let hf = Rows::of(h_full, hid);
                for_row_blocks(n, hid, threads, &|r0, rows| {
                    // SAFETY: each block takes its own rows of buffers of n rows.
                    let [g, c, hf, tc] = unsafe { [gs, cs, hf, tc].map(|b| b.block(r0, rows)) };
                    lstm::forward(rows, hid, g, c, hf, tc);
                });
                // (D) h' = (o tanh c')·W_hrᵀ
                let w_hr = w_hr.as_ref().expect("projection weight");
                matmul_packed(&mut h[..n * ho], h_full, Trans::N, w_hr, n, false, threads);
            } else {
                let hs = Rows::of(&mut h[..n * hid], hid);
                for_row_blocks(n, hid, threads, &|r0, rows| {
                    // SAFETY: as above.
                    let [g, c, h, tc] = unsafe { [gs, cs, hs, tc].map(|b| b.block(r0, rows)) };
                    lstm::forward(rows, hid, g, c, h, tc);
                });
            }
        }
        RnnMode::Gru => {
            let hgs = scratch.hg;
            // (B) ĥ = h·W_hhᵀ
            matmul_packed(hgs, &h[..n * hid], Trans::N, w_hh, n, false, threads);
            // (C)
            let (gs, hgs, hs) = (
                Rows::of(g, gh),
                Rows::of(hgs, gh),
                Rows::of(&mut h[..n * hid], hid),
            );
            for_row_blocks(n, hid, threads, &|r0, rows| {
                // SAFETY: as above.
                let [g, hg, h] = unsafe { [gs, hgs, hs].map(|b| b.block(r0, rows)) };
                gru::forward(rows, hid, g, hg, b_hh, h);
            });
        }
        RnnMode::RnnTanh | RnnMode::RnnRelu => {
            // (B)
            matmul_packed(g, &h[..n * hid], Trans::N, w_hh, n, true, threads);
            // (C)
            let (gs, hs) = (Rows::of(g, gh), Rows::of(&mut h[..n * hid], hid));
            for_row_blocks(n, hid, threads, &|r0, rows| {
                // SAFETY: as above.
                let [g, h] = unsafe { [gs, hs].map(|b| b.block(r0, rows)) };
                elman::forward(rows, hid, d.mode.nonlinearity(), g, h);
            });
        }
    }
}

/// A buffer of rows (`width` floats each) that the blocks of [`for_row_blocks`] share, each
/// taking its own rows.
#[derive(Clone, Copy)]
struct Rows<'a> {
    addr: usize,
    len: usize,
    width: usize,
    _buf: std::marker::PhantomData<&'a mut [f32]>,
}

impl<'a> Rows<'a> {
    fn of(buf: &'a mut [f32], width: usize) -> Self {
        Rows {
            addr: buf.as_mut_ptr() as usize,
            len: buf.len(),
            width,
            _buf: std::marker::PhantomData,
        }
    }

    /// Rows `r0..r0 + rows`.
    ///
    /// SAFETY: no other live slice of this buffer overlaps these rows.
    unsafe fn block(self, r0: usize, rows: usize) -> &'a mut [f32] {
        let (at, n) = (r0 * self.width, rows * self.width);
        assert!(at + n <= self.len, "row block beyond its buffer");
        // SAFETY: within the buffer (checked), exclusive by the caller's promise.
        unsafe { std::slice::from_raw_parts_mut((self.addr as *mut f32).add(at), n) }
    }
}

/// Below this many values per thread, a step's gate kernel runs on one thread.
const ROW_BLOCK_MIN_VALUES: usize = 8192;

/// Runs `f(first_row, rows)` over `n` rows of `width` values, in blocks split among up to
/// `threads` threads of the [`crate::team`] when each gets enough values. The gate kernels treat
/// each row alone, so the split does not change the bits.
fn for_row_blocks(n: usize, width: usize, threads: usize, f: &(dyn Fn(usize, usize) + Sync)) {
    let parts = threads.min(n * width / ROW_BLOCK_MIN_VALUES).max(1);
    if parts == 1 {
        return f(0, n);
    }
    let per = n.div_ceil(parts);
    crate::team::run(parts, &|t| {
        let (r0, r1) = (t * per, ((t + 1) * per).min(n));
        if r0 < r1 {
            f(r0, r1 - r0);
        }
    });
}

/// Reusable buffers of [`step`]: sized on first use, reused while the row count does not grow.
#[derive(Clone, Debug, Default)]
pub struct StepScratch {
    gates: Vec<f32>,
    hg: Vec<f32>,
    tanh_c: Vec<f32>,
    h_full: Vec<f32>,
}

/// Grows `v` to `n` values (zeros when new), never shrinking its allocation.
fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// One inference step of one direction for all `d.batch` rows (the same bits as [`forward`] over
/// one step): `x` `[B, I]` features or `[B]` tokens (with a table); `h` `[B, out]` and `c`
/// `[B, H]` (LSTM, else empty) advance in place. Allocates nothing once `scratch` has grown.
#[allow(clippy::too_many_arguments)]
pub fn step(
    w: &DirWeights,
    packed: &PackedDir,
    d: Dims,
    x: SweepInput,
    h: &mut [f32],
    c: &mut [f32],
    scratch: &mut StepScratch,
    threads: usize,
) {
    let (n, gh, hid) = (d.batch, d.gates(), d.hidden);
    if n == 0 {
        return;
    }
    let gates = sized(&mut scratch.gates, n * gh);
    match x {
        SweepInput::Features(x) => project_inputs(packed, x, n, gates, threads),
        SweepInput::Tokens(ids) => {
            let table = packed.table.as_deref().expect("token input needs a table");
            lookup_inputs(table, gh, ids, None, gates);
        }
        SweepInput::TokensAndGates(ids, extra) => {
            let table = packed.table.as_deref().expect("token input needs a table");
            lookup_inputs(table, gh, ids, Some(extra), gates);
        }
    }
    let cs = CellScratch {
        hg: if d.mode == RnnMode::Gru {
            sized(&mut scratch.hg, n * gh)
        } else {
            &mut []
        },
        tanh_c: if d.mode == RnnMode::Lstm {
            sized(&mut scratch.tanh_c, n * hid)
        } else {
            &mut []
        },
        h_full: if d.proj() {
            sized(&mut scratch.h_full, n * hid)
        } else {
            &mut []
        },
    };
    let b_hh = w.b_hh.as_ref().map(|b| b.value.data());
    cell_step(packed, d, b_hh, n, gates, h, c, cs, threads);
}

/// The rows (E) multiplies, `tb` of each: gate gradients and what they multiply.
struct GradRows<'a> {
    dgates: &'a [f32],
    /// GRU: ∂L/∂ĥ (for `W_hh`); empty otherwise.
    dhg: &'a [f32],
    /// LSTM with projection: ∂L/∂h'; empty otherwise.
    dproj: &'a [f32],
    x: &'a [f32],
    h_prev: &'a [f32],
    h_full: &'a [f32],
}

/// (E): adds every weight gradient of `rows` (`tb` rows) into `w`, one GEMM per weight.
fn weight_grads(w: &mut DirWeights, d: Dims, r: &GradRows, tb: usize, threads: usize) {
    let (gh, hid, ho) = (d.gates(), d.hidden, d.out);
    let dg_hh = if d.mode == RnnMode::Gru {
        r.dhg
    } else {
        r.dgates
    };
    matmul(
        w.w_ih.grad.data_mut(),
        r.dgates,
        Trans::T,
        r.x,
        Trans::N,
        gh,
        d.input,
        tb,
        true,
        threads,
    );
    matmul(
        w.w_hh.grad.data_mut(),
        dg_hh,
        Trans::T,
        r.h_prev,
        Trans::N,
        gh,
        ho,
        tb,
        true,
        threads,
    );
    if let Some(b) = &mut w.b_ih {
        add_col_sums(b.grad.data_mut(), r.dgates);
    }
    if let Some(b) = &mut w.b_hh {
        add_col_sums(b.grad.data_mut(), dg_hh);
    }
    if let Some(w_hr) = &mut w.w_hr {
        matmul(
            w_hr.grad.data_mut(),
            r.dproj,
            Trans::T,
            r.h_full,
            Trans::N,
            ho,
            hid,
            tb,
            true,
            threads,
        );
    }
}

/// Weight-gradient rows that [`backward`] set aside instead of multiplying them, gathered over
/// many sweeps (a decoder's steps) for one GEMM per weight ([`DeferredGrads::flush`]).
#[derive(Clone, Debug, Default)]
pub struct DeferredGrads {
    dgates: Vec<f32>,
    dhg: Vec<f32>,
    dproj: Vec<f32>,
    x: Vec<f32>,
    h_prev: Vec<f32>,
    h_full: Vec<f32>,
    rows: usize,
}

impl DeferredGrads {
    fn push(&mut self, r: &GradRows, tb: usize) {
        self.dgates.extend_from_slice(r.dgates);
        self.dhg.extend_from_slice(r.dhg);
        self.dproj.extend_from_slice(r.dproj);
        self.x.extend_from_slice(r.x);
        self.h_prev.extend_from_slice(r.h_prev);
        self.h_full.extend_from_slice(r.h_full);
        self.rows += tb;
    }

    /// (E) over every row set aside: adds the weight gradients into `w` and empties `self`.
    pub fn flush(&mut self, w: &mut DirWeights, d: Dims, threads: usize) {
        if self.rows > 0 {
            let r = GradRows {
                dgates: &self.dgates,
                dhg: &self.dhg,
                dproj: &self.dproj,
                x: &self.x,
                h_prev: &self.h_prev,
                h_full: &self.h_full,
            };
            weight_grads(w, d, &r, self.rows, threads);
        }
        for v in [
            &mut self.dgates,
            &mut self.dhg,
            &mut self.dproj,
            &mut self.x,
            &mut self.h_prev,
            &mut self.h_full,
        ] {
            v.clear();
        }
        self.rows = 0;
    }
}

/// Backpropagation through time for one direction; adds into the parameter gradients.
///
/// * `x` `[T, B, I]` and `active` as in [`forward`]; `trace` from it.
/// * `d_out` `[T, B, out]`: ∂L/∂output of this direction.
/// * `dh` `[B, out]`: ∂L/∂h_n in, ∂L/∂h0 out; `dc` `[B, H]` likewise for LSTM.
/// * `dx` `[T, B, I]`: ∂L/∂x is added into it.
/// * `packed`: weights from [`PackedDir::pack_backward`] (packed here when absent; same bits).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    w: &mut DirWeights,
    packed: Option<&PackedDir>,
    d: Dims,
    x: &[f32],
    active: &[usize],
    reverse: bool,
    trace: &DirTrace,
    d_out: &[f32],
    dh: &mut [f32],
    dc: &mut [f32],
    dx: &mut [f32],
    defer: Option<&mut DeferredGrads>,
    threads: usize,
) {
    let (tb, gh, hid, ho, bsz) = (d.steps * d.batch, d.gates(), d.hidden, d.out, d.batch);
    let mut dgates = vec![0.0f32; tb * gh];
    // GRU: the recurrent pre-activation ĥ gets its own gradient (its n-part is scaled by r).
    let mut dhg = if d.mode == RnnMode::Gru {
        vec![0.0f32; tb * gh]
    } else {
        Vec::new()
    };
    // LSTM projection: ∂L/∂h' of every step (for W_hr) and the scratch ∂L/∂(o tanh c').
    let mut dproj = if d.proj() {
        vec![0.0f32; tb * ho]
    } else {
        Vec::new()
    };
    let mut dh_full = if d.proj() {
        vec![0.0f32; bsz * hid]
    } else {
        Vec::new()
    };
    // Packed once for all steps (or given): op = W_hh (G·H × out), W_hr (out × H), W_ih.
    let local;
    let pk = match packed.and_then(|p| p.grad.as_ref()) {
        Some(g) => g,
        None => {
            local = GradPack::new(w, d);
            &local
        }
    };
    let (w_hh, w_hr) = (&pk.w_hh, &pk.w_hr);

    for s in (0..d.steps).rev() {
        let t = time_of(s, d.steps, reverse);
        let n = active[t];
        if n == 0 {
            continue;
        }
        let row = t * bsz;
        for (a, b) in dh[..n * ho].iter_mut().zip(&d_out[row * ho..][..n * ho]) {
            *a += b;
        }
        let dg = &mut dgates[row * gh..][..n * gh];
        let act = &trace.gates[row * gh..][..n * gh];
        match d.mode {
            RnnMode::Lstm => {
                let (cp, tc) = (
                    &trace.c_prev[row * hid..][..n * hid],
                    &trace.tanh_c[row * hid..][..n * hid],
                );
                if d.proj() {
                    // (D) back through h' = h_full·W_hrᵀ
                    dproj[row * ho..][..n * ho].copy_from_slice(&dh[..n * ho]);
                    let w_hr = w_hr.as_ref().expect("projection weight");
                    matmul_packed(
                        &mut dh_full[..n * hid],
                        &dh[..n * ho],
                        Trans::N,
                        w_hr,
                        n,
                        false,
                        threads,
                    );
                    lstm::backward(
                        n,
                        hid,
                        act,
                        cp,
                        tc,
                        &dh_full[..n * hid],
                        &mut dc[..n * hid],
                        dg,
                    );
                } else {
                    lstm::backward(n, hid, act, cp, tc, &dh[..n * hid], &mut dc[..n * hid], dg);
                }
                // (B) ∂L/∂h = ∂L/∂a · W_hh
                matmul_packed(&mut dh[..n * ho], dg, Trans::N, w_hh, n, false, threads);
            }
            RnnMode::Gru => {
                let hg = &trace.hg[row * gh..][..n * gh];
                let hp = &trace.h_prev[row * hid..][..n * hid];
                let dhgs = &mut dhg[row * gh..][..n * gh];
                gru::backward(n, hid, act, hg, hp, &mut dh[..n * hid], dg, dhgs);
                matmul_packed(&mut dh[..n * hid], dhgs, Trans::N, w_hh, n, true, threads);
            }
            RnnMode::RnnTanh | RnnMode::RnnRelu => {
                elman::backward(n, hid, d.mode.nonlinearity(), act, &dh[..n * hid], dg);
                matmul_packed(&mut dh[..n * hid], dg, Trans::N, w_hh, n, false, threads);
            }
        }
    }

    // (E) weight gradients, one GEMM each over all T·B rows (inactive rows contribute zero),
    // or deferred to one GEMM over many sweeps.
    let rows = GradRows {
        dgates: &dgates,
        dhg: &dhg,
        dproj: &dproj,
        x,
        h_prev: &trace.h_prev,
        h_full: &trace.h_full,
    };
    match defer {
        Some(sink) => sink.push(&rows, tb),
        None => weight_grads(w, d, &rows, tb, threads),
    }
    // (F) ∂L/∂x += ∂L/∂a · W_ih
    matmul_packed(dx, &dgates, Trans::N, &pk.w_ih, tb, true, threads);
}
