//! The inference sweep of a few rows split by hidden units among threads.
//!
//! Decoding one sequence, a step is one row times `W_hh`: a few microseconds, which two cores
//! stream twice as fast when each keeps its part of the weights in its own L2. Splitting each
//! product by columns (as [`crate::gemm`] does) leaves the gate kernel on one thread and costs
//! a fork and a join per step. Here thread `p` owns the hidden units `units_p` and every gate
//! column of them, for the whole sweep: (A) it projects its columns of all steps' inputs, then
//! per step (B) multiplies the state by its rows of `W_hh`, (C) runs the cell on its units and
//! writes them into the next state. One barrier per step.
//!
//! The state alternates between the caller's `h` and a second buffer, so a thread writing step
//! `s + 1`'s state never races one still reading step `s`'s. The bits are those of the plain
//! sweep: a GEMM element's FMA chain depends on `k` alone, not on the columns packed beside it,
//! and the cell kernels work unit by unit.

use std::ops::Range;

use super::{fill_rows, time_of, Dims, DirWeights, PackedDir, RnnMode, SweepInput};
use crate::gemm::{matmul_packed, PackedB, Trans};
use crate::kernels::{elman, gru, lstm};
use crate::team::{self, Barrier};

/// Sweeps of at most this many rows run sharded: a step of one sequence or a few beams. More
/// rows make a step long enough that its fork and join no longer matter.
pub(super) const MAX_ROWS: usize = 8;

/// Units of a shard are a multiple of this (a 512-bit register of floats), when possible.
const UNIT_ALIGN: usize = 16;

/// One direction's weights cut into one shard per thread.
#[derive(Clone, Debug)]
pub(super) struct Shards {
    parts: Vec<Shard>,
}

/// The gate rows of one range of hidden units, packed as [`PackedDir`] packs all of them.
#[derive(Clone, Debug)]
struct Shard {
    units: Range<usize>,
    /// `op = W_ihᵀ` of these rows.
    w_ih: PackedB,
    /// `op = W_hhᵀ` of these rows.
    w_hh: PackedB,
    /// These columns of the folded bias.
    bias: Option<Vec<f32>>,
    /// GRU: these columns of `b_hh` (the gate kernel adds them).
    b_hh: Option<Vec<f32>>,
}

/// Columns `q·H + units` of every gate block `q` of a row `[G·H]`, in order.
fn gather(row: &[f32], hidden: usize, units: &Range<usize>, out: &mut Vec<f32>) {
    for block in row.chunks_exact(hidden) {
        out.extend_from_slice(&block[units.clone()]);
    }
}

impl Shards {
    /// Cuts `w` into `parts` shards of whole registers of units; `None` when some would be empty.
    pub(super) fn new(w: &DirWeights, packed: &PackedDir, d: Dims, parts: usize) -> Option<Self> {
        let hid = d.hidden;
        let per = hid.div_ceil(parts).next_multiple_of(UNIT_ALIGN).min(hid);
        let ranges: Vec<Range<usize>> = (0..parts)
            .map(|p| (p * per).min(hid)..((p + 1) * per).min(hid))
            .collect();
        if ranges.iter().any(|r| r.is_empty()) {
            return None;
        }
        let shard = |units: Range<usize>| {
            let g = d.mode.gates();
            let rows = |m: &[f32], width: usize| {
                let mut out = Vec::with_capacity(g * units.len() * width);
                for q in 0..g {
                    let first = q * hid + units.start;
                    out.extend_from_slice(&m[first * width..(first + units.len()) * width]);
                }
                out
            };
            let cols = |v: &[f32]| {
                let mut out = Vec::with_capacity(g * units.len());
                gather(v, hid, &units, &mut out);
                out
            };
            let gu = g * units.len();
            Shard {
                w_ih: PackedB::new(&rows(w.w_ih.value.data(), d.input), Trans::T, d.input, gu),
                w_hh: PackedB::new(&rows(w.w_hh.value.data(), d.out), Trans::T, d.out, gu),
                bias: packed.bias.as_deref().map(cols),
                b_hh: match d.mode {
                    RnnMode::Gru => w.b_hh.as_ref().map(|b| cols(b.value.data())),
                    _ => None,
                },
                units,
            }
        };
        Some(Shards {
            parts: ranges.into_iter().map(shard).collect(),
        })
    }

