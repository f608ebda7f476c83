//! FAT32 on-disk structures, as Microsoft's FAT specification (fatgen103) defines them: the
//! volume geometry, boot sector, FSInfo sector, FAT time stamps, and directory entries with long
//! names and generated short names.
//!
//! Pure functions from values to bytes; [`crate::vfat`] decides what goes where. We write FAT32
//! ourselves because the whole tree is known before the first byte is written: every file and
//! directory gets one contiguous cluster run in sorted path order, so the layout is reproducible
//! by construction. (The `fatfs` crate's last release writes `.`/`..` entries that fsck.fat
//! rejects.)

use std::collections::HashSet;

use crate::date::Civil;

/// Bytes per sector; the only size every tool and firmware handles.
pub const SECTOR: u64 = 512;
/// Bytes per directory entry.
pub const ENTRY: usize = 32;
/// FAT32 needs at least this many clusters (fewer is FAT16 by definition).
pub const MIN_CLUSTERS: u32 = 65_525;
/// End-of-chain marker.
pub const EOC: u32 = 0x0FFF_FFFF;
/// A FAT32 directory holds at most 65536 entries (Linux and Windows refuse more).
pub const MAX_DIR_ENTRIES: usize = 65_536;

const ATTR_VOLUME_ID: u8 = 0x08;
/// Directory attribute.
pub const ATTR_DIRECTORY: u8 = 0x10;
/// Regular file attribute (archive bit, as every writer sets it on new files).
pub const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_LFN: u8 = 0x0F;
const MEDIA: u8 = 0xF8;
const FATS: u32 = 2;

/// Where everything is on a FAT32 volume of a given size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Volume size in sectors.
    pub total_sectors: u32,
    /// Sectors per cluster.
    pub sectors_per_cluster: u32,
    /// Reserved sectors before the first FAT (boot sector, FSInfo, backups, alignment).
    pub reserved: u32,
    /// Sectors per FAT.
    pub fat_sectors: u32,
    /// Data clusters (numbered from 2).
    pub clusters: u32,
}

impl Geometry {
    /// The geometry for `bytes`, with fatgen103's cluster sizes for FAT32 and the data area
    /// aligned to a cluster (flash erase blocks like aligned writes).
    pub fn for_size(bytes: u64) -> Result<Geometry, String> {
        let total = bytes / SECTOR;
        let total_sectors =
            u32::try_from(total).map_err(|_| "larger than FAT32's 2 TiB".to_string())?;
        let mib = bytes >> 20;
        let sectors_per_cluster = match mib {
            0..=260 => 1,
            261..=8192 => 8,
            8193..=16384 => 16,
            16385..=32768 => 32,
            _ => 64,
        };
        let mut reserved = 32;
        // fatgen103's FAT size: rounds up, so the FAT always covers every cluster.
        let per_fat_unit = (256 * sectors_per_cluster + FATS) / 2;
        let fat_sectors = (total_sectors.saturating_sub(reserved)).div_ceil(per_fat_unit);
        reserved += (sectors_per_cluster - (reserved + FATS * fat_sectors) % sectors_per_cluster)
            % sectors_per_cluster;
        let data_start = reserved + FATS * fat_sectors;
        let clusters = total_sectors.saturating_sub(data_start) / sectors_per_cluster;
        if clusters < MIN_CLUSTERS {
            return Err(format!(
                "{clusters} clusters; FAT32 needs at least {MIN_CLUSTERS}"
            ));
        }
        Ok(Geometry {
            total_sectors,
            sectors_per_cluster,
            reserved,
            fat_sectors,
            clusters,
        })
    }

    /// Bytes per cluster.
    pub fn cluster_bytes(&self) -> u64 {
        u64::from(self.sectors_per_cluster) * SECTOR
    }

    /// Byte offset of FAT number `n` (0 or 1).
    pub fn fat_offset(&self, n: u32) -> u64 {
        u64::from(self.reserved + n * self.fat_sectors) * SECTOR
    }

    /// Byte offset of cluster `c` (≥ 2).
    pub fn cluster_offset(&self, c: u32) -> u64 {
        u64::from(self.reserved + FATS * self.fat_sectors) * SECTOR
            + u64::from(c - 2) * self.cluster_bytes()
    }

