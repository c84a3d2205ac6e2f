//! Decoding allocates nothing per step: a counting global allocator shows that, once warm, the
//! decoder's step and the gather of surviving rows allocate nothing, and that whole decodes
//! allocate no more for 4× as many steps (beam search: but for its trellis' amortized growth).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use recur::nn::RnnMode;
use recur::seeded_rng;
use recur::seq2seq::inference::DecodeState;
use recur::seq2seq::search::{decode, DecodeOptions, MaxLen, StepModel};
use recur::seq2seq::word_freq::WordFreq;
use recur::seq2seq::{AttentionKind, Seq2Seq, Seq2SeqConfig};

/// Counts the allocations (and reallocations) of the thread that enabled counting.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the allocator also serves thread teardown, after the locals are gone.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|on| on.set(true));
    let out = f();
    COUNTING.with(|on| on.set(false));
    (out, COUNT.with(|c| c.get()))
}

fn model(attention: AttentionKind, cell: RnnMode, layers: usize) -> Seq2Seq {
    let cfg = Seq2SeqConfig {
        cell,
        src_vocab: 11,
        tgt_vocab: 13,
        emb_dim: 6,
        hidden_size: 5,
        layers,
        bidirectional: true,
        attention,
        attn_dim: 7,
        dropout: 0.0,
    };
    Seq2Seq::new(cfg, &mut seeded_rng(5)).unwrap()
}

const ALL: [AttentionKind; 4] = [
    AttentionKind::None,
    AttentionKind::Bahdanau,
    AttentionKind::LuongDot,
    AttentionKind::LuongGeneral,
];

fn sources() -> Vec<Vec<i64>> {
    vec![vec![4, 5, 6], vec![7, 8], vec![9, 10, 4, 5, 6], vec![6]]
}

fn state(m: &Seq2Seq, srcs: &[Vec<i64>]) -> DecodeState {
    let b = srcs.len();
    let steps = srcs.iter().map(|s| s.len()).max().unwrap();
    let mut src = vec![0i64; steps * b];
    for (j, s) in srcs.iter().enumerate() {
        for (t, &id) in s.iter().enumerate() {
            src[t * b + j] = id;
        }
    }
    let lengths: Vec<usize> = srcs.iter().map(|s| s.len()).collect();
    // As decoding encodes: weights packed, keys projected for Bahdanau's decoder.
    let packed = m.pack().unwrap();
    let (memory, decoder) = m.encode_with(Some(&packed), &src, &lengths).unwrap();
    assert_eq!(
        memory.has_values(),
        m.config.attention == AttentionKind::Bahdanau
    );
    DecodeState::new(memory, decoder, packed.decoder)
}

#[test]
fn warm_step_and_select_allocate_nothing() {
    recur::gemm::set_num_threads(1);
    for att in ALL {
        for (cell, layers) in [(RnnMode::Lstm, 2), (RnnMode::Gru, 1), (RnnMode::RnnTanh, 1)] {
            let m = model(att, cell, layers);
            let mut st = state(&m, &sources());
            let (mut logp, mut attn) = (Vec::new(), Vec::new());
            // Beams: every source's row expands to 3 (the widest working set), then steps run
            // with rows gathered in a different order each time.
            let expand: Vec<usize> = (0..4).flat_map(|r| [r, r, r]).collect();
            m.select(&mut st, &expand).unwrap();
            let shuffle: Vec<usize> = (0..12).map(|r| (r * 5 + 1) % 12).collect();
            let mut prev: Vec<u32> = (0..12).map(|r| 4 + r % 9).collect();
            let mut run = |steps: usize, st: &mut DecodeState| {
                for _ in 0..steps {
                    m.step(st, &prev, &mut logp, &mut attn).unwrap();
                    m.select(st, &shuffle).unwrap();
                    prev.rotate_left(1);
                }
            };
            run(2, &mut st); // warm-up: buffers grow to their size
            let ((), n) = allocations(|| run(10, &mut st));
            assert_eq!(n, 0, "{att:?} {cell:?}: allocations in 10 warm steps");
            // Fewer rows (finished hypotheses leave): still nothing.
            let fewer: Vec<usize> = vec![3, 0, 7];
            let ((), n) = allocations(|| {
                m.select(&mut st, &fewer).unwrap();
                m.step(&mut st, &prev[..3], &mut logp, &mut attn).unwrap();
            });
            assert_eq!(n, 0, "{att:?} {cell:?}: allocations after shrinking");
        }
    }
}

/// Allocations of a whole decode forced to run exactly `steps` steps (no EOS before the cap).
fn decode_allocations(m: &Seq2Seq, beam: usize, steps: usize) -> u64 {
    decode_allocations_with(m, beam, steps, None)
}