    /// Threads the shards are cut for.
    pub(super) fn parts(&self) -> usize {
        self.parts.len()
    }
}

/// A buffer that the parts of one sweep share, each reading and writing only ranges that no
/// other part writes at the same time (see the module docs).
#[derive(Clone, Copy)]
struct Shared {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: parts access disjoint ranges, and the barrier orders the steps.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    fn of(buf: &mut [f32]) -> Self {
        Shared {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
        }
    }

    /// SAFETY: no part writes `at..at + len` while this slice lives.
    unsafe fn get(&self, at: usize, len: usize) -> &[f32] {
        assert!(at + len <= self.len, "shared buffer: out of range");
        std::slice::from_raw_parts(self.ptr.add(at), len)
    }

    /// SAFETY: no other part reads or writes `at..at + len` while this slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get_mut(&self, at: usize, len: usize) -> &mut [f32] {
        assert!(at + len <= self.len, "shared buffer: out of range");
        std::slice::from_raw_parts_mut(self.ptr.add(at), len)
    }

    /// Copies columns `units` of rows `rows` (row width `width`) from `self` to `to`.
    ///
    /// SAFETY: as [`Shared::get`] for the source and [`Shared::get_mut`] for the target ranges.
    unsafe fn copy_cols(&self, to: Shared, rows: Range<usize>, width: usize, units: &Range<usize>) {
        for r in rows {
            let at = r * width + units.start;
            to.get_mut(at, units.len())
                .copy_from_slice(self.get(at, units.len()));
        }
    }
}

/// [`super::forward`] without training, `shards.parts()` threads, no projection: the same
/// arguments, the same results. Returns false, having done nothing, when the team cannot run
/// the parts together now.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    shards: &Shards,
    packed: &PackedDir,
    d: Dims,
    x: SweepInput,
    active: &[usize],
    reverse: bool,
    h: &mut [f32],
    c: &mut [f32],
    out: &mut [f32],
) -> bool {
    debug_assert!(d.out == d.hidden, "no projection");
    // The steps that run, in order, with their row counts.
    let steps: Vec<(usize, usize)> = (0..d.steps)
        .map(|s| time_of(s, d.steps, reverse))
        .map(|t| (t, active[t]))
        .filter(|&(_, n)| n > 0)
        .collect();
    let Some(&(_, last_rows)) = steps.last() else {
        return true;
    };
    let mut h_alt = vec![0.0f32; h.len()];
    let bufs = Buffers {
        h: Shared::of(h),
        h_alt: Shared::of(&mut h_alt),
        c: Shared::of(c),
        out: Shared::of(out),
    };
    let together = team::run_together(shards.parts(), &|p, barrier| {
        run_part(&shards.parts[p], packed, d, x, &steps, bufs, barrier);
    });
    if !together {
        return false;
    }
    // The last step wrote its rows into the buffer that was not `h` when the step count is odd.
    if steps.len() % 2 == 1 {
        h[..last_rows * d.hidden].copy_from_slice(&h_alt[..last_rows * d.hidden]);
    }
    true
}

/// What the parts share: the state in its two buffers, the LSTM cell state and the outputs.
#[derive(Clone, Copy)]
struct Buffers {
    h: Shared,
    h_alt: Shared,
    c: Shared,
    out: Shared,
}