    /// Bytes before the data area.
    pub fn overhead(&self) -> u64 {
        u64::from(self.reserved + FATS * self.fat_sectors) * SECTOR
    }
}

/// A FAT date and time (local time by convention; we store UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// `(year - 1980) << 9 | month << 5 | day`.
    pub date: u16,
    /// `hour << 11 | minute << 5 | second / 2`.
    pub time: u16,
}

impl Stamp {
    /// The stamp for `secs` since the epoch, clamped to FAT's range (1980 to 2107).
    pub fn from_epoch(secs: u64) -> Stamp {
        let c = Civil::from_epoch(secs);
        if c.year < 1980 {
            return Stamp {
                date: 1 << 5 | 1,
                time: 0,
            };
        }
        if c.year > 2107 {
            return Stamp {
                date: 127 << 9 | 12 << 5 | 31,
                time: 23 << 11 | 59 << 5 | 29,
            };
        }
        Stamp {
            date: ((c.year - 1980) as u16) << 9 | (c.month as u16) << 5 | c.day as u16,
            time: (c.hour as u16) << 11 | (c.min as u16) << 5 | (c.sec / 2) as u16,
        }
    }
}

/// The boot sector (also written as the backup at sector 6).
/// `hidden` is the number of sectors before the volume (its partition's start).
pub fn boot_sector(g: &Geometry, hidden: u32, volume_id: u32, label: &[u8; 11]) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[0..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
    b[3..11].copy_from_slice(b"MSWIN4.1");
    put16(&mut b, 0x0B, SECTOR as u16);
    b[0x0D] = g.sectors_per_cluster as u8;
    put16(&mut b, 0x0E, g.reserved as u16);
    b[0x10] = FATS as u8;
    b[0x15] = MEDIA;
    put16(&mut b, 0x18, 63); // sectors per track: unused by LBA, conventional values
    put16(&mut b, 0x1A, 255); // heads
    put32(&mut b, 0x1C, hidden);
    put32(&mut b, 0x20, g.total_sectors);
    put32(&mut b, 0x24, g.fat_sectors);
    put32(&mut b, 0x2C, 2); // root directory cluster
    put16(&mut b, 0x30, 1); // FSInfo sector
    put16(&mut b, 0x32, 6); // backup boot sector
    b[0x40] = 0x80; // drive number
    b[0x42] = 0x29; // extended boot signature: volume id, label and type follow
    put32(&mut b, 0x43, volume_id);
    b[0x47..0x52].copy_from_slice(label);
    b[0x52..0x5A].copy_from_slice(b"FAT32   ");
    // Boot code at the jump target: `int 0x18` (no bootable OS: BIOS tries the next device),
    // then halt. A boot loader installed later (syslinux) replaces it.
    b[0x5A..0x5F].copy_from_slice(&[0xCD, 0x18, 0xF4, 0xEB, 0xFD]);
    b[510] = 0x55;
    b[511] = 0xAA;
    b
}

/// The FSInfo sector (also written as the backup at sector 7).
pub fn fsinfo_sector(free_clusters: u32, next_free: u32) -> [u8; 512] {
    let mut b = [0u8; 512];
    put32(&mut b, 0, 0x4161_5252);
    put32(&mut b, 0x1E4, 0x6141_7272);
    put32(&mut b, 0x1E8, free_clusters);
    put32(&mut b, 0x1EC, next_free);
    put32(&mut b, 0x1FC, 0xAA55_0000);
    b
}

/// The first two FAT entries: media byte, and the "clean, no errors" flags.
pub fn fat_head() -> [u32; 2] {
    [0x0FFF_FF00 | u32::from(MEDIA), EOC]
}

/// One directory entry to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The long name (`None` when the short name says it exactly).
    pub long: Option<String>,
    /// The 8.3 name, space padded.
    pub short: [u8; 11],
    /// `ATTR_DIRECTORY` or `ATTR_ARCHIVE`.
    pub attr: u8,
    /// First cluster (0 for empty files and for `..` pointing at the root).
    pub cluster: u32,
    /// File size (0 for directories).
    pub size: u32,
}

impl Entry {
    /// The 32-byte slots this entry takes.
    pub fn slots(&self) -> usize {
        1 + self.long.as_deref().map_or(0, lfn_slots)
    }
}

