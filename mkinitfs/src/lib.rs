//! mkinitfs: builds the project's initramfs, compatible with Alpine's mkinitfs where it matters
//! (CLI, `mkinitfs.conf` keys, `features.d`), faster and reproducible.
//!
//! The library owns the whole build: [`Config`] (command line over config file over defaults,
//! [`Config::resolve`]), [`build`] (features, ELF closure, kernel modules with softdeps and
//! firmware, keys) returning an [`Image`], and [`Image::write_to`] (reproducible newc cpio,
//! compressed in-process, written atomically). The `mkinitfs` binary is glue over this. [`cpio`]
//! is the workspace's one newc reader and writer (the `mkimage` crate reads initramfs files with
//! it). What the image holds for the init is described in the crate's README ("What the image
//! holds for the init", "Trust"); the paths themselves are the `bootspec` crate's.
//!
//! ```no_run
//! use mkinitfs::{Config, ConfFile, Overrides};
//! let cli = Overrides { kernel_version: Some("6.1.0-56-amd64".into()), init: Some("/out/bin/init".into()), ..Default::default() };
//! let config = Config::resolve(&ConfFile::default(), &cli, None, mkinitfs::features::default_dirs(None, std::path::Path::new("/")))?;
//! let image = mkinitfs::build(&config)?;
//! image.write_to(std::path::Path::new("/tmp/initramfs"))?;
//! # Ok::<(), mkinitfs::Error>(())
//! ```

#![deny(missing_docs)]

mod assemble;
pub mod compress;
pub mod config;
pub mod cpio;
pub mod elf;
mod error;
pub mod features;
pub mod firmware;
mod image;
pub mod kconfig;
pub mod modinfo;
pub mod modloop;
pub mod modules;
pub mod root;
pub mod secret;
pub mod tree;

pub use assemble::build;
pub use config::{Compression, ConfFile, Config, Overrides};
pub use error::Error;
pub use image::Image;