/// One thread's sweep over its shard.
fn run_part(
    shard: &Shard,
    packed: &PackedDir,
    d: Dims,
    x: SweepInput,
    steps: &[(usize, usize)],
    bufs: Buffers,
    barrier: &Barrier,
) {
    let (hid, b) = (d.hidden, d.batch);
    let units = &shard.units;
    let (u, gu) = (units.len(), d.mode.gates() * units.len());
    // (A) This shard's columns of the input projection: every step at once from features, or
    // a step's rows looked up in the table when the step comes.
    let mut xg = match x {
        SweepInput::Features(x) => {
            let w_ih = &shard.w_ih;
            let rows = d.steps * b;
            let mut xg = vec![0.0f32; rows * gu];
            if let Some(bias) = &shard.bias {
                fill_rows(&mut xg, bias);
            }
            matmul_packed(&mut xg, x, Trans::N, w_ih, rows, shard.bias.is_some(), 1);
            xg
        }
        _ => Vec::with_capacity(b * gu),
    };
    let mut hg = vec![0.0f32; if d.mode == RnnMode::Gru { b * gu } else { 0 }];
    let mut tanh_c = vec![0.0f32; if d.mode == RnnMode::Lstm { b * u } else { 0 }];
    for (i, &(t, n)) in steps.iter().enumerate() {
        let (cur, next) = match i % 2 {
            0 => (bufs.h, bufs.h_alt),
            _ => (bufs.h_alt, bufs.h),
        };
        if i > 0 && next.ptr == bufs.h.ptr {
            // Rows that stopped after the last step keep their final state, which that step
            // wrote into `h_alt`: into `h` with it (nobody reads `h` during this step).
            let stopped = n..steps[i - 1].1;
            // SAFETY: those rows of `h` are read by no part before the sweep ends.
            unsafe { bufs.h_alt.copy_cols(bufs.h, stopped, hid, units) };
        }
        let g = match x {
            SweepInput::Features(_) => &mut xg[t * b * gu..][..n * gu],
            SweepInput::Tokens(ids) => lookup(packed, d, units, &ids[t * b..][..n], None, &mut xg),
            SweepInput::TokensAndGates(ids, extra) => {
                let extra = &extra[t * b * d.gates()..][..n * d.gates()];
                lookup(packed, d, units, &ids[t * b..][..n], Some(extra), &mut xg)
            }
        };
        // SAFETY: during a step every part reads rows 0..n of `cur` and writes only its own
        // units of `next`, `c` and `out` (the barrier below ends the step).
        let state = unsafe { cur.get(0, n * hid) };
        // (B) and (C), row by row for the kernels' contiguous rows.
        match d.mode {
            RnnMode::Lstm => {
                matmul_packed(g, state, Trans::N, &shard.w_hh, n, true, 1);
                for r in 0..n {
                    let at = r * hid + units.start;
                    // SAFETY: as above.
                    let (c, h) = unsafe { (bufs.c.get_mut(at, u), next.get_mut(at, u)) };
                    let tc = &mut tanh_c[r * u..][..u];
                    lstm::forward(1, u, &mut g[r * gu..][..gu], c, h, tc);
                }
            }
            RnnMode::Gru => {
                let hg = &mut hg[..n * gu];
                matmul_packed(hg, state, Trans::N, &shard.w_hh, n, false, 1);
                for r in 0..n {
                    let at = r * hid + units.start;
                    // SAFETY: as above.
                    let h = unsafe { next.get_mut(at, u) };
                    h.copy_from_slice(&state[at..][..u]);
                    let (gr, hgr) = (&mut g[r * gu..][..gu], &mut hg[r * gu..][..gu]);
                    gru::forward(1, u, gr, hgr, shard.b_hh.as_deref(), h);
                }
            }
            RnnMode::RnnTanh | RnnMode::RnnRelu => {
                matmul_packed(g, state, Trans::N, &shard.w_hh, n, true, 1);
                for r in 0..n {
                    // SAFETY: as above.
                    let h = unsafe { next.get_mut(r * hid + units.start, u) };
                    elman::forward(1, u, d.mode.nonlinearity(), &mut g[r * u..][..u], h);
                }
            }
        }
        if bufs.out.len > 0 {
            for r in 0..n {
                let at = r * hid + units.start;
                // SAFETY: as above.
                unsafe { bufs.out.get_mut(t * b * hid + at, u) }
                    .copy_from_slice(unsafe { next.get(at, u) });
            }
        }
        let Some(&(_, n_next)) = steps.get(i + 1) else {
            return;
        };
        if next.ptr != bufs.h.ptr {
            // Rows that start at the next step begin from their state in `h`.
            // SAFETY: rows n.. of `next` are read by no part during this step.
            unsafe { bufs.h.copy_cols(next, n..n_next.max(n), hid, units) };
        }
        if !barrier.wait() {
            return;
        }
    }
}

