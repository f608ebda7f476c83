//! The project's PID 1 for the diskless initramfs, compatible with Alpine's `initramfs-init`.
//!
//! The boot reads like Alpine's: parse `/proc/cmdline`, load boot drivers, find the boot media the way
//! `nlplug-findfs` does, mount a tmpfs root at `/sysroot`, apply the apkovl, install `pkgs=` + the
//! overlay's world + `alpine-base` from the boot repositories, finish the new root (runlevels, fstab,
//! repositories, inittab) and `switch_root` into `/sbin/init`. The rules, the parameters and the
//! documented differences from upstream are in docs/boot.md; in short: kernel-style double quotes
//! on the command line, options from `/proc/cmdline` only, superblock probing without blkid,
//! event-driven media discovery with explicit timeouts, a refusal of ambiguous overlays, an
//! overlay trust policy that the image sets and the command line can only tighten, and failures
//! that stop the boot with one clear line instead of an `ok.`.
//!
//! Shape: parsing ([`cmdline`]) and planning ([`plan`]) are pure and return
//! values; the thin executor ([`boot`]) walks the phases, one method per phase, each asking
//! [`plan`] for its decisions; every syscall lives in [`sys`], the only module allowed to use
//! `unsafe`. The overlay is read, verified, decrypted and applied by the `overlays` crate and the
//! packages are installed by the embedded `apk` core, both called directly; the paths both sides
//! of the image agree on come from `bootspec`.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod boot;
pub mod cmdline;
pub mod console;
pub mod dhcp;
pub mod media;
pub mod modules;
pub mod plan;
pub mod probe;
pub mod rescue;
pub mod sys;
pub mod timeline;
pub mod uevent;

pub use boot::{run, BootError};
pub use cmdline::BootConfig;
