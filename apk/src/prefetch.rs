//! Fetching packages ahead of the writer: find each package's file, read it, check it against the
//! identity the signed index gives (and its `datahash`), and inflate its data section. One worker
//! per online CPU does this ahead of the thread that writes files in transaction order, bounded
//! in jobs and in bytes ([`Prefetch`]), so every core works during an install while memory stays
//! bounded.

use crate::archive::{self, ArchiveError, Mode, OpenedPackage};
use crate::limits;
use crate::pool::{PkgId, Pool};
use crate::trust::Keyring;
use std::collections::HashMap;
use std::path::PathBuf;

/// Why a package could not be fetched (the caller names the package).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No repository, cache or file provides it.
    #[error("package file is not available")]
    NotAvailable,
    /// Its file could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The package file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// It does not match the index or is malformed.
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    /// It is larger than its index entry says (`S:`); it was not read.
    #[error("{}: {size} bytes, but the index gives {expected} (S:)", .path.display())]
    Size {
        /// The package file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The index's size.
        expected: u64,
    },
    /// Its index entry has no identity (`C:`) and it carries no trusted signature of its own.
    #[error("no identity (C:) in the index and no trusted signature (--allow-untrusted installs it anyway)")]
    NoIdentity,
    /// Only the cache's unsigned `installed` file lists it, and it carries no trusted signature of
    /// its own: whoever can write the cache (a boot medium) could have written that entry.
    #[error("listed only in the cache's installed file, not in a signed index, and it carries no trusted signature (--allow-untrusted installs it anyway)")]
    CacheOnly,
}

/// What packages without an identity are checked with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trust<'a> {
    /// Trusted keys.
    pub keys: &'a Keyring,
    /// `--allow-untrusted`.
    pub allow_untrusted: bool,
}

/// Where a package file is.
pub fn package_path(pool: &Pool, id: PkgId) -> Option<PathBuf> {
    let p = &pool.packages[id];
    if let Some(f) = &p.file {
        return Some(PathBuf::clone(f));
    }
    let fname = format!("{}.apk", p.pkg.name_version());
    for &r in &p.repos {
        let repo = &pool.repos[r];
        if repo.masked {
            continue;
        }
        if let Some(dir) = &repo.pkg_dir {
            // v2 rule: URL/<pkg arch>/<name>-<ver>.apk; our pkg_dir already names the primary arch.
            let mut cand = dir.join(&fname);
            if let (Some(a), Some(parent)) = (p.pkg.arch.as_deref(), dir.parent()) {
                let alt = parent.join(a).join(&fname);
                if !cand.exists() && alt.exists() {
                    cand = alt;
                }
            }
            return Some(cand);
        }
    }
    p.cached.as_deref().cloned()
}

/// A package read, verified against its identity and inflated, ready for extraction.
pub(crate) struct Prepared {
    /// The package file as read.
    pub buf: Vec<u8>,
    /// Its verified sections and metadata.
    pub opened: OpenedPackage,
    /// The inflated data section (a tar stream).
    pub tar: Vec<u8>,
}

/// Read package `id`, check it against the identity the index (or database) gives, and inflate its
/// data section. A package whose entry has no identity is trusted only through its own signature
/// by a trusted key, or with `--allow-untrusted` (docs/apk.md, "Trust").
pub(crate) fn prepare(
    pool: &Pool,
    id: PkgId,
    buffers: &Buffers,
    trust: Trust<'_>,
) -> Result<Prepared, FetchError> {
    let p = &pool.packages[id];
    let path = package_path(pool, id).ok_or(FetchError::NotAvailable)?;
    // The index's S: bounds the read: a larger file is refused before it is read.
    let limit = match p.pkg.size {
        0 => limits::PACKAGE_WITHOUT_SIZE,
        s => s,
    };
    let mut buf = buffers.take();
    let read = limits::open(&path).and_then(|mut f| limits::read_into(&mut f, limit, &mut buf));
    if let Err(source) = read {
        return Err(
            match source
                .get_ref()
                .and_then(|e| e.downcast_ref::<limits::TooLarge>())
            {
                Some(t) if p.pkg.size > 0 => FetchError::Size {
                    path,
                    size: t.size,
                    expected: p.pkg.size,
                },
                _ => FetchError::Io { path, source },
            },
        );
    }
    // An identity vouches for the file only if something trusted gave it: a signed index, the
    // root's own database, or the file itself. `<cache>/installed` is not signed (apk-format.md
    // §4.5), so a package known only from there must carry its own trusted signature.
    let vouched = !p.repos.is_empty() || p.installed.is_some() || p.file.is_some();
    let opened = if p.pkg.identity.is_empty() || !vouched {
        let mode = Mode::Verify {
            keys: trust.keys,
            allow_untrusted: trust.allow_untrusted,
        };
        archive::open_package(&buf, &mode).map_err(|e| match e {
            ArchiveError::Untrusted if !vouched => FetchError::CacheOnly,
            ArchiveError::Untrusted => FetchError::NoIdentity,
            e => e.into(),
        })?
    } else {
        archive::open_package(&buf, &Mode::Identity(&p.pkg.identity))?
    };
    // The compressed bytes were just checked against datahash/identity, so the gzip CRC is
    // redundant; a second data member is refused (apk v3).
    let mut tar = buffers.take();
    let bound = limits::data_section(p.pkg.installed_size.max(opened.info.installed_size));
    crate::gzip::inflate_data_into(&buf, opened.data.clone(), &mut tar, bound)
        .map_err(ArchiveError::from)?;
    Ok(Prepared { buf, opened, tar })
}

