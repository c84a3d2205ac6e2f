//! A long list decoded in chunks, the kernel threads taking different chunks.
//!
//! A decoding step of a few hundred rows takes microseconds: threads that share every step's
//! products meet at every step and wait for each other. Whole chunks, each decoded on one
//! thread, need no meeting at all. Decoding depends neither on the batch nor on the threads,
//! so the results are the same either way.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use crate::error::Result;

/// What a worker leaves for one chunk.
type Slot<R> = Mutex<Option<Result<Vec<R>>>>;

/// `f(chunk, concurrent)` on `items` in chunks of `chunk` items (at least 1), the results
/// concatenated in order. With several kernel threads ([`crate::gemm::num_threads`]) and several
/// chunks, each thread takes whole chunks in turn and runs their kernels on itself alone;
/// `concurrent` says how many chunks are decoded at once (for memory estimates). After a chunk
/// fails, no new chunk starts, and the first failure in input order is returned.
pub fn map_chunks<T, R, F>(items: &[T], chunk: usize, f: F) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    F: Fn(&[T], usize) -> Result<Vec<R>> + Sync,
{
    let chunks: Vec<&[T]> = items.chunks(chunk.max(1)).collect();
    let workers = crate::gemm::num_threads().min(chunks.len()).max(1);
    let mut out = Vec::with_capacity(items.len());
    if workers == 1 {
        for part in chunks {
            out.extend(f(part, 1)?);
        }
        return Ok(out);
    }
    let next = AtomicUsize::new(0);
    let done: Vec<Slot<R>> = chunks.iter().map(|_| Mutex::new(None)).collect();
    rayon::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|_| {
                crate::gemm::with_threads(1, || loop {
                    let i = next.fetch_add(1, Relaxed);
                    let Some(part) = chunks.get(i) else { break };
                    let result = f(part, workers);
                    if result.is_err() {
                        next.store(chunks.len(), Relaxed);
                    }
                    if let Ok(mut slot) = done[i].lock() {
                        *slot = Some(result);
                    }
                })
            });
        }
    });
    for slot in done {
        match slot.into_inner().ok().flatten() {
            Some(result) => out.extend(result?),
            // Chunks after a failed one never started; its error came first.
            None => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn results_come_back_in_order_whatever_the_threads() {
        let items: Vec<usize> = (0..1000).collect();
        let square = |part: &[usize], _: usize| Ok(part.iter().map(|x| x * x).collect());
        let one = crate::gemm::with_threads(1, || map_chunks(&items, 7, square)).unwrap();
        let four = crate::gemm::with_threads(4, || map_chunks(&items, 7, square)).unwrap();
        assert_eq!(one, items.iter().map(|x| x * x).collect::<Vec<_>>());
        assert_eq!(four, one);
    }

    #[test]
    fn a_failed_chunk_is_the_error_and_kernels_run_on_one_thread_per_chunk() {
        let items: Vec<usize> = (0..100).collect();
        let result = crate::gemm::with_threads(3, || {
            map_chunks(&items, 10, |part, concurrent| {
                assert_eq!((crate::gemm::num_threads(), concurrent), (1, 3));
                match part.contains(&42) {
                    true => Err(Error::arg("test", "item", "not 42", 42)),
                    false => Ok(part.to_vec()),
                }
            })
        });
        let err = result.unwrap_err().to_string();
        assert!(err.contains("42"), "{err}");
    }
}
