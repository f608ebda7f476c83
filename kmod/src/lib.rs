//! Kernel module metadata, shared by the image builder (`mkinitfs` selects modules and writes the
//! metadata of the subset it embeds) and the init (which loads modules at boot from that
//! metadata), so that both sides read the same files the same way.
//!
//! What it owns: the formats `depmod` writes and kmod reads ([`dep`] for `modules.dep`,
//! [`alias`] for `modules.alias`, [`softdep`] for `modules.softdep`, [`builtin`] for
//! `modules.builtin`, [`order`] for `modules.order`), Alpine's `/etc/modules` list
//! ([`modules_list`]), how module names and aliases are compared ([`name`]), how a name or an
//! alias resolves to modules ([`Index::resolve`]), and how compressed module files are unpacked
//! ([`decompress`]). What it leaves to its users: reading files (every parser takes text, so
//! errors carry a line number and the caller adds the path), selecting (mkinitfs) and loading
//! (the init). It does no I/O and holds no global state, so the static PID 1 links it at little
//! cost; xz support is a cargo feature (`xz`) for the same reason.
//!
//! The rules follow kmod (`libkmod`), documented in `docs/kernel-modules.md`: `-` and `_` are
//! the same in module names, aliases are normalised the same way outside `[...]` classes and
//! matched as `fnmatch(3)` patterns without flags, a name that is a module (or built in) is never
//! looked up as an alias, and softdep words before the first `pre:`/`post:` are ignored.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod alias;
pub mod builtin;
pub mod decompress;
pub mod dep;
mod error;
mod index;
pub mod modules_list;
pub mod name;
pub mod order;
pub mod softdep;

pub use alias::Aliases;
pub use decompress::{decompress, Compression, DecompressError, MAX_MODULE};
pub use dep::{Dep, ModulesDep};
pub use error::{FileError, ParseError};
pub use index::{Index, Resolution, Texts};
pub use name::{module_name, normalize, normalize_alias};
pub use softdep::SoftDep;