/// Buffers handed back after a package was written, reused for the next ones: fresh large
/// allocations would be page-faulted in (and unmapped) for every package.
#[derive(Default)]
pub(crate) struct Buffers(std::sync::Mutex<Vec<Vec<u8>>>);

impl Buffers {
    pub(crate) fn take(&self) -> Vec<u8> {
        let mut v = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        v.clear();
        v
    }

    pub(crate) fn give(&self, v: Vec<u8>) {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Keep a handful: enough for the workers and the writer, no more.
        if pool.len() < 8 {
            pool.push(v);
        }
    }
}

/// How many bytes of packages (file plus inflated data) may be read ahead of the writer by
/// default: a few typical packages, small next to the RAM of a diskless machine.
pub const DEFAULT_IN_FLIGHT: u64 = 32 << 20;

/// How many packages may be read ahead of the writer, at most (the bytes are bounded by the
/// in-flight budget). Deep enough that the workers use the time the writer spends in package
/// scripts: with two packages per worker, libcrypto3 was inflated only once its turn was near and
/// the writer waited 190 ms for it in an alpine-base boot under qemu (after: about 20 ms).
pub(crate) const AHEAD: usize = 16;

/// The number of workers for `jobs` (0: one per online CPU).
pub(crate) fn workers(jobs: usize) -> usize {
    match jobs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// How many nice steps below its thread's priority a worker reads ahead: the consumer (the
/// writer, and the package scripts it runs), which the install waits for, gets the CPUs first.
/// Under qemu with two CPUs, busybox's post-install took 0.16 s alone and 0.25 s beside two
/// workers inflating and hashing the next packages at the same priority.
pub(crate) const READ_AHEAD_NICE: i32 = 5;

/// A worker thread's own priority (Linux: `setpriority(PRIO_PROCESS, 0)` is the calling
/// thread's), moved relative to where it started. Best effort: going back up needs
/// `CAP_SYS_NICE`, and without it the thread stays where it was put.
struct ThreadNice {
    base: Option<i32>,
    current: std::cell::Cell<i32>,
}

impl ThreadNice {
    fn get() -> Self {
        let base = rustix::process::getpriority_process(None).ok();
        ThreadNice {
            base,
            current: std::cell::Cell::new(0),
        }
    }

    /// `steps` below the base priority (at most nice 19).
    fn set(&self, steps: i32) {
        let Some(base) = self.base else { return };
        if self.current.get() != steps
            && rustix::process::setpriority_process(None, (base + steps).min(19)).is_ok()
        {
            self.current.set(steps);
        }
    }
}

/// Results of package preparation delivered in order, computed by several workers ahead of the
/// consumer. What is read ahead is bounded twice: at most `ahead` jobs past the one the consumer
/// waits for, and at most `budget` bytes (each job's `cost`) in flight. The job the consumer needs
/// next is always started, however large, so a tiny budget still completes (serially).
pub(crate) struct Prefetch<T> {
    costs: Vec<u64>,
    ahead: usize,
    budget: u64,
    state: std::sync::Mutex<State<T>>,
    cv: std::sync::Condvar,
}

struct State<T> {
    /// The job the next worker claims.
    next_job: usize,
    /// Finished jobs not yet taken.
    done: HashMap<usize, T>,
    /// The job the consumer takes next.
    next: usize,
    /// Bytes of jobs started and not yet taken.
    in_flight: u64,
    /// The consumer stopped: workers return.
    cancelled: bool,
    /// The first job whose worker panicked: it never arrives, so its `take` panics.
    lost: Option<usize>,
}

/// Cancels its [`Prefetch`] when dropped (see [`Prefetch::cancel_on_drop`]).
pub(crate) struct CancelOnDrop<'a, T>(&'a Prefetch<T>);

