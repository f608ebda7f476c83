//! The hybrid ISO (`--format iso`), as Alpine's are: ISO 9660 with Rock Ridge and Joliet, El
//! Torito boot records for BIOS (isolinux) and UEFI (an EFI system partition image holding
//! `EFI/BOOT/BOOTX64.EFI`), and an isohybrid MBR and partition table, so the same file boots
//! from a CD-ROM and from a USB stick it was written to, on both kinds of firmware. Packed by
//! `xorriso` (its `mkisofs` emulation), the tool Alpine's own `mkimage.sh` uses.
//!
//! The tree is staged as a directory first (the same writer as `--format dir`), then packed with
//! Rock Ridge (long names, as Linux reads them) and Joliet (long names for other systems), with
//! `-r` so owners and modes are normalised and do not leak from the build host. The volume id is
//! the label, which is what blkid reports as LABEL and what GRUB searches for. With a kernel, the
//! staged tree also gets `boot/syslinux/isolinux.bin` (isolinux reads `syslinux.cfg` and
//! `ldlinux.c32` from its own directory) and `boot/efi.img`, a small FAT image (made with
//! `mkfs.vfat` and mtools: too small for our FAT32 writer) with the EFI loader in it.
//! `SOURCE_DATE_EPOCH` is passed on: xorriso then takes its volume times and UUID from it, and
//! mtools the times inside the EFI image; the boot images' own times are the build time, so the
//! same input gives the same ISO, byte for byte.

use std::fs;
use std::path::Path;

use crate::bootloader::host::HostTool;
use crate::bootloader::{syslinux, EFI_BOOT};
use crate::error::{Error, IoResultExt};

const XORRISO: HostTool = HostTool {
    name: "xorriso",
    purpose: "--format iso",
    debian: "xorriso",
    alpine: "xorriso",
};

const MKFS_VFAT: HostTool = HostTool {
    name: "mkfs.vfat",
    purpose: "the ISO's EFI boot image",
    debian: "dosfstools",
    alpine: "dosfstools",
};

const MMD: HostTool = HostTool {
    name: "mmd",
    purpose: "the ISO's EFI boot image",
    debian: "mtools",
    alpine: "mtools",
};

const MCOPY: HostTool = HostTool {
    name: "mcopy",
    purpose: "the ISO's EFI boot image",
    debian: "mtools",
    alpine: "mtools",
};

/// The El Torito catalog, the BIOS boot image and the EFI boot image, in the staged tree.
pub const BOOT_CATALOG: &str = "boot/syslinux/boot.cat";
/// isolinux, beside the syslinux configuration it reads.
pub const ISOLINUX_BIN: &str = "boot/syslinux/isolinux.bin";
/// The EFI system partition image.
pub const EFI_IMG: &str = "boot/efi.img";

/// Adds the boot images to the staged tree `stage` (which holds [`EFI_BOOT`] already).
pub fn add_boot_images(stage: &Path, mtime: u64) -> Result<(), Error> {
    let isolinux = stage.join(ISOLINUX_BIN);
    fs::copy(syslinux::ISOLINUX_BIN.file()?, &isolinux).at(&isolinux)?;
    let efi = stage.join(EFI_BOOT);
    let len = fs::metadata(&efi).at(&efi)?.len();
    // The loader, FAT's own structures and a margin, in KiB (mkfs.vfat's unit).
    let kib = (len.div_ceil(1024) + 512).div_ceil(64) * 64;
    let img = stage.join(EFI_IMG);
    let epoch = mtime.to_string();
    MKFS_VFAT.run(
        MKFS_VFAT
            .command()
            .args(["-C", "-i", "0EF1B007"])
            .arg(&img)
            .arg(kib.to_string())
            .env("SOURCE_DATE_EPOCH", &epoch),
    )?;
    MMD.run(
        MMD.command()
            .arg("-i")
            .arg(&img)
            .args(["::/EFI", "::/EFI/BOOT"])
            .env("SOURCE_DATE_EPOCH", &epoch)
            .env("MTOOLS_SKIP_CHECK", "1"),
    )?;
    MCOPY.run(
        MCOPY
            .command()
            .arg("-i")
            .arg(&img)
            .arg(&efi)
            .arg(format!("::/{EFI_BOOT}"))
            .env("SOURCE_DATE_EPOCH", &epoch)
            .env("MTOOLS_SKIP_CHECK", "1"),
    )?;
    // The staged tree's times are the build time (Layout::stage_dir); the two new files, and
    // the directories they were added to, get it too, or the ISO would record the build's clock.
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    for path in [isolinux, img] {
        let parent = path.parent().expect("a staged file").to_path_buf();
        for p in [path, parent] {
            fs::File::open(&p)
                .and_then(|f| f.set_modified(when))
                .at(&p)?;
        }
    }
    Ok(())
}

/// Packs the staged tree `stage` into the ISO image `out`; `bootable` adds the El Torito
/// records and the isohybrid MBR (the stage then holds [`add_boot_images`]' files).
pub fn write_iso(
    stage: &Path,
    out: &Path,
    label: &str,
    mtime: u64,
    bootable: bool,
) -> Result<(), Error> {
    let mut cmd = XORRISO.command();
    cmd.args([
        "-as",
        "mkisofs",
        "-quiet",
        "-r",
        "-J",
        "-joliet-long",
        "-iso-level",
        "3",
        "-V",
        label,
    ]);
    if bootable {
        cmd.arg("-isohybrid-mbr")
            .arg(syslinux::ISOHDPFX_BIN.file()?)
            .args([
                "-c",
                BOOT_CATALOG,
                "-b",
                ISOLINUX_BIN,
                "-no-emul-boot",
                "-boot-load-size",
                "4",
                "-boot-info-table",
                "-eltorito-alt-boot",
                "-e",
                EFI_IMG,
                "-no-emul-boot",
                "-isohybrid-gpt-basdat",
            ]);
    }
    cmd.arg("-o")
        .arg(out)
        .arg(stage)
        .env("SOURCE_DATE_EPOCH", mtime.to_string());
    XORRISO.run(&mut cmd)?;
    Ok(())
}
