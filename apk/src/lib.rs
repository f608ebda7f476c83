//! The apk core: an apk-tools compatible package manager library.
//!
//! Reads and writes the v2 on-disk formats (`.apk` packages, `APKINDEX.tar.gz`, the installed
//! database) and follows apk-tools v3 semantics and output. The boot init links this crate
//! directly; nothing here forks an external apk.

#![deny(missing_docs)]

pub mod archive;
pub mod dep;
pub mod index;
pub mod package;
pub mod tar;
pub mod trust;
pub mod version;
pub mod db;
pub mod root;
pub mod audit;
pub mod fnmatch;
pub mod protected;
pub mod xattr;
pub mod pool;
pub mod repo;
pub mod solver;
pub mod output;
pub mod commit;
pub mod owners;
pub mod script;
pub mod context;
pub mod ops;
pub mod mkpkg;
pub mod cli;