impl<T> Drop for CancelOnDrop<'_, T> {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Marks job `.1` lost unless forgotten: dropped only when its worker panics.
struct LostOnDrop<'a, T>(&'a Prefetch<T>, usize);

impl<T> Drop for LostOnDrop<'_, T> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.lost = Some(st.lost.map_or(self.1, |l| l.min(self.1)));
        drop(st);
        self.0.cv.notify_all();
    }
}

impl<T> Prefetch<T> {
    /// Jobs `0..costs.len()`, job `i` holding about `costs[i]` bytes until it is taken. A job
    /// costlier than the whole budget counts as the budget (it runs beside nothing but the
    /// consumer's job, as before), so sizes from an index (`S:` + `I:`, up to `u64::MAX`) cannot
    /// wrap the sum of what is in flight.
    pub(crate) fn new(costs: Vec<u64>, ahead: usize, budget: u64) -> Self {
        Prefetch {
            costs: costs.into_iter().map(|c| c.min(budget)).collect(),
            ahead: ahead.max(1),
            budget,
            state: std::sync::Mutex::new(State {
                next_job: 0,
                done: HashMap::new(),
                next: 0,
                in_flight: 0,
                cancelled: false,
                lost: None,
            }),
            cv: std::sync::Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run jobs (claimed in order) until there are none left or the consumer cancelled. A job
    /// started ahead of the consumer runs [`READ_AHEAD_NICE`] steps below the thread's priority
    /// (to its end, even once the consumer waits for it), the job the consumer is waiting for
    /// when it starts at that priority.
    pub(crate) fn work(&self, f: impl Fn(usize) -> T) {
        let base = ThreadNice::get();
        loop {
            {
                let mut st = self.lock();
                // Claimed under the lock: a job that may start at once is counted in flight in
                // the same step, so whoever claims the next job sees its cost (claimed outside
                // it, job i + 1 could start before job i was counted, past the budget).
                let i = st.next_job;
                if i >= self.costs.len() {
                    return;
                }
                st.next_job += 1;
                let cost = self.costs[i];
                // Jobs are claimed in order, so the one the consumer waits for is always running
                // or done: waiting here never blocks it.
                while !st.cancelled
                    && i != st.next
                    && (i >= st.next + self.ahead
                        || st.in_flight.saturating_add(cost) > self.budget)
                {
                    st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.cancelled {
                    return;
                }
                st.in_flight = st.in_flight.saturating_add(cost);
                base.set(if i == st.next { 0 } else { READ_AHEAD_NICE });
                drop(st);
                let lost = LostOnDrop(self, i);
                let r = f(i);
                std::mem::forget(lost);
                self.lock().done.insert(i, r);
                self.cv.notify_all();
            }
        }
    }

    /// The result of job `i` (the consumer takes them in order), waiting for it.
    pub(crate) fn take(&self, i: usize) -> T {
        let mut st = self.lock();
        loop {
            if let Some(r) = st.done.remove(&i) {
                st.next = i + 1;
                st.in_flight = st.in_flight.saturating_sub(self.costs[i]);
                self.cv.notify_all();
                return r;
            }
            if st.lost.is_some_and(|l| l <= i) {
                drop(st);
                panic!("the worker preparing package {i} of the transaction panicked");
            }
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A guard that cancels when dropped. The consumer holds it, so the workers return however it
    /// stops, a panic included: `std::thread::scope` joins them before it returns or unwinds, and
    /// would otherwise wait forever for workers waiting for the consumer.
    pub(crate) fn cancel_on_drop(&self) -> CancelOnDrop<'_, T> {
        CancelOnDrop(self)
    }

    /// Stop the workers (the consumer takes nothing more).
    pub(crate) fn cancel(&self) {
        self.lock().cancelled = true;
        self.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Results arrive in order with any number of workers, and a budget smaller than any job
    /// still lets every job run (one at a time).
    #[test]
    fn in_order_with_any_budget_and_workers() {
        for (workers, budget) in [(1, 1), (4, 1), (3, 10), (8, u64::MAX)] {
            let n = 40;
            let costs: Vec<u64> = (0..n).map(|i| 1 + (i % 7) as u64).collect();
            let p = Prefetch::new(costs, workers + 1, budget);
            let peak = std::sync::atomic::AtomicU64::new(0);
            std::thread::scope(|sc| {
                for _ in 0..workers {
                    sc.spawn(|| {
                        p.work(|i| {
                            let now = p.lock().in_flight;
                            peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                            i * 2
                        })
                    });
                }
                for i in 0..n {
                    assert_eq!(p.take(i), i * 2);
                }
            });
            let peak = peak.into_inner();
            // One job over the budget at most: the one the consumer needs.
            assert!(
                peak <= budget.saturating_add(7),
                "{workers} workers, budget {budget}: peak {peak}"
            );
        }
    }

    /// A job read ahead runs READ_AHEAD_NICE steps below the worker's priority, the job the
    /// consumer waits for at it.
    #[test]
    fn read_ahead_jobs_run_at_a_lower_priority() {
        let p = Prefetch::new(vec![1; 3], 4, 100);
        let nice = std::sync::Mutex::new(std::collections::BTreeMap::new());
        std::thread::scope(|sc| {
            sc.spawn(|| {
                let base = rustix::process::getpriority_process(None).unwrap();
                p.work(|i| {
                    let now = rustix::process::getpriority_process(None).unwrap();
                    nice.lock().unwrap().insert(i, now - base);
                    i
                })
            });
            // The worker finishes job 0 and reads jobs 1 and 2 ahead before the consumer comes.
            let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while nice.lock().unwrap().len() < 3 && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            for i in 0..3 {
                assert_eq!(p.take(i), i);
            }
        });
        let nice = nice.into_inner().unwrap();
        let base = rustix::process::getpriority_process(None).unwrap();
        let ahead = (base + READ_AHEAD_NICE).min(19) - base;
        assert_eq!(nice.get(&0), Some(&0), "{nice:?}");
        assert_eq!(nice.get(&1), Some(&ahead), "{nice:?}");
        assert_eq!(nice.get(&2), Some(&ahead), "{nice:?}");
    }

    /// A job whose size (from the index) is absurd counts as the whole budget: nothing else is
    /// read ahead while it is in flight (the sum wrapped before, and the next job started).
    #[test]
    fn an_absurd_cost_holds_the_whole_budget() {
        let p = Prefetch::new(vec![u64::MAX, 2, 2], 4, 64);
        let second_started = std::sync::atomic::AtomicBool::new(false);
        let overlapped = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|sc| {
            for _ in 0..2 {
                sc.spawn(|| {
                    p.work(|i| {
                        if i == 0 {
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            overlapped.store(
                                second_started.load(std::sync::atomic::Ordering::SeqCst),
                                std::sync::atomic::Ordering::SeqCst,
                            );
                        } else {
                            second_started.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                        i
                    })
                });
            }
            for i in 0..3 {
                assert_eq!(p.take(i), i);
            }
        });
        assert!(
            !overlapped.into_inner(),
            "job 1 was read ahead beside job 0"
        );
    }

    /// A panic on either side ends the scope with that panic instead of hanging: a consumer that
    /// panics (a bug, `eprintln!` on a closed stderr) releases the workers waiting for it through
    /// its [`Prefetch::cancel_on_drop`] guard, and a worker that panics makes the consumer's
    /// `take` of its job panic instead of waiting forever.
    #[test]
    fn a_panic_on_either_side_ends_the_scope() {
        /// Whether `f` panicked; fails the test if it has not returned within 20 s (a hang).
        fn panics(f: impl FnOnce() + Send + 'static) -> bool {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                let _ = tx.send(r.is_err());
            });
            rx.recv_timeout(std::time::Duration::from_secs(20))
                .expect("hung instead of panicking")
        }
        assert!(panics(|| {
            let p = Prefetch::new(vec![1; 100], 2, u64::MAX);
            std::thread::scope(|sc| {
                for _ in 0..3 {
                    sc.spawn(|| p.work(|i| i));
                }
                let _stop = p.cancel_on_drop();
                assert_eq!(p.take(0), 0);
                panic!("the consumer fails");
            });
        }));
        assert!(panics(|| {
            let p = Prefetch::new(vec![1; 100], 2, u64::MAX);
            std::thread::scope(|sc| {
                for _ in 0..3 {
                    sc.spawn(|| {
                        p.work(|i| {
                            assert_ne!(i, 5, "a worker fails");
                            i
                        })
                    });
                }
                let _stop = p.cancel_on_drop();
                for i in 0..100 {
                    assert_eq!(p.take(i), i);
                }
            });
        }));
    }

    /// The consumer can stop early: workers return.
    #[test]
    fn cancel_releases_workers() {
        let p = Prefetch::new(vec![1; 100], 2, 2);
        std::thread::scope(|sc| {
            for _ in 0..3 {
                sc.spawn(|| p.work(|i| i));
            }
            assert_eq!(p.take(0), 0);
            p.cancel();
        });
    }
}
