//! Fetching packages ahead of the writer: find each package's file, read it, check it against the
//! identity the signed index gives (and its `datahash`), and inflate its data section. Several
//! workers do this at most [`Prefetch::WINDOW`] packages ahead of the thread that writes files in
//! transaction order, so both cores work during an install while memory stays bounded.

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
        return Some(f.clone());
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
    p.cached.clone()
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

/// Results of package preparation delivered in order, computed by several workers at most
/// `WINDOW` packages ahead of the consumer (bounding memory on small machines).
pub(crate) struct Prefetch<T> {
    n: usize,
    next_job: std::sync::atomic::AtomicUsize,
    state: std::sync::Mutex<(HashMap<usize, T>, usize, bool)>,
    cv: std::sync::Condvar,
}

impl<T> Prefetch<T> {
    pub(crate) const WINDOW: usize = 3;

    pub(crate) fn new(n: usize) -> Self {
        Prefetch {
            n,
            next_job: 0.into(),
            state: std::sync::Mutex::new((HashMap::new(), 0, false)),
            cv: std::sync::Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<usize, T>, usize, bool)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn work(&self, f: impl Fn(usize) -> T) {
        loop {
            let i = self
                .next_job
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if i >= self.n {
                return;
            }
            {
                let mut st = self.lock();
                while i >= st.1 + Self::WINDOW && !st.2 {
                    st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.2 {
                    return;
                }
            }
            let r = f(i);
            self.lock().0.insert(i, r);
            self.cv.notify_all();
        }
    }

    pub(crate) fn take(&self, i: usize) -> T {
        let mut st = self.lock();
        loop {
            if let Some(r) = st.0.remove(&i) {
                st.1 = i + 1;
                self.cv.notify_all();
                return r;
            }
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub(crate) fn cancel(&self) {
        self.lock().2 = true;
        self.cv.notify_all();
    }
}
