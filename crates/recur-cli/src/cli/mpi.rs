//! `--features mpi`: the library's [`Collective`] over MPI (rsmpi on the system's Open MPI),
//! so that `mpirun -np N recur train ...` trains one model on N processes.
//!
//! MPI is started only when a launcher (mpirun, srun) started this process: a `recur` built
//! with the feature and run alone behaves as one without it. A failure on one rank must end
//! every rank, or the others would wait in the next allreduce forever: [`Launch::end`] calls
//! `MPI_Abort` on any error, and a rank that dies without `MPI_Finalize` (a panic, a kill)
//! makes mpirun end the job by itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::environment::{Threading, Universe};
use mpi::topology::{Communicator, SimpleCommunicator};
use recur::collective::Collective;

/// The processes of this job, as MPI numbers them.
///
/// It keeps only the rank and size: the world communicator is a constant handle fetched per
/// call, so the value is `Send + Sync` without unsafe code. MPI is initialised with
/// `MPI_THREAD_SERIALIZED`: the training thread is the only caller.
struct MpiWorld {
    rank: usize,
    size: usize,
    /// Time spent in `allreduce_sum` (waiting for the slowest rank included), in nanoseconds,
    /// and the number of calls: reported at the end with `RECUR_MPI_STATS=1`.
    allreduce_nanos: AtomicU64,
    allreduce_calls: AtomicU64,
}

impl MpiWorld {
    fn world() -> SimpleCommunicator {
        SimpleCommunicator::world()
    }
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn allreduce_sum(&self, send: &[f32], sum: &mut [f32]) -> recur::Result<()> {
        // MPI's default error handler aborts the job on a failed collective.
        let start = Instant::now();
        Self::world().all_reduce_into(send, sum, SystemOperation::sum());
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.allreduce_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.allreduce_calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn broadcast(&self, buf: &mut [f32]) -> recur::Result<()> {
        Self::world().process_at_rank(0).broadcast_into(buf);
        Ok(())
    }

    fn broadcast_bytes(&self, buf: &mut Vec<u8>) -> recur::Result<()> {
        let root = Self::world();
        let root = root.process_at_rank(0);
        let mut len = [buf.len() as u64];
        root.broadcast_into(&mut len[..]);
        let len = usize::try_from(len[0]).map_err(|_| {
            recur::Error::arg(
                "broadcast",
                "length",
                "a length this machine can hold",
                len[0],
            )
        })?;
        buf.resize(len, 0);
        root.broadcast_into(&mut buf[..]);
        Ok(())
    }
}

/// Whether `RECUR_MPI_STATS=1` asks each rank to report its time in the allreduce
/// (`bench/mpi_scaling.sh` does).
fn stats_wanted() -> bool {
    std::env::var("RECUR_MPI_STATS").is_ok_and(|v| v == "1")
}

impl MpiWorld {
    /// One line on stderr: this rank's allreduce calls and the seconds they took.
    fn report_exchange_time(&self) {
        let calls = self.allreduce_calls.load(Ordering::Relaxed);
        let seconds = self.allreduce_nanos.load(Ordering::Relaxed) as f64 * 1e-9;
        eprintln!(
            "rank {} of {}: {calls} allreduces, {seconds:.3} s in them ({:.1} ms each, waiting for the other ranks included)",
            self.rank,
            self.size,
            1e3 * seconds / calls.max(1) as f64
        );
    }
}

/// Environment variables that MPI launchers set in every process they start (Open MPI, PMIx,
/// MPICH/Hydra and Slurm's PMI).
const LAUNCHER_VARIABLES: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"];

/// Whether a launcher started this process.
pub fn launched_by_mpirun() -> bool {
    LAUNCHER_VARIABLES
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// MPI for the life of a command: initialised by [`Launch::start`], finalised or aborted by
/// [`Launch::end`].
pub struct Launch {
    /// `None` when no launcher started this process.
    universe: Option<Universe>,
    team: Option<Arc<MpiWorld>>,
}

impl Launch {
    /// Initialises MPI if a launcher started this process.
    pub fn start() -> Result<Launch> {
        if !launched_by_mpirun() {
            return Ok(Launch {
                universe: None,
                team: None,
            });
        }
        let Some((universe, provided)) = mpi::initialize_with_threading(Threading::Serialized)
        else {
            bail!("MPI was already initialised");
        };
        if !matches!(provided, Threading::Serialized | Threading::Multiple) {
            bail!("MPI provides thread level {provided:?}; recur needs Serialized (its kernels run threads)");
        }
        let world = universe.world();
        let team = MpiWorld {
            rank: usize::try_from(world.rank())?,
            size: usize::try_from(world.size())?,
            allreduce_nanos: AtomicU64::new(0),
            allreduce_calls: AtomicU64::new(0),
        };
        Ok(Launch {
            universe: Some(universe),
            team: Some(Arc::new(team)),
        })
    }

    /// The processes training together, when there is more than this one.
    pub fn collective(&self) -> Option<Arc<dyn Collective>> {
        let team = self.team.as_ref()?;
        (team.size > 1).then(|| Arc::clone(team) as Arc<dyn Collective>)
    }

    /// This process's rank (0 alone).
    pub fn rank(&self) -> usize {
        self.team.as_ref().map_or(0, |t| t.rank)
    }

    /// Ends MPI: finalises it after success; after an error on any rank it prints the error
    /// with the rank and aborts the whole job (every rank ends, none waits for this one).
    pub fn end<T>(self, result: Result<T>) -> Result<T> {
        match (&result, &self.team) {
            (Err(e), Some(team)) if team.size > 1 => {
                eprintln!(
                    "error on rank {} of {}: {e:#}; ending every rank (MPI_Abort)",
                    team.rank, team.size
                );
                SimpleCommunicator::world().abort(1)
            }
            _ => {
                if let Some(team) = self.team.filter(|_| stats_wanted()) {
                    team.report_exchange_time();
                }
                drop(self.universe); // MPI_Finalize
                result
            }
        }
    }
}
