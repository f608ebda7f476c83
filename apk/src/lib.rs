//! The apk core: an apk-tools compatible package manager library.
//!
//! Reads and writes the v2 on-disk formats (`.apk` packages, `APKINDEX.tar.gz`, the installed
//! database) and follows apk-tools v3 semantics and output. The boot init links this crate
//! directly; nothing here forks an external apk.

#![deny(missing_docs)]
// Unsafe code is allowed in two modules only: `output` (writing to a descriptor number the user
// gave, `--progress-fd`) and `spawn` (starting a chrooted script without copying the process).
#![deny(unsafe_code)]

pub mod archive;
pub mod audit;
pub mod cache;
pub mod commit;
pub mod context;
pub mod db;
pub mod dep;
pub mod dirperm;
pub mod error;
pub mod extract;
pub mod fetch;
pub mod fnmatch;
pub mod gzip;
pub mod http;
pub mod index;
pub mod limits;
pub mod mkpkg;
pub mod ops;
#[allow(unsafe_code)]
pub mod output;
pub mod owners;
pub mod package;
pub mod pool;
pub mod prefetch;
pub mod protected;
pub mod repo;
pub mod root;
pub mod script;
pub mod solver;
#[allow(unsafe_code)]
mod spawn;
pub mod tar;
#[cfg(test)]
mod testutil;
pub mod text;
pub mod trust;
pub mod version;

pub use error::Error;
pub mod xattr;
