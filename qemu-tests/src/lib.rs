//! End-to-end harness: builds boot assets with the project's own binaries (`mkinitfs`,
//! `mkimage`, `apk`, the `lbu` package from `out/repo`), boots them with the installed Debian
//! kernel in `qemu-system-x86_64 -accel tcg`, and reads the serial console.
//!
//! - Binaries come from `$PROJECT_OUT/bin` (set by the Makefile; default `<workspace>/out`).
//! - Assets (keys, initramfs images, media, overlays) are built lazily, cached under a hash of
//!   their recipe in `$PROJECT_OUT/qemu-assets/`, so an edited recipe rebuilds and the rest is
//!   reused. Media are copied before a VM writes to them.
//! - Every boot is bounded by a timeout; a failed expectation prints the tail of the serial log
//!   and saves the whole log next to the assets. There are no timing assertions.

#![deny(missing_docs)]

pub mod assets;
pub mod http;
pub mod overlay;
pub mod vm;

pub use assets::{Env, InitramfsRecipe, MediumFormat, MediumRecipe};
pub use overlay::Overlay;
pub use vm::{Disk, Vm};