/// Slots of long-name entries for `name` (13 UTF-16 units each).
pub fn lfn_slots(name: &str) -> usize {
    name.encode_utf16().count().div_ceil(13)
}

/// `.` or `..` of a directory.
pub fn dot_entry(dots: usize, cluster: u32) -> Entry {
    let mut short = [b' '; 11];
    short[..dots].fill(b'.');
    Entry {
        long: None,
        short,
        attr: ATTR_DIRECTORY,
        cluster,
        size: 0,
    }
}

/// The root directory's volume label entry.
pub fn label_entry(label: &[u8; 11]) -> Entry {
    Entry {
        long: None,
        short: *label,
        attr: ATTR_VOLUME_ID,
        cluster: 0,
        size: 0,
    }
}

/// Serialises entries (long-name slots before each short entry), every time stamp `stamp`.
pub fn directory_bytes(entries: &[Entry], stamp: Stamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(Entry::slots).sum::<usize>() * ENTRY);
    for e in entries {
        if let Some(long) = &e.long {
            let units: Vec<u16> = long.encode_utf16().collect();
            let n = lfn_slots(long);
            let sum = short_checksum(&e.short);
            // Stored last part first; the first slot written carries the 0x40 "last" flag.
            for seq in (1..=n).rev() {
                let mut slot = [0u8; ENTRY];
                slot[0] = seq as u8 | if seq == n { 0x40 } else { 0 };
                slot[11] = ATTR_LFN;
                slot[13] = sum;
                let part: Vec<u16> = (0..13)
                    .map(|i| {
                        let at = (seq - 1) * 13 + i;
                        match at.cmp(&units.len()) {
                            std::cmp::Ordering::Less => units[at],
                            // One NUL after the name, then 0xFFFF padding.
                            std::cmp::Ordering::Equal => 0,
                            std::cmp::Ordering::Greater => 0xFFFF,
                        }
                    })
                    .collect();
                let offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
                for (u, off) in part.iter().zip(offsets) {
                    slot[off..off + 2].copy_from_slice(&u.to_le_bytes());
                }
                out.extend_from_slice(&slot);
            }
        }
        let mut slot = [0u8; ENTRY];
        slot[..11].copy_from_slice(&e.short);
        slot[11] = e.attr;
        put16(&mut slot, 14, stamp.time); // created
        put16(&mut slot, 16, stamp.date);
        put16(&mut slot, 18, stamp.date); // accessed
        put16(&mut slot, 20, (e.cluster >> 16) as u16);
        put16(&mut slot, 22, stamp.time); // modified
        put16(&mut slot, 24, stamp.date);
        put16(&mut slot, 26, e.cluster as u16);
        put32(&mut slot, 28, e.size);
        out.extend_from_slice(&slot);
    }
    out
}

/// The checksum of a short name that ties long-name slots to it.
pub fn short_checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, &b| (sum >> 1 | (sum & 1) << 7).wrapping_add(b))
}

/// Why a name cannot be stored on FAT, if it cannot.
pub fn check_long_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("not a file name".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || "\"*/:<>?\\|".contains(*c))
    {
        return Err(format!("the character {c:?} is not allowed in FAT names"));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err("FAT names cannot end with '.' or ' '".into());
    }
    if name.encode_utf16().count() > 255 {
        return Err("longer than FAT's 255 characters".into());
    }
    Ok(())
}

/// Short names given out in one directory, generated the way Windows does (`ALPINE~1.APK`), so
/// the names DOS-era tools see are the familiar ones.
#[derive(Debug, Default)]
pub struct ShortNames {
    used: HashSet<[u8; 11]>,
}

impl ShortNames {
    /// Reserves a name nobody may get (the `.` and `..` entries).
    pub fn reserve(&mut self, short: [u8; 11]) {
        self.used.insert(short);
    }

