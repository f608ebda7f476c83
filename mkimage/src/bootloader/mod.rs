//! Boot loaders on the medium, so that PC firmware boots it without any other step: syslinux
//! for legacy BIOS (the USB image's partition, and isolinux on the ISO) and an EFI binary at
//! `EFI/BOOT/BOOTX64.EFI`, the path UEFI firmware starts from removable media (GRUB, or a
//! signed unified kernel image for Secure Boot). Both read the configurations [`crate::boot`]
//! writes, so every boot path starts the same kernel, initramfs and command line.
//!
//! The loaders come from the host's Debian (or Alpine) packages; a missing one is an error that
//! names its package ([`host::HostTool`]).

pub mod grub;
pub mod host;
pub mod syslinux;

use crate::error::Error;
use crate::layout::{Layout, Source};

/// Where UEFI firmware looks for a boot loader on removable media (x86_64).
pub const EFI_BOOT: &str = "EFI/BOOT/BOOTX64.EFI";

/// Adds the boot loader files every format carries: `ldlinux.c32` beside the syslinux
/// configuration, and `efi` (a unified kernel image) or GRUB as [`EFI_BOOT`].
pub fn add_files(layout: &mut Layout, label: &str, efi: Option<Vec<u8>>) -> Result<(), Error> {
    let ldlinux = syslinux::LDLINUX_C32.file()?;
    layout.add_host_file(
        &format!("{}/ldlinux.c32", syslinux::DIR),
        &ldlinux,
        "syslinux",
    )?;
    let efi = match efi {
        Some(bytes) => bytes,
        None => grub::efi_binary(label)?,
    };
    let len = efi.len() as u64;
    layout.add_file(EFI_BOOT, Source::Bytes(efi), len)
}
