//! The contract between the tools that build boot images (`mkinitfs`, `mkimage`) and the init
//! that reads them at boot.
//!
//! Everything written at build time and read at boot lives here once, compiled into both sides
//! (booster's shared-contract idea): where things are on the boot medium ([`medium`]), where
//! things are inside the initramfs ([`initramfs`]), the modloop and its signature ([`modloop`]),
//! and the boot policy the initramfs carries
//! ([`policy`]). Nothing here does I/O beyond parsing and rendering text, so the static PID 1
//! links it at no cost.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod initramfs;
pub mod medium;
pub mod modloop;
pub mod policy;

pub use policy::{is_host_name, BootPolicy, OverlayRequirement, PolicyError};
