//! syslinux for legacy BIOS: `ldlinux.c32` beside the configuration in `boot/syslinux/`, the boot
//! sector and `ldlinux.sys` installed into the FAT partition of the image file by Debian's
//! mtools-based `syslinux` (no root, no loop device: it takes the partition's byte offset), and
//! the MBR boot code (`mbr.bin`) that chain-loads the active partition. On the ISO, isolinux
//! reads the same configuration from the same directory.

use std::path::Path;

use super::host::HostTool;
use crate::error::Error;

/// The directory of the configuration and the syslinux files on the medium.
pub const DIR: &str = "boot/syslinux";

/// syslinux's core module, which every syslinux variant loads from its own directory.
pub const LDLINUX_C32: HostTool = HostTool {
    name: "/usr/lib/syslinux/modules/bios/ldlinux.c32",
    purpose: "booting on BIOS PCs",
    debian: "syslinux-common",
    alpine: "syslinux",
};

/// The MBR boot code: loads the active partition's boot sector.
pub const MBR_BIN: HostTool = HostTool {
    name: "/usr/lib/syslinux/mbr/mbr.bin",
    purpose: "booting the USB image on BIOS PCs",
    debian: "syslinux-common",
    alpine: "syslinux",
};

/// The installer (Debian's build uses mtools and takes `--offset`).
pub const SYSLINUX: HostTool = HostTool {
    name: "syslinux",
    purpose: "booting the USB image on BIOS PCs",
    debian: "syslinux",
    alpine: "syslinux",
};

/// isolinux, the El Torito boot image for BIOS.
pub const ISOLINUX_BIN: HostTool = HostTool {
    name: "/usr/lib/ISOLINUX/isolinux.bin",
    purpose: "booting the ISO on BIOS PCs",
    debian: "isolinux",
    alpine: "syslinux",
};

/// The isohybrid MBR: BIOS boots isolinux from the ISO written to a USB stick.
pub const ISOHDPFX_BIN: HostTool = HostTool {
    name: "/usr/lib/ISOLINUX/isohdpfx.bin",
    purpose: "booting the ISO from a USB stick on BIOS PCs",
    debian: "isolinux",
    alpine: "syslinux",
};

/// Installs syslinux's boot sector and `ldlinux.sys` into the FAT volume at byte `offset` of
/// `image`, for the configuration in [`DIR`]. The installer writes `ldlinux.sys` through mtools;
/// `SOURCE_DATE_EPOCH` gives it the build time.
pub fn install(image: &Path, offset: u64, mtime: u64) -> Result<(), Error> {
    SYSLINUX.run(
        SYSLINUX
            .command()
            .arg("--install")
            .arg("--offset")
            .arg(offset.to_string())
            .arg("--directory")
            .arg(format!("/{DIR}"))
            .arg(image)
            .env("SOURCE_DATE_EPOCH", mtime.to_string())
            .env("MTOOLS_SKIP_CHECK", "1"),
    )?;
    Ok(())
}
