//! The SIMD paths agree bit for bit: AVX-512 and AVX2 products and gate kernels on many shapes
//! and on random data with large and small magnitudes, each against a scalar model of the one
//! FMA chain per element that `recur::gemm` guarantees. Tests of AVX-512 against AVX2 are
//! skipped (with a note on stderr) when the CPU lacks AVX-512.

use recur::gemm::{matmul_packed, matmul_with_path, PackedB, SimdPath, Trans, KC};
use recur::kernels::{elman, gru, lstm};

/// Deterministic values: mostly in [-1, 1), with a sprinkling of large, tiny and zero values.
fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
            match x % 29 {
                0 => u * 1e4,
                1 => u * 1e-30,
                2 => 0.0,
                3 => u * 60.0,
                _ => u,
            }
        })
        .collect()
}

/// The bits of a slice, for exact comparisons with readable failures.
fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Whether the CPU runs both SIMD paths; else a note on stderr.
fn both_paths(test: &str) -> bool {
    let ok = SimdPath::Avx512.is_supported() && SimdPath::Avx2.is_supported();
    if !ok {
        eprintln!("{test}: skipped, this CPU lacks AVX-512 (or AVX2)");
    }
    ok
}

/// The SIMD paths this CPU runs.
fn simd_paths() -> Vec<SimdPath> {
    [SimdPath::Avx2, SimdPath::Avx512]
        .into_iter()
        .filter(|p| p.is_supported())
        .collect()
}

/// The documented chain, scalar: per k-block of [`KC`], `acc = fma(a, b, acc)` from 0 in order
/// of p, then `c = acc` (first block without `accumulate`) or `c = c + acc`.
#[allow(clippy::too_many_arguments)]
fn model(
    c: &mut [f32],
    a: &[f32],
    ta: Trans,
    b: &[f32],
    tb: Trans,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
) {
    for i in 0..m {
        for j in 0..n {
            if k == 0 && !accumulate {
                c[i * n + j] = 0.0;
            }
            for p0 in (0..k).step_by(KC) {
                let mut acc = 0.0f32;
                for p in p0..k.min(p0 + KC) {
                    let av = if ta == Trans::N {
                        a[i * k + p]
                    } else {
                        a[p * m + i]
                    };
                    let bv = if tb == Trans::N {
                        b[p * n + j]
                    } else {
                        b[j * k + p]
                    };
                    acc = av.mul_add(bv, acc);
                }
                let e = &mut c[i * n + j];
                *e = if accumulate || p0 > 0 { *e + acc } else { acc };
            }
        }
    }
}

/// (m, n, k): one row, edge tiles of both paths (rows not a multiple of 6 or 12, columns not a
/// multiple of 16 or 32), k across several k-blocks and k = 0, row chunks past both paths' MC,
/// and products big enough to be split between 2 threads.
const SHAPES: [(usize, usize, usize); 16] = [
    (1, 1, 1),
    (1, 33, 300),
    (1, 300, 600),
    (2, 16, 5),
    (5, 17, 7),
    (6, 32, 256),
    (7, 48, 257),
    (12, 31, 512),
    (13, 65, 3),
    (25, 47, 513),
    (37, 100, 0),
    (64, 512, 130),
    (70, 97, 769),
    (100, 1, 40),
    (263, 40, 33),
    (3, 2048, 20),
];

