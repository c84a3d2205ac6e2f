//! Encoded examples and length-bucketed, padded, time-major batches.
//!
//! **Over-long and empty inputs.** [`encode_pairs`] drops (for training) every pair whose source
//! is longer than [`EncodeOptions::max_src_len`], whose target is longer than
//! [`EncodeOptions::max_tgt_len`], or whose source is empty (a packed RNN cannot take a
//! zero-length sequence); each drop is listed in [`Encoded`] so the caller can report the count.
//! At translation time inputs are never dropped: that path splits or rejects long inputs itself.
//!
//! **Token budget.** A batch of `B` examples whose longest source has `S` tokens and longest
//! target `T` tokens (target + EOS) costs `B × max(S, T)` tokens, padding included (the larger
//! of the two padded tensors, as fairseq counts). [`make_batches`] keeps every batch within
//! [`BatchOptions::max_tokens`] and [`BatchOptions::max_sentences`].

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::token::Tokenizer;
use super::tsv::Pair;
use super::vocab::{Vocab, BOS, EOS, PAD};
use crate::error::{Error, Result};

/// One encoded pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// Source ids (no BOS/EOS).
    pub src: Vec<i64>,
    /// Target ids (no BOS/EOS; batching adds BOS to `tgt_in` and EOS to `tgt_out`).
    pub tgt: Vec<i64>,
    /// Index of the pair this came from in the slice given to [`encode_pairs`].
    pub index: usize,
}

impl Example {
    /// The padded cost of this example alone: `max(len(src), len(tgt) + 1)`.
    pub fn cost(&self) -> usize {
        self.src.len().max(self.tgt.len() + 1)
    }
}

/// Length limits for [`encode_pairs`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Drop pairs whose source has more tokens than this.
    pub max_src_len: Option<usize>,
    /// Drop pairs whose target has more tokens than this (EOS not counted).
    pub max_tgt_len: Option<usize>,
}

/// The result of [`encode_pairs`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoded {
    /// The kept examples, in input order.
    pub examples: Vec<Example>,
    /// Indices of pairs dropped because the source was too long.
    pub too_long_src: Vec<usize>,
    /// Indices of pairs dropped because the target was too long.
    pub too_long_tgt: Vec<usize>,
    /// Indices of pairs dropped because the source had no tokens.
    pub empty_src: Vec<usize>,
}

impl Encoded {
    /// Total number of dropped pairs.
    pub fn dropped(&self) -> usize {
        self.too_long_src.len() + self.too_long_tgt.len() + self.empty_src.len()
    }
}

/// Tokenizes and encodes pairs, dropping the ones that break the limits (see the module docs).
pub fn encode_pairs(
    pairs: &[Pair],
    tokenizers: (Tokenizer, Tokenizer),
    vocabs: (&Vocab, &Vocab),
    opts: &EncodeOptions,
) -> Encoded {
    let mut out = Encoded::default();
    for (index, p) in pairs.iter().enumerate() {
        let src = tokenizers.0.tokenize(&p.src);
        let tgt = tokenizers.1.tokenize(&p.tgt);
        if src.is_empty() {
            out.empty_src.push(index);
        } else if opts.max_src_len.is_some_and(|m| src.len() > m) {
            out.too_long_src.push(index);
        } else if opts.max_tgt_len.is_some_and(|m| tgt.len() > m) {
            out.too_long_tgt.push(index);
        } else {
            out.examples.push(Example {
                src: vocabs.0.encode(&src),
                tgt: vocabs.1.encode(&tgt),
                index,
            });
        }
    }
    out
}

/// How to group examples into batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// Maximum `B × max(S, T)` per batch, padding included.
    pub max_tokens: usize,
    /// Maximum examples per batch, if any.
    pub max_sentences: Option<usize>,
    /// Shuffle ties within a length and the batch order; `false` gives length order.
    pub shuffle: bool,
    /// Seed of the shuffle; use e.g. `seed + epoch` for a new order each epoch.
    pub seed: u64,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            max_tokens: 4096,
            max_sentences: None,
            shuffle: true,
            seed: 0,
        }
    }
}

/// A padded batch, laid out time-major as the model takes it.
///
/// Columns are ordered by descending source length (ties by example index), as packed RNN input
/// requires; `indices[b]` says which example column `b` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Source ids, shape (S, B), row-major: `src[t * B + b]`, padded with [`PAD`].
    pub src: Vec<i64>,
    /// Source length per column, non-increasing.
    pub src_lengths: Vec<usize>,
    /// Decoder input `BOS, y1 .. yn`, shape (T, B), padded with [`PAD`].
    pub tgt_in: Vec<i64>,
    /// Decoder target `y1 .. yn, EOS`, shape (T, B), padded with [`PAD`].
    pub tgt_out: Vec<i64>,
    /// Target length per column (n + 1).
    pub tgt_lengths: Vec<usize>,
    /// `Example::index` of each column.
    pub indices: Vec<usize>,
    /// S: longest source.
    pub src_len: usize,
    /// T: longest target including BOS/EOS.
    pub tgt_len: usize,
}