    /// The short name for `long`, and whether a long name entry is needed; `None` once every
    /// tail up to `~999999` is taken (far more names than a directory can hold).
    pub fn assign(&mut self, long: &str) -> Option<([u8; 11], bool)> {
        // Windows ignores leading dots and takes the extension after the last dot.
        let trimmed = long.trim_start_matches('.');
        let (base, ext) = match trimmed.rfind('.') {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (trimmed, ""),
        };
        let (base_chars, base_lossy) = short_chars(base);
        let (ext_chars, ext_lossy) = short_chars(ext);
        let fits = base_chars.len() <= 8 && ext_chars.len() <= 3 && !base_chars.is_empty();
        let exact = fits && !base_lossy && !ext_lossy && long == trimmed;
        let mut short = [b' '; 11];
        for (o, c) in short[8..].iter_mut().zip(&ext_chars) {
            *o = *c;
        }
        if exact {
            short[..base_chars.len()].copy_from_slice(&base_chars);
            if self.used.insert(short) {
                // The long name is only needed to keep lower case.
                let same = long.bytes().all(|b| !b.is_ascii_lowercase());
                return Some((short, !same));
            }
        }
        let base_chars: &[u8] = if base_chars.is_empty() {
            b"_"
        } else {
            &base_chars
        };
        // Tails up to ~999999 leave at least one character of the base name.
        for n in 1u32..=999_999 {
            let tail = format!("~{n}");
            let keep = base_chars.len().min(8 - tail.len());
            let mut candidate = short;
            candidate[..8].fill(b' ');
            candidate[..keep].copy_from_slice(&base_chars[..keep]);
            candidate[keep..keep + tail.len()].copy_from_slice(tail.as_bytes());
            if self.used.insert(candidate) {
                return Some((candidate, true));
            }
        }
        None
    }
}

