//! The apk core: an apk-tools compatible package manager library.
//!
//! Reads and writes the v2 on-disk formats (`.apk` packages, `APKINDEX.tar.gz`, the installed
//! database) and follows apk-tools v3 semantics and output. The boot init links this crate
//! directly; nothing here forks an external apk.

#![deny(missing_docs)]

pub mod archive;
pub mod audit;
pub mod commit;
pub mod context;
pub mod db;
pub mod dep;
pub mod error;
pub mod fnmatch;
pub mod gzip;
pub mod index;
pub mod mkpkg;
pub mod ops;
pub mod output;
pub mod owners;
pub mod package;
pub mod pool;
pub mod protected;
pub mod repo;
pub mod root;
pub mod script;
pub mod solver;
pub mod tar;
#[cfg(test)]
mod testutil;
pub mod trust;
pub mod version;

pub use error::Error;
pub mod xattr;
