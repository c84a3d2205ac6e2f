//! A team of spinning helper threads for parallel regions of a few microseconds.
//!
//! Decoding one sequence multiplies one row by a weight matrix per step: a few microseconds of
//! work that two cores stream twice as fast, but waking a sleeping rayon worker costs tens of
//! microseconds (measured: w4-g2p-b1 went from 276 to 766 ms when such products used rayon).
//! Here helpers spin for a short while after each job, so back-to-back steps reach them in well
//! under a microsecond; an idle helper parks after [`SPIN`] and costs nothing.
//!
//! Protocol: the caller publishes the job with its epoch and part count in one record, then
//! bumps `epoch` and wakes parked helpers; a helper that sees a new epoch reads the record and,
//! if it has a part (helper `i` runs part `i + 1`), runs it and decrements `pending`; the
//! caller runs part 0 and spins until `pending` is 0. One caller at a time (a mutex); a second
//! concurrent caller runs its parts itself.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long a helper spins for the next job before it parks.
const SPIN: Duration = Duration::from_micros(50);

/// A job: part index → work. Lifetime-erased; valid while the caller waits in [`run`].
type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
    /// The epoch of the newest published job: helpers spin on it.
    epoch: AtomicUsize,
    /// Helper parts not finished yet.
    pending: AtomicUsize,
    /// A helper's part panicked.
    panicked: AtomicBool,
    /// The newest job, its epoch and its parts, published together: a helper takes all three
    /// from one read, so it never pairs one job's part count with another job (which, with
    /// helpers left out of a job, could run a part twice).
    published: Mutex<Published>,
}

#[derive(Clone, Copy, Default)]
struct Published {
    epoch: usize,
    /// Helper `i` runs part `i + 1` when `i + 1 < parts`.
    parts: usize,
    /// `None` once the job is done.
    job: Option<SendJob>,
}

#[derive(Clone, Copy)]
struct SendJob(Job);
// SAFETY: the pointee is `Sync`, and `run` keeps it alive until every helper is done with it.
unsafe impl Send for SendJob {}

struct Helper {
    thread: Thread,
    parked: AtomicBool,
}

struct Team {
    shared: &'static Shared,
    helpers: Vec<&'static Helper>,
    /// One caller at a time.
    lock: Mutex<()>,
}

/// The process's team, created on first use with `helpers` threads.
fn team(helpers: usize) -> &'static Team {
    static TEAM: OnceLock<Team> = OnceLock::new();
    TEAM.get_or_init(|| Team::new(helpers))
}

impl Team {
    /// Starts `helpers` helper threads (they live as long as the process).
    fn new(helpers: usize) -> Self {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            epoch: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            published: Mutex::new(Published::default()),
        }));
        let helpers = (0..helpers)
            .map(|i| {
                let (tx, rx) = std::sync::mpsc::channel::<&'static Helper>();
                let thread = std::thread::Builder::new()
                    .name(format!("recur-team-{i}"))
                    .spawn(move || helper_loop(shared, i, rx.recv().expect("helper record")))
                    .expect("spawn a team helper");
                let h: &'static Helper = Box::leak(Box::new(Helper {
                    thread: thread.thread().clone(),
                    parked: AtomicBool::new(false),
                }));
                tx.send(h).expect("helper starts");
                h
            })
            .collect();
        Team {
            shared,
            helpers,
            lock: Mutex::new(()),
        }
    }
}

fn helper_loop(shared: &'static Shared, index: usize, me: &'static Helper) {
    let mut seen = 0;
    loop {
        // Spin for the next job, then park until woken.
        let start = Instant::now();
        let mut spins = 0u32;
        while shared.epoch.load(SeqCst) == seen {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) && start.elapsed() > SPIN {
                me.parked.store(true, SeqCst);
                // Re-check after announcing: a caller that bumped the epoch before seeing the
                // flag is seen here; one that bumps it after sees the flag and unparks.
                while shared.epoch.load(SeqCst) == seen {
                    std::thread::park();
                }
                me.parked.store(false, SeqCst);
            }
        }
        // The record may already be newer than the epoch seen; then this helper runs that job
        // now and skips the bump that follows (`seen` is the record's epoch).
        let now = *shared.published.lock().expect("team job");
        seen = now.epoch;
        if let (true, Some(job)) = (index + 1 < now.parts, now.job) {
            // SAFETY: `run` keeps the closure alive until `pending` reaches 0.
            let f = unsafe { &*job.0 };
            if catch_unwind(AssertUnwindSafe(|| f(index + 1))).is_err() {
                shared.panicked.store(true, SeqCst);
            }
            shared.pending.fetch_sub(1, SeqCst);
        }
    }
}

/// Runs `f(0)`, …, `f(parts - 1)` in parallel, `f(0)` on the calling thread, and returns when all
/// are done. With `parts <= 1`, or while another caller holds the team, runs them in order here.
pub fn run(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    let serial = || (0..parts).for_each(f);
    if parts <= 1 {
        return serial();
    }
    team_for(parts).run(parts, f)
}