#[test]
fn gemm_paths_agree_with_the_fma_chain_model_bit_for_bit() {
    for &(m, n, k) in &SHAPES {
        for (ta, tb) in [
            (Trans::N, Trans::T),
            (Trans::N, Trans::N),
            (Trans::T, Trans::N),
            (Trans::T, Trans::T),
        ] {
            let (a, b) = (data(m * k, 1 + m as u64), data(k * n, 2 + n as u64));
            for accumulate in [false, true] {
                let init = data(m * n, 3);
                let mut want = init.clone();
                model(&mut want, &a, ta, &b, tb, (m, n, k), accumulate);
                for path in simd_paths() {
                    for threads in [1, 2] {
                        let mut c = init.clone();
                        matmul_with_path(
                            path, &mut c, &a, ta, &b, tb, m, n, k, accumulate, threads,
                        );
                        assert_eq!(
                            bits(&c),
                            bits(&want),
                            "{} {m}x{n}x{k} {ta:?}{tb:?} acc={accumulate} threads={threads}",
                            path.name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn avx512_and_avx2_products_are_bit_identical() {
    if !both_paths("avx512_and_avx2_products_are_bit_identical") {
        return;
    }
    for &(m, n, k) in &SHAPES {
        for ta in [Trans::N, Trans::T] {
            let (a, b) = (data(m * k, 4), data(k * n, 5));
            let p2 = PackedB::with_path(SimdPath::Avx2, &b, Trans::T, k, n);
            let p5 = PackedB::with_path(SimdPath::Avx512, &b, Trans::T, k, n);
            assert_eq!((p2.path(), p5.path()), (SimdPath::Avx2, SimdPath::Avx512));
            for accumulate in [false, true] {
                for threads in [1, 2] {
                    let init = data(m * n, 6);
                    let (mut c2, mut c5) = (init.clone(), init.clone());
                    matmul_packed(&mut c2, &a, ta, &p2, m, accumulate, threads);
                    matmul_packed(&mut c5, &a, ta, &p5, m, accumulate, threads);
                    assert_eq!(
                        bits(&c2),
                        bits(&c5),
                        "{m}x{n}x{k} {ta:?} acc={accumulate} threads={threads}"
                    );
                }
            }
        }
    }
}

/// Batch invariance on each path: a row alone gives the bits of that row in any batch, with 1
/// or 2 threads.
#[test]
fn each_path_is_batch_invariant() {
    let (n, k) = (300, 700);
    let b = data(n * k, 7);
    let a = data(80 * k, 8);
    for path in simd_paths() {
        let packed = PackedB::with_path(path, &b, Trans::T, k, n);
        for row in [0, 11, 12, 13, 79] {
            let mut alone = vec![0.0f32; n];
            matmul_packed(
                &mut alone,
                &a[row * k..][..k],
                Trans::N,
                &packed,
                1,
                false,
                1,
            );
            for (m, threads) in [(row + 1, 1), (row + 1, 2), (80, 1), (80, 2)] {
                let mut c = vec![0.0f32; m * n];
                matmul_packed(&mut c, &a[..m * k], Trans::N, &packed, m, false, threads);
                assert_eq!(
                    bits(&c[row * n..][..n]),
                    bits(&alone),
                    "{} row {row} of {m}, {threads} threads",
                    path.name()
                );
            }
        }
    }
}

/// Runs `f` on every path the CPU has (portable included) and checks all outputs equal the
/// first path's, bit for bit.
fn same_on_all_paths(what: &str, f: impl Fn(SimdPath) -> Vec<Vec<f32>>) {
    let paths: Vec<SimdPath> = SimdPath::ALL
        .into_iter()
        .filter(|p| p.is_supported())
        .collect();
    let want = f(paths[0]);
    for &path in &paths[1..] {
        let got = f(path);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                bits(g),
                bits(w),
                "{what}: output {i}, {} vs {}",
                path.name(),
                paths[0].name()
            );
        }
    }
}

#[test]
fn gate_kernels_are_bit_identical_on_every_path() {
    // Without AVX-512 this still compares AVX2 with portable.
    both_paths("gate_kernels_are_bit_identical_on_every_path (AVX-512 part)");
    for (rows, hidden) in [(1, 1), (3, 17), (64, 512), (5, 100)] {
        let h = rows * hidden;
        same_on_all_paths("lstm forward+backward", |path| {
            let mut gates = data(4 * h, 10);
            let (mut c, mut hh, mut tc) = (data(h, 11), vec![0.0; h], vec![0.0; h]);
            let c_prev = c.clone();
            lstm::forward_on(path, rows, hidden, &mut gates, &mut c, &mut hh, &mut tc);
            let (dh, mut dc, mut dg) = (data(h, 12), data(h, 13), vec![0.0; 4 * h]);
            lstm::backward_on(
                path, rows, hidden, &gates, &c_prev, &tc, &dh, &mut dc, &mut dg,
            );
            vec![gates, c, hh, tc, dc, dg]
        });
        for bias in [false, true] {
            same_on_all_paths("gru forward+backward", |path| {
                let (mut xg, mut hg, b_hh) =
                    (data(3 * h, 14), data(3 * h, 15), data(3 * hidden, 16));
                let mut state = data(h, 17);
                let h_prev = state.clone();
                let b = bias.then_some(&b_hh[..]);
                gru::forward_on(path, rows, hidden, &mut xg, &mut hg, b, &mut state);
                let (mut dh, mut dxg, mut dhg) = (data(h, 18), vec![0.0; 3 * h], vec![0.0; 3 * h]);
                gru::backward_on(
                    path, rows, hidden, &xg, &hg, &h_prev, &mut dh, &mut dxg, &mut dhg,
                );
                vec![xg, hg, state, dh, dxg, dhg]
            });
        }
        for act in [elman::Nonlinearity::Tanh, elman::Nonlinearity::Relu] {
            same_on_all_paths("elman forward+backward", |path| {
                let (mut gates, mut hh) = (data(h, 19), vec![0.0; h]);
                elman::forward_on(path, rows, hidden, act, &mut gates, &mut hh);
                let (dh, mut dg) = (data(h, 20), vec![0.0; h]);
                elman::backward_on(path, rows, hidden, act, &gates, &dh, &mut dg);
                vec![gates, hh, dg]
            });
        }
    }
}

/// The activations alone, lane by lane, across magnitudes from 1e-38 to 1e38 (the vector
/// polynomial exp/tanh of every path against each other).
#[test]
fn activations_are_bit_identical_on_every_path() {
    let mut x: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.05).collect();
    for e in -38..=38 {
        let v = 10f32.powi(e);
        x.extend([v, -v, 1.5 * v, -0.7 * v]);
    }
    x.extend([
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        88.5,
        -87.5,
        0.625,
        -0.625,
    ]);
    let n = x.len();
    same_on_all_paths("tanh (elman)", |path| {
        let (mut g, mut h) = (x.clone(), vec![0.0; n]);
        elman::forward_on(path, 1, n, elman::Nonlinearity::Tanh, &mut g, &mut h);
        vec![g]
    });
    same_on_all_paths("sigmoid and tanh (lstm)", |path| {
        let mut gates: Vec<f32> = x.iter().cycle().take(4 * n).copied().collect();
        let (mut c, mut hh, mut tc) = (x.clone(), vec![0.0; n], vec![0.0; n]);
        lstm::forward_on(path, 1, n, &mut gates, &mut c, &mut hh, &mut tc);
        vec![gates, c, hh, tc]
    });
}