impl Batch {
    /// Pads the given examples into one batch (any order in, sorted columns out).
    pub fn collate(examples: &[&Example]) -> Batch {
        let mut ex: Vec<&Example> = examples.to_vec();
        ex.sort_by(|a, b| b.src.len().cmp(&a.src.len()).then(a.index.cmp(&b.index)));
        let bsz = ex.len();
        let s = ex.iter().map(|e| e.src.len()).max().unwrap_or(0);
        let t = ex.iter().map(|e| e.tgt.len() + 1).max().unwrap_or(0);
        let mut src = vec![i64::from(PAD); s * bsz];
        let mut tgt_in = vec![i64::from(PAD); t * bsz];
        let mut tgt_out = vec![i64::from(PAD); t * bsz];
        for (b, e) in ex.iter().enumerate() {
            for (i, &id) in e.src.iter().enumerate() {
                src[i * bsz + b] = id;
            }
            tgt_in[b] = i64::from(BOS);
            for (i, &id) in e.tgt.iter().enumerate() {
                tgt_in[(i + 1) * bsz + b] = id;
                tgt_out[i * bsz + b] = id;
            }
            tgt_out[e.tgt.len() * bsz + b] = i64::from(EOS);
        }
        Batch {
            src,
            src_lengths: ex.iter().map(|e| e.src.len()).collect(),
            tgt_in,
            tgt_out,
            tgt_lengths: ex.iter().map(|e| e.tgt.len() + 1).collect(),
            indices: ex.iter().map(|e| e.index).collect(),
            src_len: s,
            tgt_len: t,
        }
    }

    /// B: number of examples.
    pub fn size(&self) -> usize {
        self.indices.len()
    }

    /// The padded cost `B × max(S, T)` counted against the token budget.
    pub fn tokens(&self) -> usize {
        self.size() * self.src_len.max(self.tgt_len)
    }

    /// Target tokens that are not padding (the loss normaliser).
    pub fn target_tokens(&self) -> usize {
        self.tgt_lengths.iter().sum()
    }
}

/// Groups examples into batches of similar length within the budget, each example exactly once.
///
/// Examples are sorted by (source length, target length) — after a seeded shuffle when
/// `opts.shuffle`, so equal lengths mix differently per seed — cut greedily into batches, and the
/// batch order is shuffled. The same examples, options and seed always give the same batches.
/// Errors if `max_tokens` or `max_sentences` is 0 or an example alone exceeds `max_tokens`
/// (lower `max_src_len`/`max_tgt_len` or raise the budget).
pub fn make_batches(examples: &[Example], opts: &BatchOptions) -> Result<Vec<Batch>> {
    let groups = batch_groups(examples, opts)?;
    Ok(groups.iter().map(|g| Batch::collate(g)).collect())
}

