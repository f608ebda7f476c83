//! Filesystem type, label and UUID from the superblock, the way blkid reports them.
//!
//! Covers what boot media are made of: vfat (FAT12/16/32), iso9660 (with Joliet), ext2/3/4 and
//! squashfs; and recognises partition tables (MBR, GPT) so that a partitioned whole disk is not
//! mistaken for a filesystem (its partitions are probed instead). Filesystems are tried before
//! partition tables because an isohybrid image carries both an MBR and an iso9660 filesystem at
//! the start of the whole disk, and blkid reports it as iso9660. Values follow libblkid 2.38:
//! vfat LABEL from the root-directory volume entry, UUID `XXXX-XXXX`; iso9660 LABEL merged from
//! Joliet and the primary descriptor, UUID from the modification (else creation) date as
//! `YYYY-MM-DD-HH-MM-SS-CC`; ext UUID as lower-case 8-4-4-4-12; squashfs has neither.
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What a device holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A filesystem.
    Filesystem(FsInfo),
    /// A partition table (`dos` or `gpt`, blkid's PTTYPE).
    PartitionTable(&'static str),
    /// Nothing recognised.
    Unknown,
}

/// Filesystem identity, as blkid's TYPE, LABEL and UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsInfo {
    /// `vfat`, `iso9660`, `ext2`, `ext3`, `ext4`, `squashfs`, `squashfs3`.
    pub fstype: &'static str,
    /// Volume label.
    pub label: Option<String>,
    /// Volume UUID (or what blkid calls UUID for the type).
    pub uuid: Option<String>,
}

impl FsInfo {
    /// The kernel module that provides this filesystem type.
    pub fn module(&self) -> &'static str {
        match self.fstype {
            "vfat" => "vfat",
            "iso9660" => "isofs",
            "ext2" | "ext3" | "ext4" => "ext4",
            "squashfs" | "squashfs3" => "squashfs",
            other => other,
        }
    }
}

/// Random access to a device or image.
pub trait BlockSource {
    /// Reads up to `buf.len()` bytes at `offset`; a short read means end of device.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl BlockSource for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match FileExt::read_at(self, &mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

impl BlockSource for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = (offset as usize).min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// Why a device could not be probed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ProbeError {
    /// The device.
    pub path: std::path::PathBuf,
    /// Cause.
    pub source: io::Error,
}

