//! The USB image (`--format vfat`): what `dd` writes to a stick. An MBR with one active FAT32
//! partition from 1 MiB to the end of the image ([`crate::partition`]), the medium's FAT32
//! volume in it ([`crate::vfat`]), and, when the medium has a kernel, the boot loaders: syslinux
//! in the partition and its MBR code for legacy BIOS, `EFI/BOOT/BOOTX64.EFI` (in the layout
//! already) for UEFI.
//!
//! `--size` is the whole image, partition table included, so it still fits the stick exactly.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::bootloader::syslinux;
use crate::error::{Error, IoResultExt};
use crate::layout::Layout;
use crate::partition;
use crate::size;
use crate::vfat;

/// Boot code for a medium without a boot loader: `int 0x18` ("no bootable OS here", the BIOS
/// tries its next device), then halt.
const NO_BOOT_CODE: [u8; 5] = [0xCD, 0x18, 0xF4, 0xEB, 0xFD];

/// Writes the image of `len` bytes into `file` (new and empty) at `image`; `bootable` installs
/// syslinux and its MBR code (the layout then holds `boot/syslinux/` and the EFI loader).
pub fn write_image(
    layout: &Layout,
    file: &fs::File,
    image: &Path,
    len: u64,
    label: &str,
    mtime: u64,
    bootable: bool,
) -> Result<(), Error> {
    let smallest = vfat::smallest_volume(layout, image)? + partition::START;
    if len < smallest {
        return Err(Error::TooSmall {
            size: size::display(len),
            needed: size::display(smallest),
        });
    }
    let boot_code = if bootable {
        fs::read(syslinux::MBR_BIN.file()?).at(Path::new(syslinux::MBR_BIN.name))?
    } else {
        NO_BOOT_CODE.to_vec()
    };
    let start = partition::START;
    vfat::write_vfat(layout, file, image, start, len - start, label, mtime)?;
    if bootable {
        syslinux::install(image, start, mtime)?;
    }
    // The disk signature: the volume's serial, which follows the content.
    let mut f = file;
    let mut serial = [0u8; 4];
    f.seek(SeekFrom::Start(start + 0x43)).at(image)?;
    f.read_exact(&mut serial).at(image)?;
    let mbr = partition::mbr(&boot_code, u32::from_le_bytes(serial), len);
    f.seek(SeekFrom::Start(0)).at(image)?;
    f.write_all(&mbr).at(image)?;
    file.sync_all().at(image)
}