/// A step's rows of this shard's columns of the input projection, from the table (plus
/// `extra`'s columns), into `buf`.
fn lookup<'a>(
    packed: &PackedDir,
    d: Dims,
    units: &Range<usize>,
    ids: &[u32],
    extra: Option<&[f32]>,
    buf: &'a mut Vec<f32>,
) -> &'a mut [f32] {
    let table = packed.table.as_deref().expect("token input needs a table");
    let gh = d.gates();
    buf.clear();
    for (r, &id) in ids.iter().enumerate() {
        let start = buf.len();
        gather(&table[id as usize * gh..][..gh], d.hidden, units, buf);
        if let Some(extra) = extra {
            let u = units.len();
            for (q, block) in extra[r * gh..][..gh].chunks_exact(d.hidden).enumerate() {
                let dst = &mut buf[start + q * u..][..u];
                dst.iter_mut()
                    .zip(&block[units.clone()])
                    .for_each(|(g, &x)| *g += x);
            }
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::Param;
    use crate::Tensor;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    fn param(shape: &[usize], rng: &mut rand_chacha::ChaCha8Rng) -> Param {
        let n = shape.iter().product();
        Param::new("w", Tensor::from_vec(shape, random(n, rng)).unwrap())
    }

    /// The sharded sweep against the one-thread sweep: every cell, features and both kinds of
    /// token input, both directions, rows that stop (forward) or start (reverse) at different
    /// steps, with and without per-step outputs. Bits must match.
    #[test]
    fn sharded_sweep_gives_the_bits_of_one_thread() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let (input, steps, vocab) = (24, 7, 11);
        // Hidden 148 splits into 80 + 68 units: a shard that is not whole registers.
        for (mode, hidden) in [
            (RnnMode::Lstm, 128),
            (RnnMode::Gru, 148),
            (RnnMode::RnnTanh, 96),
        ] {
            let gh = mode.gates() * hidden;
            let w = DirWeights {
                w_ih: param(&[gh, input], &mut rng),
                w_hh: param(&[gh, hidden], &mut rng),
                b_ih: Some(param(&[gh], &mut rng)),
                b_hh: Some(param(&[gh], &mut rng)),
                w_hr: None,
            };
            for lengths in [vec![7], vec![7, 7, 5, 2, 1], vec![7, 6, 6, 4, 3, 3, 1, 1]] {
                let batch = lengths.len();
                let d = Dims {
                    mode,
                    input,
                    hidden,
                    out: hidden,
                    steps,
                    batch,
                };
                let active: Vec<usize> = (0..steps)
                    .map(|t| lengths.iter().filter(|&&l| l > t).count())
                    .collect();
                let mut packed = PackedDir::new(&w, d);
                packed.tabulate(&random(vocab * input, &mut rng), vocab);
                let shards = Shards::new(&w, &packed, d, 2).expect("two shards");
                let x = random(steps * batch * input, &mut rng);
                let ids: Vec<u32> = (0..steps * batch)
                    .map(|_| rng.gen_range(0..vocab as u32))
                    .collect();
                let extra = random(steps * batch * gh, &mut rng);
                let (h0, c0) = (
                    random(batch * hidden, &mut rng),
                    random(batch * hidden, &mut rng),
                );
                let inputs = [
                    ("features", SweepInput::Features(&x)),
                    ("tokens", SweepInput::Tokens(&ids)),
                    ("tokens and gates", SweepInput::TokensAndGates(&ids, &extra)),
                ];
                for (kind, x, reverse, outputs) in inputs.iter().flat_map(|&(k, x)| {
                    [
                        (k, x, false, true),
                        (k, x, true, true),
                        (k, x, false, false),
                    ]
                }) {
                    let at = format!("{mode:?} {lengths:?} {kind} reverse {reverse} out {outputs}");
                    let c_len = if mode == RnnMode::Lstm { c0.len() } else { 0 };
                    let out_len = if outputs { steps * batch * hidden } else { 0 };
                    let (mut h1, mut c1, mut o1) =
                        (h0.clone(), c0[..c_len].to_vec(), vec![0.0; out_len]);
                    let plain = super::super::forward(
                        &w, &packed, d, x, &active, reverse, &mut h1, &mut c1, &mut o1, false, 1,
                    );
                    assert!(plain.is_none());
                    let (mut h2, mut c2, mut o2) =
                        (h0.clone(), c0[..c_len].to_vec(), vec![0.0; out_len]);
                    // Another test may hold the team for a moment: then the sweep declines.
                    let ran = (0..1000).any(|_| {
                        let done = forward(
                            &shards, &packed, d, x, &active, reverse, &mut h2, &mut c2, &mut o2,
                        );
                        if !done {
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        done
                    });
                    assert!(ran, "{at}: the sharded sweep ran");
                    assert_eq!(h1, h2, "{at}: h");
                    assert_eq!(c1, c2, "{at}: c");
                    assert_eq!(o1, o2, "{at}: outputs");
                }
            }
        }
    }
}
