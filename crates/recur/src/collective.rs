//! Data-parallel training across processes: the few collective operations a run needs, behind a
//! trait so that the library depends on no message-passing library.
//!
//! A front end that runs several processes (the CLI over MPI with `--features mpi`) implements
//! [`Collective`] and hands it to [`crate::session::RunOptions::collective`]. Every process
//! ("rank") then holds the whole model and the whole data; per step:
//!
//! 1. every rank builds the same global batch (same seed, same order as one process) and trains
//!    on its share of its sentences ([`rank_share`]);
//! 2. one [`Collective::allreduce_sum`] over one flat buffer sums the gradients (each scaled by
//!    its share of the global target tokens, so the sum is the one-process mean), the loss, and
//!    each rank's wish to stop;
//! 3. every rank clips with the global norm and takes the same optimizer step.
//!
//! Rank 0 alone evaluates, logs, writes checkpoints and holds the output directory's lock; the
//! dev accuracy is broadcast so that learning-rate reduction and early stopping agree.
//!
//! Without a collective (or with [`SingleProcess`]) training is exactly what it was: one rank
//! of one, no exchange, the same bits.

use crate::data::batch::Example;
use crate::error::Result;

/// The collective operations of a group of `size()` cooperating processes.
///
/// Every rank must call the operations in the same order with buffers of the same length
/// (the training loop does); a failure is an error on the rank that saw it, and the front end
/// must then end the whole group (MPI: `MPI_Abort`) so that no rank waits forever.
pub trait Collective: Send + Sync {
    /// This process's number, `0..size()`; rank 0 evaluates and writes.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// Writes into `sum` on every rank the element-wise sum of all ranks' `send`s (the two
    /// have one length; two buffers spare a copy, as MPI has no in-place reduction to offer
    /// portably). Every rank must receive the same bits (MPI's reductions do), or the replicas
    /// drift apart.
    fn allreduce_sum(&self, send: &[f32], sum: &mut [f32]) -> Result<()>;
    /// Replaces `buf` on every rank by rank 0's (lengths must agree).
    fn broadcast(&self, buf: &mut [f32]) -> Result<()>;
    /// Replaces `buf` on every rank by rank 0's bytes; the length comes from rank 0.
    fn broadcast_bytes(&self, buf: &mut Vec<u8>) -> Result<()>;

    /// Whether this is rank 0, the one that evaluates and writes.
    fn is_root(&self) -> bool {
        self.rank() == 0
    }
}

/// One process alone: every operation leaves its buffer as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn allreduce_sum(&self, send: &[f32], sum: &mut [f32]) -> Result<()> {
        sum.copy_from_slice(send);
        Ok(())
    }
    fn broadcast(&self, _buf: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn broadcast_bytes(&self, _buf: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
}

/// The examples of one global batch that `rank` of `size` trains on: the batch in the column
/// order of [`crate::data::Batch::collate`] (longest source first), dealt out in rounds of
/// `size`, every other round in reverse ("snake" order: with two ranks, positions 0, 3, 4, 7, …
/// to rank 0 and 1, 2, 5, 6, … to rank 1). Plain striding gave rank 0 the longer sentence of
/// every pair, and it reached the allreduce last at every step; the snake evens the ranks'
/// tokens. With `size == 1` the share is the whole batch. A rank may get none when the batch
/// has fewer sentences than there are ranks.
pub fn rank_share<'a>(batch: &[&'a Example], rank: usize, size: usize) -> Vec<&'a Example> {
    let size = size.max(1);
    let mut ordered = batch.to_vec();
    ordered.sort_by(|a, b| b.src.len().cmp(&a.src.len()).then(a.index.cmp(&b.index)));
    ordered
        .into_iter()
        .enumerate()
        .filter(|(i, _)| {
            let (round, seat) = (i / size, i % size);
            let owner = if round % 2 == 0 {
                seat
            } else {
                size - 1 - seat
            };
            owner == rank
        })
        .map(|(_, e)| e)
        .collect()
}

/// The target tokens (with EOS) of `examples`: the loss normaliser of a batch of them.
pub fn target_tokens(examples: &[&Example]) -> usize {
    examples.iter().map(|e| e.tgt.len() + 1).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(index: usize, src_len: usize) -> Example {
        Example {
            src: vec![4; src_len],
            tgt: vec![5; index % 3],
            index,
        }
    }

    #[test]
    fn shares_cover_the_batch_once_and_balance_lengths() {
        let examples: Vec<Example> = (0..7).map(|i| example(i, 1 + i % 4)).collect();
        let batch: Vec<&Example> = examples.iter().collect();
        let mut seen: Vec<usize> = (0..3)
            .flat_map(|r| rank_share(&batch, r, 3))
            .map(|e| e.index)
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        let tokens: usize = (0..3)
            .map(|r| target_tokens(&rank_share(&batch, r, 3)))
            .sum();
        assert_eq!(tokens, target_tokens(&batch));
        let longest: Vec<usize> = (0..3)
            .map(|r| rank_share(&batch, r, 3)[0].src.len())
            .collect();
        assert_eq!(longest, vec![4, 3, 3], "each rank starts near the top");
        // Sources 4 4 3 3 2 2 1 1 dealt to two ranks in snake order: 4 3 2 1 each.
        let pairs: Vec<Example> = (0..8).map(|i| example(i, 4 - i / 2)).collect();
        let batch: Vec<&Example> = pairs.iter().collect();
        for rank in 0..2 {
            let lens: Vec<usize> = rank_share(&batch, rank, 2)
                .iter()
                .map(|e| e.src.len())
                .collect();
            assert_eq!(lens, vec![4, 3, 2, 1], "rank {rank}");
        }
    }

    #[test]
    fn one_rank_takes_the_whole_batch_and_extra_ranks_may_take_none() {
        let examples: Vec<Example> = (0..2).map(|i| example(i, 2)).collect();
        let batch: Vec<&Example> = examples.iter().collect();
        assert_eq!(rank_share(&batch, 0, 1).len(), 2);
        assert!(rank_share(&batch, 3, 4).is_empty());
    }
}