/// The team, created on first use with a helper per thread the kernels may use beyond the
/// caller, but never more threads than cores: spinning threads that share a core wait for each
/// other a whole time slice (w2 with `--threads 4` on 2 cores: 2.5 ms a run, against 0.09 ms).
fn team_for(parts: usize) -> &'static Team {
    let threads = crate::gemm::num_threads().max(parts);
    team(threads.min(crate::gemm::available_cores()).max(1) - 1)
}

/// `(a(), b())`, `b` on a team helper while `a` runs here when the team is free (else one after
/// the other): `rayon::join` for work of microseconds, which a sleeping rayon worker would
/// start tens of microseconds late.
pub fn join<RA: Send, RB: Send>(
    a: impl FnOnce() -> RA + Send,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB) {
    let (a, b) = (Mutex::new(Some(a)), Mutex::new(Some(b)));
    let (ra, rb) = (Mutex::new(None), Mutex::new(None));
    run(2, &|i| {
        // Each part takes its closure once; a poisoned slot only follows a panic, which `run`
        // propagates.
        if i == 0 {
            if let Some(f) = a.lock().ok().and_then(|mut f| f.take()) {
                *ra.lock().unwrap_or_else(|p| p.into_inner()) = Some(f());
            }
        } else if let Some(f) = b.lock().ok().and_then(|mut f| f.take()) {
            *rb.lock().unwrap_or_else(|p| p.into_inner()) = Some(f());
        }
    });
    match (
        ra.into_inner().ok().flatten(),
        rb.into_inner().ok().flatten(),
    ) {
        (Some(x), Some(y)) => (x, y),
        _ => unreachable!("run returns after both parts ran, or panics"),
    }
}

/// Runs `f(0, b)`, …, `f(parts - 1, b)` at the same time on `parts` threads, `f(0, b)` on the
/// calling thread, and returns true when all are done; `b` is a barrier of the `parts` parts.
/// Returns false, running nothing, when the team cannot give every part its own thread now
/// (fewer threads, or another caller holds the team): the caller then takes its serial path,
/// since parts that wait for each other must not run one after another.
pub fn run_together(parts: usize, f: &(dyn Fn(usize, &Barrier) + Sync)) -> bool {
    if parts < 2 {
        return false;
    }
    let team = team_for(parts);
    if team.helpers.len() + 1 < parts {
        return false;
    }
    let Some(_guard) = team.try_lock() else {
        return false;
    };
    let barrier = Barrier::new(parts);
    team.run_locked(parts, &|i| {
        // A part that panics poisons the barrier, so the others stop waiting for it.
        let poison = PoisonOnUnwind(&barrier);
        f(i, &barrier);
        std::mem::forget(poison);
    });
    true
}

/// A spinning barrier for the parts of one [`run_together`] job.
pub struct Barrier {
    parts: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    poisoned: AtomicBool,
}

impl Barrier {
    fn new(parts: usize) -> Self {
        Barrier {
            parts,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
        }
    }

    /// Waits until every part has called `wait` as often as this one. Returns false when a part
    /// panicked: the caller must then return without waiting again.
    pub fn wait(&self) -> bool {
        let generation = self.generation.load(SeqCst);
        if self.arrived.fetch_add(1, SeqCst) + 1 == self.parts {
            // The last to arrive resets the count before it releases the others.
            self.arrived.store(0, SeqCst);
            self.generation.store(generation + 1, SeqCst);
        } else {
            let mut spins = 0u32;
            while self.generation.load(SeqCst) == generation {
                if self.poisoned.load(SeqCst) {
                    return false;
                }
                std::hint::spin_loop();
                spins = spins.wrapping_add(1);
                // More parts than free cores: let the one we wait for run.
                if spins.is_multiple_of(1 << 14) {
                    std::thread::yield_now();
                }
            }
        }
        !self.poisoned.load(SeqCst)
    }
}

/// Poisons the barrier when dropped, that is when its part unwinds.
struct PoisonOnUnwind<'a>(&'a Barrier);

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.poisoned.store(true, SeqCst);
    }
}