/// [`decode_allocations`] with word frequencies (weight 1) when given.
fn decode_allocations_with(
    m: &Seq2Seq,
    beam: usize,
    steps: usize,
    word_freq: Option<Arc<WordFreq>>,
) -> u64 {
    let srcs = sources();
    let lens: Vec<usize> = srcs.iter().map(|s| s.len()).collect();
    let opts = DecodeOptions {
        beam_size: beam,
        nbest: beam.min(2),
        max_len: MaxLen::Fixed(steps),
        min_len: steps,
        word_freq_weight: Some(1.0),
        word_freq,
        ..DecodeOptions::default()
    };
    let mut st = state(m, &srcs);
    let (hyps, n) = allocations(|| decode(m, &mut st, &lens, &opts).unwrap());
    assert!(hyps
        .iter()
        .all(|h| h.iter().all(|h| h.tokens.len() == steps)));
    n
}

#[test]
fn decode_allocations_do_not_grow_with_steps() {
    recur::gemm::set_num_threads(1);
    for att in ALL {
        let m = model(att, RnnMode::Lstm, 1);
        for beam in [1, 3] {
            let short = decode_allocations(&m, beam, 8);
            let long = decode_allocations(&m, beam, 32);
            // Greedy: nothing per step. Beam: only the trellis (the search's history, one
            // node per kept candidate) grows, by amortized doubling: for 4x the steps at most
            // 2 more allocations (it would be 24x more if anything allocated per step).
            let slack = if beam == 1 { 0 } else { 2 };
            assert!(
                long <= short + slack,
                "{att:?} beam {beam}: {short} allocations for 8 steps, {long} for 32"
            );
        }
    }
}

/// An ensemble's step (every member's step, then the means) and gather allocate nothing once
/// warm either: each member's buffers live in the ensemble state, reused across steps.
#[test]
fn warm_ensemble_steps_allocate_nothing() {
    use recur::seq2seq::ensemble::{Ensemble, EnsembleState};
    recur::gemm::set_num_threads(1);
    let members = [
        model(AttentionKind::Bahdanau, RnnMode::Lstm, 2),
        model(AttentionKind::LuongGeneral, RnnMode::Gru, 1),
        model(AttentionKind::None, RnnMode::RnnTanh, 1),
    ];
    let ensemble = Ensemble::new(members.iter().collect()).unwrap();
    let states = members.iter().map(|m| state(m, &sources())).collect();
    let mut st = EnsembleState::new(states);
    let (mut logp, mut attn) = (Vec::new(), Vec::new());
    let expand: Vec<usize> = (0..4).flat_map(|r| [r, r, r]).collect();
    ensemble.select(&mut st, &expand).unwrap();
    let shuffle: Vec<usize> = (0..12).map(|r| (r * 5 + 1) % 12).collect();
    let mut prev: Vec<u32> = (0..12).map(|r| 4 + r % 9).collect();
    let mut run = |steps: usize, st: &mut EnsembleState<DecodeState>| {
        for _ in 0..steps {
            ensemble.step(st, &prev, &mut logp, &mut attn).unwrap();
            ensemble.select(st, &shuffle).unwrap();
            prev.rotate_left(1);
        }
    };
    run(2, &mut st);
    let ((), n) = allocations(|| run(10, &mut st));
    assert_eq!(n, 0, "allocations in 10 warm ensemble steps");
    assert_eq!(logp.len(), 12 * 13);
    assert!(!attn.is_empty(), "the mean of the members with attention");
}

/// Word frequencies cost a hash lookup per finished hypothesis and no allocation: a beam search
/// with a table allocates exactly as much as one without.
#[test]
fn word_frequencies_allocate_nothing() {
    recur::gemm::set_num_threads(1);
    // Target ids 4..13 written as the letters a..i.
    let encode = |w: &str| -> Option<Vec<u32>> {
        w.bytes()
            .map(|b| (b'a'..=b'i').contains(&b).then(|| 4 + u32::from(b - b'a')))
            .collect()
    };
    let list = b"ab\t0.5\nbc\t0.1\nabcdefgh\t0.01\n";
    let path = std::path::Path::new("list.tsv");
    let table = Arc::new(WordFreq::parse(list, path, encode, Some(1e-6)).unwrap());
    let m = model(AttentionKind::Bahdanau, RnnMode::Lstm, 1);
    decode_allocations(&m, 3, 32); // warm-up: the buffers that pass from decode to decode
    for steps in [8, 32] {
        let without = decode_allocations_with(&m, 3, steps, None);
        let with = decode_allocations_with(&m, 3, steps, Some(Arc::clone(&table)));
        assert_eq!(with, without, "{steps} steps");
    }
}