/// Probes the device or image file at `path`.
pub fn probe_path(path: &Path) -> Result<Probe, ProbeError> {
    let err = |source| ProbeError {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(err)?;
    probe(&file).map_err(err)
}

/// The first 64 KiB cover every superblock we read (iso9660 descriptors from 32 KiB on).
const HEAD: usize = 64 * 1024;

/// Probes a block source.
pub fn probe<S: BlockSource + ?Sized>(dev: &S) -> io::Result<Probe> {
    let mut head = vec![0u8; HEAD];
    let n = dev.read_at(&mut head, 0)?;
    head.truncate(n);
    if let Some(fs) = probe_iso9660(&head) {
        return Ok(Probe::Filesystem(fs));
    }
    if let Some(fs) = probe_ext(&head) {
        return Ok(Probe::Filesystem(fs));
    }
    if let Some(fs) = probe_squashfs(&head) {
        return Ok(Probe::Filesystem(fs));
    }
    if let Some(fs) = probe_vfat(dev, &head)? {
        return Ok(Probe::Filesystem(fs));
    }
    if let Some(pt) = probe_partition_table(&head) {
        return Ok(Probe::PartitionTable(pt));
    }
    Ok(Probe::Unknown)
}

fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Label bytes → string with trailing spaces and NULs removed (blkid trims both).
fn trimmed_label(bytes: &[u8]) -> Option<String> {
    let text: String = bytes.iter().map(|&b| b as char).collect();
    let t = text.trim_end_matches([' ', '\0']);
    (!t.is_empty()).then(|| t.to_string())
}

// ---- iso9660 -----------------------------------------------------------------------------------

fn probe_iso9660(head: &[u8]) -> Option<FsInfo> {
    const SECTOR: usize = 2048;
    let pvd_off = 16 * SECTOR;
    let pvd = head.get(pvd_off..pvd_off + SECTOR)?;
    if pvd[0] != 1 || &pvd[1..6] != b"CD001" {
        return None;
    }
    // Look for a Joliet supplementary descriptor among the following descriptors.
    let mut joliet: Option<&[u8]> = None;
    for i in 17..(HEAD / SECTOR) {
        let Some(vd) = head.get(i * SECTOR..(i + 1) * SECTOR) else {
            break;
        };
        if &vd[1..6] != b"CD001" || vd[0] == 255 {
            break;
        }
        // Joliet escape sequences %/@, %/C, %/E (UCS-2 levels 1-3).
        if vd[0] == 2 && vd[88] == b'%' && vd[89] == b'/' && matches!(vd[90], b'@' | b'C' | b'E') {
            joliet = Some(vd);
            break;
        }
    }
    let pvd_label = &pvd[40..72];
    let label = joliet
        .and_then(|j| merge_joliet_label(&j[40..72], pvd_label))
        .or_else(|| trimmed_label(pvd_label));
    let uuid = iso_date_uuid(&pvd[830..847]).or_else(|| iso_date_uuid(&pvd[813..830]));
    Some(FsInfo {
        fstype: "iso9660",
        label,
        uuid,
    })
}

/// libblkid's `merge_utf16be_ascii`: Joliet holds 16 UCS-2 characters with the real case, the
/// primary descriptor 32 ASCII characters; take Joliet's where they agree case-insensitively (or
/// where the ASCII has the `_` replacement), then the rest of the ASCII label. Any disagreement
/// means the two are unrelated and the primary label is used.
fn merge_joliet_label(utf16: &[u8], ascii: &[u8]) -> Option<String> {
    let mut out = String::new();
    for i in 0..16 {
        let unit = u16::from_be_bytes([utf16[2 * i], utf16[2 * i + 1]]);
        let a = ascii[i];
        if a == b'_' && unit >= 0x80 {
            out.push(char::from_u32(unit as u32).unwrap_or('\u{fffd}'));
        } else if unit < 0x80 && (unit as u8).eq_ignore_ascii_case(&a) {
            out.push(unit as u8 as char);
        } else {
            return None;
        }
    }
    out.extend(ascii[16..].iter().map(|&b| b as char));
    let t = out.trim_end_matches([' ', '\0']);
    (!t.is_empty()).then(|| t.to_string())
}

/// A 17-byte ISO date (16 digits + timezone) → blkid's UUID, or `None` when unset.
fn iso_date_uuid(d: &[u8]) -> Option<String> {
    let digits = &d[..16];
    if digits.iter().all(|&c| c == b'0' || c == 0) && d[16] == 0 {
        return None;
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let s = |r: std::ops::Range<usize>| String::from_utf8_lossy(&digits[r]).into_owned();
    Some(format!(
        "{}-{}-{}-{}-{}-{}-{}",
        s(0..4),
        s(4..6),
        s(6..8),
        s(8..10),
        s(10..12),
        s(12..14),
        s(14..16)
    ))
}

// ---- ext2/3/4 ----------------------------------------------------------------------------------

fn probe_ext(head: &[u8]) -> Option<FsInfo> {
    let sb = head.get(1024..2048)?;
    if le16(sb, 56) != 0xEF53 {
        return None;
    }
    let compat = le32(sb, 92);
    let incompat = le32(sb, 96);
    let ro_compat = le32(sb, 100);
    const HAS_JOURNAL: u32 = 0x4;
    const JOURNAL_DEV: u32 = 0x8;
    // Features ext3 understands (libblkid's EXT3_FEATURE_*_SUPP); anything else makes it ext4.
    const EXT3_RO_SUPP: u32 = 0x1 | 0x2 | 0x4;
    const EXT3_INCOMPAT_SUPP: u32 = 0x2 | 0x4 | 0x10;
    if incompat & JOURNAL_DEV != 0 {
        return None; // an external journal, not a mountable filesystem
    }
    let ext3_ok = ro_compat & !EXT3_RO_SUPP == 0 && incompat & !EXT3_INCOMPAT_SUPP == 0;
    let fstype = match (compat & HAS_JOURNAL != 0, ext3_ok) {
        (_, false) => "ext4",
        (true, true) => "ext3",
        (false, true) => "ext2",
    };
    let uuid_bytes = &sb[104..120];
    let uuid = (!uuid_bytes.iter().all(|&b| b == 0)).then(|| format_uuid(uuid_bytes));
    let label = trimmed_label(&sb[120..136]);
    Some(FsInfo {
        fstype,
        label,
        uuid,
    })
}

fn format_uuid(b: &[u8]) -> String {
    let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        hex[0..4].concat(),
        hex[4..6].concat(),
        hex[6..8].concat(),
        hex[8..10].concat(),
        hex[10..16].concat()
    )
}

// ---- squashfs ----------------------------------------------------------------------------------

fn probe_squashfs(head: &[u8]) -> Option<FsInfo> {
    if head.get(0..4)? != b"hsqs" {
        return None;
    }
    let major = le16(head.get(0..30)?, 28);
    let fstype = if major >= 4 { "squashfs" } else { "squashfs3" };
    Some(FsInfo {
        fstype,
        label: None,
        uuid: None,
    })
}

// ---- vfat --------------------------------------------------------------------------------------

const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_DIR: u8 = 0x10;
const ATTR_LFN: u8 = 0x0F;

fn probe_vfat<S: BlockSource + ?Sized>(dev: &S, head: &[u8]) -> io::Result<Option<FsInfo>> {
    let Some(bs) = head.get(0..512) else {
        return Ok(None);
    };
    let fat1x_magic = [&b"FAT12   "[..], b"FAT16   ", b"FAT     ", b"MSDOS"]
        .iter()
        .any(|m| bs[0x36..].starts_with(m));
    let fat32_magic = bs[0x52..].starts_with(b"FAT32   ") || bs[0x52..].starts_with(b"MSWIN");
    if !fat1x_magic && !fat32_magic {
        return Ok(None);
    }
    let sector_size = le16(bs, 0x0B) as u64;
    let cluster_sectors = bs[0x0D] as u64;
    let reserved = le16(bs, 0x0E) as u64;
    let fats = bs[0x10] as u64;
    let root_entries = le16(bs, 0x11) as u64;
    let media = bs[0x15];
    let fat16_len = le16(bs, 0x16) as u64;
    let fat32_len = le32(bs, 0x24) as u64;
    let valid = matches!(sector_size, 512 | 1024 | 2048 | 4096)
        && cluster_sectors.is_power_of_two()
        && reserved > 0
        && fats > 0
        && (media == 0xF0 || media >= 0xF8)
        && (fat16_len > 0 || fat32_len > 0);
    if !valid {
        return Ok(None);
    }
    let (serial, root_label) = if fat16_len > 0 {
        let root_start = (reserved + fats * fat16_len) * sector_size;
        (
            le32(bs, 0x27),
            find_volume_label(dev, root_start, root_entries)?,
        )
    } else {
        let data_start = (reserved + fats * fat32_len) * sector_size;
        let cluster_bytes = cluster_sectors * sector_size;
        let fat_start = reserved * sector_size;
        let mut cluster = le32(bs, 0x2C) as u64 & 0x0FFF_FFFF;
        let mut label = None;
        // Follow the root directory's cluster chain, bounded like libblkid (100 clusters).
        for _ in 0..100 {
            if !(2..0x0FFF_FFF8).contains(&cluster) {
                break;
            }
            let start = data_start + (cluster - 2) * cluster_bytes;
            match find_volume_label_in(dev, start, cluster_bytes / 32)? {
                Scan::Found(l) => {
                    label = Some(l);
                    break;
                }
                Scan::End => break,
                Scan::More => {}
            }
            let mut next = [0u8; 4];
            if dev.read_at(&mut next, fat_start + cluster * 4)? < 4 {
                break;
            }
            cluster = u32::from_le_bytes(next) as u64 & 0x0FFF_FFFF;
        }
        (le32(bs, 0x43), label)
    };
    let uuid = Some(format!("{:04X}-{:04X}", serial >> 16, serial & 0xFFFF));
    Ok(Some(FsInfo {
        fstype: "vfat",
        label: root_label,
        uuid,
    }))
}

enum Scan {
    Found(String),
    End,
    More,
}

fn find_volume_label<S: BlockSource + ?Sized>(
    dev: &S,
    start: u64,
    entries: u64,
) -> io::Result<Option<String>> {
    Ok(match find_volume_label_in(dev, start, entries)? {
        Scan::Found(l) => Some(l),
        _ => None,
    })
}

/// Scans `entries` 32-byte directory entries at `start` for the volume-label entry.
fn find_volume_label_in<S: BlockSource + ?Sized>(
    dev: &S,
    start: u64,
    entries: u64,
) -> io::Result<Scan> {
    let entries = entries.min(65536) as usize;
    let mut buf = vec![0u8; entries * 32];
    let n = dev.read_at(&mut buf, start)?;
    for entry in buf[..n - n % 32].chunks_exact(32) {
        match entry[0] {
            0x00 => return Ok(Scan::End),
            0xE5 => continue,
            _ => {}
        }
        let attr = entry[11];
        if attr == ATTR_LFN {
            continue;
        }
        if attr & (ATTR_VOLUME_ID | ATTR_DIR) == ATTR_VOLUME_ID {
            let mut name = [0u8; 11];
            name.copy_from_slice(&entry[..11]);
            if name[0] == 0x05 {
                name[0] = 0xE5;
            }
            return Ok(trimmed_label(&name).map(Scan::Found).unwrap_or(Scan::End));
        }
    }
    Ok(Scan::More)
}

// ---- partition tables --------------------------------------------------------------------------

fn probe_partition_table(head: &[u8]) -> Option<&'static str> {
    // GPT header at LBA 1 for 512- or 4096-byte sectors.
    for lba1 in [512usize, 4096] {
        if head.get(lba1..lba1 + 8) == Some(b"EFI PART") {
            return Some("gpt");
        }
    }
    let mbr = head.get(0..512)?;
    if mbr[510] != 0x55 || mbr[511] != 0xAA {
        return None;
    }
    let entries: Vec<&[u8]> = (0..4)
        .map(|i| &mbr[446 + 16 * i..446 + 16 * (i + 1)])
        .collect();
    let sane = entries.iter().all(|e| e[0] == 0x00 || e[0] == 0x80);
    let used = entries.iter().any(|e| e[4] != 0 && le32(e, 12) != 0);
    (sane && used).then_some("dos")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_tiny_inputs_are_unknown() {
        assert_eq!(probe(&[][..]).unwrap(), Probe::Unknown);
        assert_eq!(probe(&[0u8; 100][..]).unwrap(), Probe::Unknown);
        assert_eq!(probe(&vec![0xFFu8; 70000][..]).unwrap(), Probe::Unknown);
    }

    fn mbr(entries: &[(u8, u8, u32, u32)]) -> Vec<u8> {
        let mut d = vec![0u8; 4096];
        for (i, (status, ty, start, len)) in entries.iter().enumerate() {
            let e = 446 + 16 * i;
            d[e] = *status;
            d[e + 4] = *ty;
            d[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
            d[e + 12..e + 16].copy_from_slice(&len.to_le_bytes());
        }
        d[510] = 0x55;
        d[511] = 0xAA;
        d
    }

    #[test]
    fn mbr_and_gpt_are_partition_tables() {
        assert_eq!(
            probe(&mbr(&[(0x80, 0x0c, 2048, 100000)])[..]).unwrap(),
            Probe::PartitionTable("dos")
        );
        let mut gpt = mbr(&[(0, 0xEE, 1, 0xFFFF_FFFF)]);
        gpt[512..520].copy_from_slice(b"EFI PART");
        assert_eq!(probe(&gpt[..]).unwrap(), Probe::PartitionTable("gpt"));
        // 0x55AA with garbage status bytes is not a partition table.
        assert_eq!(
            probe(&mbr(&[(0x13, 0x0c, 2048, 100)])[..]).unwrap(),
            Probe::Unknown
        );
        // An empty table is not either.
        assert_eq!(probe(&mbr(&[])[..]).unwrap(), Probe::Unknown);
    }

    #[test]
    fn iso_date_uuid_format_and_unset() {
        assert_eq!(
            iso_date_uuid(b"2024010203040500\x00").as_deref(),
            Some("2024-01-02-03-04-05-00")
        );
        assert_eq!(iso_date_uuid(b"0000000000000000\x00"), None);
        assert_eq!(iso_date_uuid(&[0u8; 17]), None);
        assert_eq!(iso_date_uuid(b"20x4010203040500\x00"), None);
    }

    #[test]
    fn joliet_merge_follows_libblkid() {
        let utf16 = |s: &str| -> Vec<u8> {
            let mut v: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
            while v.len() < 32 {
                v.extend_from_slice(&[0, b' ']);
            }
            v.truncate(32);
            v
        };
        let ascii = |s: &str| -> Vec<u8> { format!("{s:<32}").into_bytes() };
        assert_eq!(
            merge_joliet_label(
                &utf16("My Long Disk Lab"),
                &ascii("MY LONG DISK LABEL WITH")
            )
            .as_deref(),
            Some("My Long Disk LabEL WITH")
        );
        assert_eq!(
            merge_joliet_label(&utf16("lower"), &ascii("LOWER")).as_deref(),
            Some("lower")
        );
        assert_eq!(merge_joliet_label(&utf16("other"), &ascii("LOWER")), None);
    }

    #[test]
    fn truncated_fat_root_dir_is_handled() {
        // A FAT16 boot sector whose root directory lies beyond the end of the data.
        let mut bs = vec![0u8; 512];
        bs[0x0B..0x0D].copy_from_slice(&512u16.to_le_bytes());
        bs[0x0D] = 4;
        bs[0x0E..0x10].copy_from_slice(&1u16.to_le_bytes());
        bs[0x10] = 2;
        bs[0x11..0x13].copy_from_slice(&512u16.to_le_bytes());
        bs[0x15] = 0xF8;
        bs[0x16..0x18].copy_from_slice(&32u16.to_le_bytes());
        bs[0x27..0x2B].copy_from_slice(&0x1234_ABCDu32.to_le_bytes());
        bs[0x36..0x3E].copy_from_slice(b"FAT16   ");
        let p = probe(&bs[..]).unwrap();
        assert_eq!(
            p,
            Probe::Filesystem(FsInfo {
                fstype: "vfat",
                label: None,
                uuid: Some("1234-ABCD".into())
            })
        );
    }

    #[test]
    fn fat_magic_with_bad_bpb_is_not_vfat() {
        let mut bs = vec![0u8; 512];
        bs[0x36..0x3E].copy_from_slice(b"FAT16   ");
        bs[0x0B..0x0D].copy_from_slice(&513u16.to_le_bytes());
        assert_eq!(probe(&bs[..]).unwrap(), Probe::Unknown);
    }

    #[test]
    fn ext_feature_classification() {
        let mut img = vec![0u8; 4096];
        img[1024 + 56..1024 + 58].copy_from_slice(&0xEF53u16.to_le_bytes());
        let set = |img: &mut Vec<u8>, compat: u32, incompat: u32, ro: u32| {
            img[1024 + 92..1024 + 96].copy_from_slice(&compat.to_le_bytes());
            img[1024 + 96..1024 + 100].copy_from_slice(&incompat.to_le_bytes());
            img[1024 + 100..1024 + 104].copy_from_slice(&ro.to_le_bytes());
        };
        let ty = |img: &Vec<u8>| match probe(&img[..]).unwrap() {
            Probe::Filesystem(f) => f.fstype,
            other => panic!("{other:?}"),
        };
        set(&mut img, 0, 0x2, 0x3);
        assert_eq!(ty(&img), "ext2");
        set(&mut img, 0x4, 0x2, 0x3);
        assert_eq!(ty(&img), "ext3");
        set(&mut img, 0x4, 0x2 | 0x40, 0x3);
        assert_eq!(ty(&img), "ext4");
        set(&mut img, 0, 0x2, 0x3 | 0x8);
        assert_eq!(ty(&img), "ext4");
        set(&mut img, 0, 0x8, 0);
        assert_eq!(probe(&img[..]).unwrap(), Probe::Unknown, "journal device");
    }

    #[test]
    fn module_names() {
        let fs = |t| FsInfo {
            fstype: t,
            label: None,
            uuid: None,
        };
        assert_eq!(fs("iso9660").module(), "isofs");
        assert_eq!(fs("ext3").module(), "ext4");
        assert_eq!(fs("vfat").module(), "vfat");
        assert_eq!(fs("squashfs").module(), "squashfs");
    }
}