impl Team {
    /// [`run`] on this team.
    fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        let serial = || (0..parts).for_each(f);
        let Some(_guard) = self.try_lock() else {
            return serial();
        };
        self.run_locked(parts, f);
    }

    /// The team, unless another caller holds it. A panic that went through an earlier caller
    /// poisoned the lock but left the team sound (`run` waits for every part before unwinding).
    fn try_lock(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        match self.lock.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// [`run`] by the caller that holds `lock`.
    fn run_locked(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        let team = self;
        // Parts beyond the helpers run here, after part 0.
        let shared_parts = parts.min(team.helpers.len() + 1);
        let shared = team.shared;
        // SAFETY (lifetime erasure): this function does not return before every helper finished
        // its part (`pending == 0`), and the job is cleared before the guard is released.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
        shared.pending.store(shared_parts - 1, SeqCst);
        let epoch = {
            let mut p = shared.published.lock().expect("team job");
            *p = Published {
                epoch: p.epoch + 1,
                parts: shared_parts,
                job: Some(SendJob(job)),
            };
            p.epoch
        };
        shared.epoch.store(epoch, SeqCst);
        for h in &team.helpers[..shared_parts - 1] {
            if h.parked.load(SeqCst) {
                h.thread.unpark();
            }
        }
        let mine = catch_unwind(AssertUnwindSafe(|| {
            f(0);
            (shared_parts..parts).for_each(f);
        }));
        while shared.pending.load(SeqCst) != 0 {
            std::hint::spin_loop();
        }
        shared.published.lock().expect("team job").job = None;
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        assert!(
            !shared.panicked.swap(false, SeqCst),
            "a team helper panicked"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_and_results_are_visible() {
        for parts in [1, 2, 3] {
            for _ in 0..200 {
                let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
                run(parts, &|i| {
                    hits[i].fetch_add(1, SeqCst);
                });
                // Every part runs exactly once, even with more parts than helpers.
                assert!(hits.iter().all(|h| h.load(SeqCst) == 1), "{parts} parts");
            }
        }
        // After the helpers parked, a job still reaches them.
        std::thread::sleep(SPIN * 3);
        let hits = AtomicUsize::new(0);
        run(2, &|_| {
            hits.fetch_add(1, SeqCst);
        });
        assert_eq!(hits.load(SeqCst), 2);
    }

    #[test]
    fn join_returns_both_results_and_propagates_a_panic() {
        let mut v = vec![1, 2, 3];
        for _ in 0..100 {
            let (a, b) = join(|| v.iter().sum::<i32>(), || "b".to_string());
            assert_eq!((a, b.as_str()), (6, "b"));
        }
        // Each side may hold its own mutable borrow.
        let (left, right) = v.split_at_mut(1);
        join(|| left[0] += 10, || right[1] += 20);
        assert_eq!(v, [11, 2, 23]);
        let failed = catch_unwind(|| join(|| 1, || -> i32 { panic!("b fails") }));
        assert!(failed.is_err());
        assert_eq!(join(|| 1, || 2), (1, 2), "the team works after a panic");
    }

    /// [`run_together`], tried again while another test holds the team (then it declines).
    fn together(parts: usize, f: &(dyn Fn(usize, &Barrier) + Sync)) -> bool {
        (0..5000).any(|_| {
            let ran = run_together(parts, f);
            if !ran {
                std::thread::sleep(Duration::from_millis(1));
            }
            ran
        })
    }

    #[test]
    fn parts_run_together_and_meet_at_the_barrier() {
        let round = AtomicUsize::new(0);
        let seen_behind = AtomicBool::new(false);
        let ran = together(2, &|_, barrier| {
            for r in 0..1000 {
                // Nobody passes round r's barrier before both parts finished round r - 1.
                if round.load(SeqCst) < 2 * r {
                    seen_behind.store(true, SeqCst);
                }
                round.fetch_add(1, SeqCst);
                assert!(barrier.wait());
            }
        });
        assert!(ran, "the team has a helper for the second part");
        assert_eq!(round.load(SeqCst), 2000);
        assert!(!seen_behind.load(SeqCst));
        // More parts than the team has threads: refused, nothing run.
        let many = crate::gemm::num_threads().max(2) + 64;
        assert!(!run_together(many, &|_, _| panic!("must not run")));
    }

    #[test]
    fn a_panicking_part_releases_the_barrier() {
        let result = catch_unwind(|| {
            together(2, &|i, barrier| {
                if i == 1 {
                    panic!("part 1 fails");
                }
                // Part 0 would wait forever for part 1 without the poison.
                while barrier.wait() {}
            })
        });
        assert!(result.is_err());
        // The team still works afterwards.
        let hits = AtomicUsize::new(0);
        assert!(together(2, &|_, b| {
            hits.fetch_add(1, SeqCst);
            b.wait();
        }));
        assert_eq!(hits.load(SeqCst), 2);
    }

    /// Jobs that leave some helpers out, between jobs that use them all: a helper that is late
    /// for one job must neither run a part of the next one twice nor miss it. (A stress test:
    /// the race that `Published` closes was not reproduced on 2 cores before the fix either.)
    #[test]
    fn helpers_left_out_of_a_job_run_each_later_part_once() {
        let team: &'static Team = Box::leak(Box::new(Team::new(3)));
        for round in 0..20_000 {
            let parts = [2, 4, 3, 4][round % 4];
            let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            team.run(parts, &|i| {
                hits[i].fetch_add(1, SeqCst);
            });
            let counts: Vec<usize> = hits.iter().map(|h| h.load(SeqCst)).collect();
            assert!(counts.iter().all(|&c| c == 1), "round {round}: {counts:?}");
        }
    }
}