/// Upper-cased characters valid in short names; others become `_`, spaces and dots are dropped.
fn short_chars(part: &str) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut lossy = false;
    for c in part.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => out.push(c.to_ascii_uppercase() as u8),
            '!' | '#' | '$' | '%' | '&' | '\'' | '(' | ')' | '-' | '@' | '^' | '_' | '`' | '{'
            | '}' | '~' => out.push(c as u8),
            ' ' | '.' => lossy = true,
            _ => {
                out.push(b'_');
                lossy = true;
            }
        }
    }
    (out, lossy)
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &[u8; 11]) -> String {
        String::from_utf8_lossy(x).into_owned()
    }

    #[test]
    fn geometry_follows_fatgen103() {
        let g = Geometry::for_size(64 << 20).unwrap();
        assert_eq!(g.sectors_per_cluster, 1);
        assert_eq!(g.total_sectors, 131_072);
        // Every cluster has a FAT entry (plus the two reserved ones).
        assert!(u64::from(g.fat_sectors) * 128 >= u64::from(g.clusters) + 2);
        assert!(g.clusters >= MIN_CLUSTERS);
        let g = Geometry::for_size(1 << 30).unwrap();
        assert_eq!(g.sectors_per_cluster, 8);
        assert_eq!(
            g.overhead() % g.cluster_bytes(),
            0,
            "data area aligned to a cluster"
        );
        assert!(u64::from(g.fat_sectors) * 128 >= u64::from(g.clusters) + 2);
        assert_eq!(g.cluster_offset(2), g.overhead());
        assert!(Geometry::for_size(16 << 20)
            .unwrap_err()
            .contains("at least 65525"));
        assert!(Geometry::for_size(3 << 40).is_err());
    }

    #[test]
    fn short_names_like_windows() {
        let mut n = ShortNames::default();
        assert_eq!(n.assign("BOOT"), Some((*b"BOOT       ", false)));
        assert_eq!(n.assign("grub.cfg"), Some((*b"GRUB    CFG", true)));
        assert_eq!(s(&n.assign(".alpine-release").unwrap().0), "ALPINE~1   ");
        // Short names are unique as 11 bytes: a different extension does not collide.
        assert_eq!(
            s(&n.assign("alpine-base-3.19.1-r0.apk").unwrap().0),
            "ALPINE~1APK"
        );
        assert_eq!(s(&n.assign("APKINDEX.tar.gz").unwrap().0), "APKIND~1GZ ");
        assert_eq!(s(&n.assign("g++-13.apk").unwrap().0), "G__-13~1APK");
        assert_eq!(
            s(&n.assign("Grub.cfg").unwrap().0),
            "GRUB~1  CFG",
            "case-only twin gets a tail"
        );
        assert_eq!(n.assign("alpine-x.apk"), Some((*b"ALPINE-XAPK", true)));
        assert_eq!(s(&n.assign("ALPINE-X.apk").unwrap().0), "ALPINE~2APK");
        for i in 3..10 {
            assert_eq!(
                s(&n.assign(&format!("alpine-{i}-long.apk")).unwrap().0),
                format!("ALPINE~{i}APK")
            );
        }
        assert_eq!(s(&n.assign("alpine-y-long.apk").unwrap().0), "ALPIN~10APK");
        assert_eq!(s(&n.assign("...").unwrap().0), "_~1        ");
    }

    #[test]
    fn long_names_are_checked() {
        assert!(check_long_name("fw1.apkovl.tar.gz").is_ok());
        assert!(check_long_name("a:b").unwrap_err().contains("':'"));
        assert!(check_long_name("a.").is_err());
        assert!(check_long_name(&"x".repeat(256)).is_err());
        assert!(check_long_name("..").is_err());
    }

    #[test]
    fn directory_entries_with_long_names() {
        let mut names = ShortNames::default();
        let (short, needs) = names.assign(".boot_repository").unwrap();
        assert!(needs);
        let e = Entry {
            long: Some(".boot_repository".into()),
            short,
            attr: ATTR_ARCHIVE,
            cluster: 0x12345,
            size: 7,
        };
        assert_eq!(e.slots(), 3);
        let stamp = Stamp::from_epoch(1_703_680_496);
        let b = directory_bytes(&[e], stamp);
        assert_eq!(b.len(), 96);
        // First slot: sequence 2 with the last flag, "ory" (units 13-15), NUL, then padding.
        assert_eq!(b[0], 0x42);
        assert_eq!(b[11], ATTR_LFN);
        assert_eq!(b[13], short_checksum(&short));
        assert_eq!(&b[1..11], &[b'o', 0, b'r', 0, b'y', 0, 0, 0, 0xFF, 0xFF]);
        assert_eq!(&b[14..16], &[0xFF, 0xFF]);
        assert_eq!(b[32], 0x01);
        assert_eq!(&b[33..35], &[b'.', 0]);
        let sfn = &b[64..];
        assert_eq!(&sfn[..11], &short);
        assert_eq!(sfn[11], ATTR_ARCHIVE);
        assert_eq!(u16::from_le_bytes([sfn[20], sfn[21]]), 0x1);
        assert_eq!(u16::from_le_bytes([sfn[26], sfn[27]]), 0x2345);
        assert_eq!(u32::from_le_bytes([sfn[28], sfn[29], sfn[30], sfn[31]]), 7);
        assert_eq!(u16::from_le_bytes([sfn[24], sfn[25]]), stamp.date);
    }

    #[test]
    fn stamps_are_fat_encoded_and_clamped() {
        let s = Stamp::from_epoch(1_703_680_497); // 2023-12-27 12:34:57
        assert_eq!(s.date, (43 << 9) | (12 << 5) | 27);
        assert_eq!(s.time, (12 << 11) | (34 << 5) | 28);
        assert_eq!(Stamp::from_epoch(0).date, (1 << 5) | 1);
        assert_eq!(Stamp::from_epoch(10_000_000_000).date >> 9, 127);
    }

    #[test]
    fn boot_and_fsinfo_sectors() {
        let g = Geometry::for_size(64 << 20).unwrap();
        let b = boot_sector(&g, 2048, 0xDEAD_BEEF, b"ALPINE     ");
        assert_eq!(&b[0x52..0x5A], b"FAT32   ");
        assert_eq!(&b[0x47..0x52], b"ALPINE     ");
        assert_eq!(
            u32::from_le_bytes([b[0x1C], b[0x1D], b[0x1E], b[0x1F]]),
            2048
        );
        assert_eq!(
            u32::from_le_bytes([b[0x43], b[0x44], b[0x45], b[0x46]]),
            0xDEAD_BEEF
        );
        assert_eq!(&b[510..], &[0x55, 0xAA]);
        let f = fsinfo_sector(10, 3);
        assert_eq!(&f[0..4], b"RRaA");
        assert_eq!(&f[0x1E4..0x1E8], b"rrAa");
    }
}
