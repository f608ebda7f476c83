//! The project's PID 1 for the diskless initramfs, compatible with Alpine's `initramfs-init`.
//!
//! The boot reads like Alpine's: parse `/proc/cmdline`, load boot drivers, find the boot media the way
//! `nlplug-findfs` does, mount a tmpfs root at `/sysroot`, apply the apkovl, install `pkgs=` + the
//! overlay's world + `alpine-base` from the boot repositories, finish the new root (runlevels, fstab,
//! repositories, inittab) and `switch_root` into `/sbin/init`. The documented differences from upstream
//! (boot-params.md §8) are: kernel-style double quotes on the command line, options from `/proc/cmdline`
//! only, superblock probing without blkid, event-driven media discovery with explicit timeouts,
//! a refusal of ambiguous overlays, an overlay signature policy (`apkovl_verify=`), and failures that
//! stop the boot with one clear line instead of an `ok.`.
//!
//! Shape (style.md "PID 1"): parsing ([`cmdline`]) and planning ([`plan`]) are pure and return values;
//! the thin executor ([`boot`]) walks them; every syscall lives in [`sys`], the only module allowed to
//! use `unsafe`. Two steps are implemented by other crates and reach the init through small traits:
//! applying the overlay ([`overlay::OverlayApplier`], crate `overlays`) and installing packages
//! ([`install::PackageInstaller`], crate `apk`).
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod applier;
pub mod boot;
pub mod cmdline;
pub mod console;
pub mod install;
pub mod installer;
pub mod media;
pub mod modules;
pub mod overlay;
pub mod plan;
pub mod probe;
pub mod rescue;
pub mod step;
pub mod sys;
pub mod timeline;
pub mod uevent;

pub use boot::{run, BootError};
pub use cmdline::BootConfig;
pub use install::{InstallReport, InstallRequest, PackageInstaller};
pub use overlay::{OverlayApplier, OverlayReport, OverlayRequest};