/// The examples of each batch of [`make_batches`], in the same order, before padding: data-
/// parallel training splits each batch across processes before collating its share.
pub fn batch_groups<'a>(
    examples: &'a [Example],
    opts: &BatchOptions,
) -> Result<Vec<Vec<&'a Example>>> {
    const OP: &str = "make_batches";
    if opts.max_tokens == 0 {
        return Err(Error::arg(OP, "max_tokens", ">= 1", 0));
    }
    if opts.max_sentences == Some(0) {
        return Err(Error::arg(OP, "max_sentences", ">= 1", 0));
    }
    if let Some(e) = examples.iter().max_by_key(|e| e.cost()) {
        if e.cost() > opts.max_tokens {
            return Err(Error::arg(
                OP,
                "max_tokens",
                format!(">= {} (the cost of example {})", e.cost(), e.index),
                opts.max_tokens,
            ));
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut order: Vec<&Example> = examples.iter().collect();
    if opts.shuffle {
        order.shuffle(&mut rng);
    }
    // Stable sort: ties keep the shuffled order.
    order.sort_by_key(|e| (e.src.len(), e.tgt.len()));
    let max_sent = opts.max_sentences.unwrap_or(usize::MAX);
    let mut batches = Vec::new();
    let mut cur: Vec<&Example> = Vec::new();
    let mut cur_width = 0;
    for e in order {
        let width = cur_width.max(e.cost());
        if !cur.is_empty() && ((cur.len() + 1) * width > opts.max_tokens || cur.len() == max_sent) {
            batches.push(std::mem::take(&mut cur));
            cur_width = e.cost();
        } else {
            cur_width = width;
        }
        cur.push(e);
    }
    if !cur.is_empty() {
        batches.push(cur);
    }
    if opts.shuffle {
        batches.shuffle(&mut rng);
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(index: usize, s: usize, t: usize) -> Example {
        Example {
            src: (0..s).map(|i| 4 + (index + i) as i64 % 7).collect(),
            tgt: (0..t).map(|i| 4 + (index * 3 + i) as i64 % 5).collect(),
            index,
        }
    }

    fn corpus(n: usize) -> Vec<Example> {
        (0..n)
            .map(|i| ex(i, 1 + (i * 7) % 13, (i * 5) % 17))
            .collect()
    }

    #[test]
    fn collate_is_time_major_padded_and_sorted() {
        let a = Example {
            src: vec![5, 6],
            tgt: vec![7],
            index: 0,
        };
        let b = Example {
            src: vec![8, 9, 10],
            tgt: vec![11, 12, 13],
            index: 1,
        };
        let batch = Batch::collate(&[&a, &b]);
        assert_eq!(batch.indices, vec![1, 0]);
        assert_eq!(batch.src_lengths, vec![3, 2]);
        assert_eq!((batch.src_len, batch.tgt_len, batch.size()), (3, 4, 2));
        let (pad, bos, eos) = (i64::from(PAD), i64::from(BOS), i64::from(EOS));
        assert_eq!(batch.src, vec![8, 5, 9, 6, 10, pad]);
        assert_eq!(batch.tgt_in, vec![bos, bos, 11, 7, 12, pad, 13, pad]);
        assert_eq!(batch.tgt_out, vec![11, 7, 12, eos, 13, pad, eos, pad]);
        assert_eq!(batch.tgt_lengths, vec![4, 2]);
        assert_eq!((batch.tokens(), batch.target_tokens()), (8, 6));
    }

    #[test]
    fn batches_cover_every_example_once_within_budget() {
        let examples = corpus(1000);
        for (max_tokens, max_sentences) in [(64, None), (100, Some(7)), (18, Some(1))] {
            let opts = BatchOptions {
                max_tokens,
                max_sentences,
                shuffle: true,
                seed: 3,
            };
            let batches = make_batches(&examples, &opts).unwrap();
            let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..1000).collect::<Vec<_>>());
            for b in &batches {
                assert!(b.tokens() <= max_tokens, "{} > {max_tokens}", b.tokens());
                assert!(b.size() <= max_sentences.unwrap_or(usize::MAX));
                assert_eq!(b.src.len(), b.src_len * b.size());
                assert_eq!(b.tgt_in.len(), b.tgt_len * b.size());
            }
        }
    }

    #[test]
    fn same_seed_same_batches_other_seed_differs() {
        let examples = corpus(500);
        let opts = |seed| BatchOptions {
            max_tokens: 80,
            seed,
            ..BatchOptions::default()
        };
        let a = make_batches(&examples, &opts(7)).unwrap();
        assert_eq!(a, make_batches(&examples, &opts(7)).unwrap());
        assert_ne!(a, make_batches(&examples, &opts(8)).unwrap());
        let sorted = BatchOptions {
            shuffle: false,
            ..opts(7)
        };
        let s = make_batches(&examples, &sorted).unwrap();
        assert!(s.windows(2).all(|w| w[0].src_len <= w[1].src_len));
    }

    #[test]
    fn budget_errors() {
        let examples = corpus(10);
        let tiny = BatchOptions {
            max_tokens: 3,
            ..BatchOptions::default()
        };
        assert!(matches!(
            make_batches(&examples, &tiny),
            Err(Error::InvalidArgument { .. })
        ));
        let zero = BatchOptions {
            max_sentences: Some(0),
            ..BatchOptions::default()
        };
        assert!(make_batches(&examples, &zero).is_err());
        assert!(make_batches(&[], &BatchOptions::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn encode_pairs_drops_and_reports() {
        let pair = |src: &str, tgt: &str| Pair {
            src: src.into(),
            tgt: tgt.into(),
            line: 1,
        };
        let pairs = [
            pair("AB", "N O"),
            pair("ABCDE", "N"),
            pair("A", "N O P Q"),
            pair("BA", "O Z"),
        ];
        let sv = Vocab::from_sequences([vec!["A", "B"]], 1);
        let tv = Vocab::from_sequences([vec!["N", "O"]], 1);
        let opts = EncodeOptions {
            max_src_len: Some(4),
            max_tgt_len: Some(3),
        };
        let enc = encode_pairs(
            &pairs,
            (Tokenizer::Chars, Tokenizer::Symbols),
            (&sv, &tv),
            &opts,
        );
        assert_eq!(enc.too_long_src, vec![1]);
        assert_eq!(enc.too_long_tgt, vec![2]);
        assert_eq!(enc.dropped(), 2);
        assert_eq!(enc.examples.len(), 2);
        assert_eq!(enc.examples[1].index, 3);
        assert_eq!(enc.examples[1].src, vec![5, 4]);
        assert_eq!(enc.examples[1].tgt, vec![5, i64::from(crate::data::UNK)]);
        let empty = encode_pairs(
            &[pair("  ", "N")],
            (Tokenizer::Symbols, Tokenizer::Symbols),
            (&sv, &tv),
            &EncodeOptions::default(),
        );
        assert_eq!(empty.empty_src, vec![0]);
    }
}
