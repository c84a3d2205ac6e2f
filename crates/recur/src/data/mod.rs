//! Data for training and evaluating seq2seq models: parallel TSV files, tokenization,
//! vocabularies, length-bucketed padded batches, the tutorials' toy tasks and metrics.
//!
//! Pipeline: [`tsv::read_parallel_tsv`] → [`token::Tokenizer`] per side → [`vocab::Vocab`] per
//! side → [`batch::encode_pairs`] → [`batch::make_batches`]; hypotheses are scored with
//! [`metrics::evaluate`].

pub mod batch;
pub mod metrics;
pub mod tasks;
pub mod token;
pub mod tsv;
pub mod vocab;

pub use batch::{
    batch_groups, encode_pairs, make_batches, Batch, BatchOptions, EncodeOptions, Encoded, Example,
};
pub use metrics::{evaluate, levenshtein, EvalReport, References};
pub use token::Tokenizer;
pub use tsv::{hold_out_sources, read_parallel_tsv, Pair, SkippedLine, TsvOptions, TsvReport};
pub use vocab::{TokenId, Vocab, VocabBuilder, BOS, EOS, PAD, UNK};

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::PathBuf;

    use super::*;

    fn bundled(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../data")
            .join(rel)
    }

    #[test]
    fn bundled_dakshina_train_reads_fully() {
        let path = bundled("dakshina_hi/lexicons/hi.translit.sampled.train.tsv");
        let r = read_parallel_tsv(&path, &TsvOptions::new(1, 0)).unwrap();
        assert_eq!((r.pairs.len(), r.blank_lines), (44_204, 0));
        let natives: HashSet<&str> = r.pairs.iter().map(|p| p.tgt.as_str()).collect();
        assert_eq!(natives.len(), 25_000);
        assert!(r
            .pairs
            .iter()
            .all(|p| p.src.bytes().all(|b| b.is_ascii_lowercase())));
        assert_eq!(
            (r.pairs[0].src.as_str(), r.pairs[0].tgt.as_str()),
            ("an", "अं")
        );
    }

    #[test]
    fn bundled_cmudict_train_reads_fully() {
        let path = bundled("cmudict_g014b2b/g014b2b.train");
        let r = read_parallel_tsv(&path, &TsvOptions::new(0, 1)).unwrap();
        assert_eq!(r.pairs.len(), 113_438);
        let refs = References::from_pairs(r.pairs.iter().map(|p| (p.src.as_str(), p.tgt.as_str())));
        assert_eq!(refs.len(), 106_837);
        // 39 ARPAbet phonemes without stress, plus the 4 specials.
        let t = Tokenizer::Symbols;
        let vocab = Vocab::from_sequences(r.pairs.iter().map(|p| t.tokenize(&p.tgt)), 1);
        assert_eq!(vocab.len(), 39 + 4);
    }
}
