//! The partition table of the USB image: a classic MBR with one active FAT32 partition, the
//! layout every PC firmware boots from a stick (legacy BIOS runs the MBR's boot code, which
//! chain-loads the active partition's boot sector; UEFI finds its EFI system partition on it:
//! UEFI accepts a FAT partition of MBR type 0x0C as one when it holds `EFI/BOOT/BOOTX64.EFI`).
//!
//! The partition starts at 1 MiB (sector 2048), as fdisk and Windows align partitions, so that
//! writes line up with a stick's flash erase blocks; it runs to the end of the image.
//!
//! Written by hand rather than with the `mbrman` crate: one 16-byte entry, the disk signature
//! and the boot signature are all there is to it, and `mbrman` would bring serde, bincode and
//! bitvec into a static build for that. The layout is the one every MBR tool reads (fdisk,
//! blkid, the kernel's `msdos` partition parser), and the tests check it with them.

/// Sectors are 512 bytes on every stick and in every firmware's view of one.
pub const SECTOR: u64 = 512;

/// Where the partition starts: 1 MiB.
pub const START: u64 = 1 << 20;

/// The bytes of MBR boot code before the disk signature.
pub const BOOT_CODE: usize = 440;

/// MBR partition type of FAT32 addressed by LBA.
const FAT32_LBA: u8 = 0x0C;
/// The active (bootable) flag.
const ACTIVE: u8 = 0x80;

/// The MBR sector of an image of `image_len` bytes: `boot_code` (at most 440 bytes, e.g.
/// syslinux's `mbr.bin`), the disk signature, and one active FAT32 partition from [`START`] to
/// the end of the image. `image_len` is at most 2 TiB (the caller checked FAT32's limit).
pub fn mbr(boot_code: &[u8], disk_signature: u32, image_len: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    let code = &boot_code[..boot_code.len().min(BOOT_CODE)];
    b[..code.len()].copy_from_slice(code);
    b[440..444].copy_from_slice(&disk_signature.to_le_bytes());
    let first = START / SECTOR;
    let sectors = image_len / SECTOR - first;
    let e = &mut b[446..462];
    e[0] = ACTIVE;
    e[1..4].copy_from_slice(&chs(first));
    e[4] = FAT32_LBA;
    e[5..8].copy_from_slice(&chs(first + sectors - 1));
    e[8..12].copy_from_slice(&(first as u32).to_le_bytes());
    e[12..16].copy_from_slice(&(sectors as u32).to_le_bytes());
    b[510] = 0x55;
    b[511] = 0xAA;
    b
}

/// The cylinder/head/sector address of `lba` with 255 heads and 63 sectors per track (what
/// BIOSes assume for USB disks); past CHS's reach it is the conventional 1023/254/63.
fn chs(lba: u64) -> [u8; 3] {
    const HEADS: u64 = 255;
    const SECTORS: u64 = 63;
    let cylinder = lba / (HEADS * SECTORS);
    if cylinder > 1023 {
        return [0xFE, 0xFF, 0xFF];
    }
    let head = (lba / SECTORS) % HEADS;
    let sector = lba % SECTORS + 1;
    [
        head as u8,
        ((cylinder >> 2) & 0xC0) as u8 | sector as u8,
        (cylinder & 0xFF) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_active_fat32_partition_from_one_mib_to_the_end() {
        let code = [0xAB; 440];
        let m = mbr(&code, 0x1234_5678, 64 << 20);
        assert_eq!(m[..440], code);
        assert_eq!(m[440..444], [0x78, 0x56, 0x34, 0x12]);
        let e = &m[446..462];
        assert_eq!(e[0], 0x80);
        assert_eq!(e[4], 0x0C);
        assert_eq!(u32::from_le_bytes(e[8..12].try_into().unwrap()), 2048);
        assert_eq!(
            u32::from_le_bytes(e[12..16].try_into().unwrap()),
            (64 << 20) / 512 - 2048
        );
        // Sector 2048 is cylinder 0, head 32, sector 33.
        assert_eq!(e[1..4], [32, 33, 0]);
        assert!(m[462..510].iter().all(|&b| b == 0), "one entry only");
        assert_eq!(m[510..], [0x55, 0xAA]);
    }

    #[test]
    fn chs_saturates_past_its_reach() {
        assert_eq!(chs(0), [0, 1, 0]);
        // Cylinder 300: the high two bits of the cylinder go into the sector byte.
        assert_eq!(chs(300 * 255 * 63), [0, 0x40 | 1, 44]);
        assert_eq!(chs(1 << 30), [0xFE, 0xFF, 0xFF]);
    }
}
