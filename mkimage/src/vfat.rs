//! A [`Layout`] as a FAT32 image, written in-process without root, loop devices or mtools.
//!
//! The whole tree is known before writing, so the volume is planned first: every directory's
//! entries (long names, Windows-style short names), then one contiguous cluster run per
//! directory and file in sorted path order, the root directory first at cluster 2. The image is
//! then written in one sequential pass over the data area, followed by the two FATs and the boot
//! sectors; free space is left as a hole in a sparse file.
//!
//! Reproducibility: sorted order, one time stamp (the build time) on every entry, and a volume
//! serial taken from a SHA-256 of the label, the build time and the data area, so two runs give
//! identical bytes and a different medium gets a different serial. blkid reads the label from the
//! root directory's volume entry and the boot sector; both are written.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, IoResultExt};
use crate::fat::{self, Entry, Geometry, ShortNames, Stamp};
use crate::layout::{check_size, copy, Layout, Node};
use crate::size;

const MIB: u64 = 1 << 20;

/// The 11-byte, space-padded volume label (checked by the caller: ASCII, at most 11).
fn label_bytes(label: &str) -> [u8; 11] {
    let mut out = [b' '; 11];
    for (o, b) in out.iter_mut().zip(label.bytes()) {
        *o = b;
    }
    out
}

/// One directory: its path, entries in order (cluster numbers filled at allocation).
struct Dir {
    path: String,
    entries: Vec<Entry>,
    /// Layout paths of the entries that name a child (not `.`, `..` or the label).
    children: Vec<Option<String>>,
}

impl Dir {
    fn slots(&self) -> usize {
        self.entries.iter().map(Entry::slots).sum()
    }
}

/// The volume's directories and entries, independent of the cluster size.
struct Plan<'a> {
    layout: &'a Layout,
    dirs: Vec<Dir>,
    dir_index: HashMap<String, usize>,
}

impl<'a> Plan<'a> {
    fn new(layout: &'a Layout, label: &[u8; 11], image: &Path) -> Result<Plan<'a>, Error> {
        let bad = |path: &str, reason: String| Error::Fat {
            image: image.to_path_buf(),
            path: path.to_string(),
            reason,
        };
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut order = vec![""];
        for (path, node) in layout.iter() {
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
            children.entry(parent).or_default().push(path);
            if matches!(node, Node::Dir) {
                order.push(path);
            }
        }
        let mut dirs = Vec::new();
        let mut dir_index = HashMap::new();
        for dir in order {
            let count = children.get(dir).map_or(0, Vec::len);
            // Checked before names are given out: short-name tails stay below 8 characters.
            if count + 2 > fat::MAX_DIR_ENTRIES {
                return Err(bad(
                    dir,
                    format!("more than {} directory entries", fat::MAX_DIR_ENTRIES),
                ));
            }
            let mut names = ShortNames::default();
            let mut entries = Vec::new();
            let mut kids = Vec::new();
            if dir.is_empty() {
                entries.push(fat::label_entry(label));
                kids.push(None);
            } else {
                for dots in [1, 2] {
                    let e = fat::dot_entry(dots, 0);
                    names.reserve(e.short);
                    entries.push(e);
                    kids.push(None);
                }
            }
            // FAT compares names without case: two names differing only in case are one file.
            let mut folded: HashMap<String, &str> = HashMap::new();
            for &child in children.get(dir).map(Vec::as_slice).unwrap_or_default() {
                let name = child.rsplit_once('/').map_or(child, |(_, n)| n);
                fat::check_long_name(name).map_err(|r| bad(child, r))?;
                if let Some(other) = folded.insert(name.to_lowercase(), child) {
                    return Err(bad(
                        child,
                        format!("same name as {other} on FAT (names ignore case)"),
                    ));
                }
                let (short, long) = names
                    .assign(name)
                    .ok_or_else(|| bad(child, "no short name left in its directory".into()))?;
                let (attr, size) = match layout.get(child) {
                    Some(Node::File { size, .. }) => {
                        let size = u32::try_from(*size).map_err(|_| {
                            bad(
                                child,
                                "larger than 4 GiB, the FAT limit for one file".into(),
                            )
                        })?;
                        (fat::ATTR_ARCHIVE, size)
                    }
                    _ => (fat::ATTR_DIRECTORY, 0),
                };
                entries.push(Entry {
                    long: long.then(|| name.to_string()),
                    short,
                    attr,
                    cluster: 0,
                    size,
                });
                kids.push(Some(child.to_string()));
            }
            let d = Dir {
                path: dir.to_string(),
                entries,
                children: kids,
            };
            if d.slots() > fat::MAX_DIR_ENTRIES {
                return Err(bad(
                    dir,
                    format!("more than {} directory entries", fat::MAX_DIR_ENTRIES),
                ));
            }
            dir_index.insert(dir.to_string(), dirs.len());
            dirs.push(d);
        }
        Ok(Plan {
            layout,
            dirs,
            dir_index,
        })
    }

    fn dir_clusters(&self, dir: &Dir, cluster: u64) -> u64 {
        ((dir.slots() * fat::ENTRY) as u64).div_ceil(cluster).max(1)
    }

    /// Clusters the volume needs with `cluster` bytes per cluster.
    fn clusters_needed(&self, cluster: u64) -> u64 {
        let dirs: u64 = self
            .dirs
            .iter()
            .map(|d| self.dir_clusters(d, cluster))
            .sum();
        let files: u64 = self
            .layout
            .iter()
            .map(|(_, n)| match n {
                Node::File { size, .. } => size.div_ceil(cluster),
                Node::Dir => 0,
            })
            .sum();
        dirs + files
    }

    /// The smallest volume (whole MiB, at least [`size::MIN_SIZE`] less the partition table's
    /// MiB) that holds the tree.
    fn smallest_size(&self) -> u64 {
        let mut len = size::MIN_SIZE - crate::partition::START;
        loop {
            let Ok(g) = Geometry::for_size(len) else {
                return len;
            };
            let needed = self.clusters_needed(g.cluster_bytes());
            if needed <= u64::from(g.clusters) || len >= size::MAX_SIZE {
                return len;
            }
            let estimate = (g.overhead() + needed * g.cluster_bytes()).div_ceil(MIB) * MIB;
            len = estimate.max(len + MIB).min(size::MAX_SIZE / MIB * MIB);
        }
    }
}

/// The size `--format vfat` uses without `--size`: content + 25 % + 8 MiB (at least 64 MiB), or
/// more if the volume's own overhead needs it. `image` names the output in errors (a name FAT
/// cannot store is found here first).
/// The image holds the partition table before the volume ([`crate::partition::START`]).
pub fn default_image_size(layout: &Layout, image: &Path) -> Result<u64, Error> {
    let smallest = smallest_volume(layout, image)? + crate::partition::START;
    let len = size::default_size(layout.content_bytes()).max(smallest);
    if len > size::MAX_SIZE {
        return Err(Error::setting(
            "--size",
            "the content does not fit FAT32's 2 TiB",
        ));
    }
    Ok(len)
}

/// The smallest FAT32 volume (whole MiB) that holds `layout`.
pub fn smallest_volume(layout: &Layout, image: &Path) -> Result<u64, Error> {
    Ok(Plan::new(layout, &label_bytes(""), image)?.smallest_size())
}

/// Writes `layout` as a FAT32 volume of `len` bytes at byte `start` of `file` (new and empty;
/// `start` is the partition's offset, 0 for a bare volume, and the boot sector records it as the
/// hidden sectors that boot code adds to its reads).
pub fn write_vfat(
    layout: &Layout,
    file: &fs::File,
    image: &Path,
    start: u64,
    len: u64,
    label: &str,
    mtime: u64,
) -> Result<(), Error> {
    let label = label_bytes(label);
    let mut plan = Plan::new(layout, &label, image)?;
    let too_small = |plan: &Plan| Error::TooSmall {
        size: size::display(len),
        needed: size::display(plan.smallest_size()),
    };
    let g = Geometry::for_size(len).map_err(|_| too_small(&plan))?;
    let cluster = g.cluster_bytes();
    if plan.clusters_needed(cluster) > u64::from(g.clusters) {
        return Err(too_small(&plan));
    }

    // Allocation: root directory at cluster 2, then every path in sorted order.
    let mut first: HashMap<String, u32> = HashMap::new();
    let mut runs: Vec<(u32, u32)> = Vec::new();
    let mut next = 2u32;
    let mut take = |path: &str, clusters: u64, first: &mut HashMap<String, u32>| {
        let start = if clusters == 0 { 0 } else { next };
        // Fits in u32: the total was checked against the cluster count above.
        next += clusters as u32;
        if clusters > 0 {
            runs.push((start, clusters as u32));
        }
        first.insert(path.to_string(), start);
    };
    take("", plan.dir_clusters(&plan.dirs[0], cluster), &mut first);
    for (path, node) in layout.iter() {
        let clusters = match node {
            Node::Dir => plan.dir_clusters(&plan.dirs[plan.dir_index[path]], cluster),
            Node::File { size, .. } => size.div_ceil(cluster),
        };
        take(path, clusters, &mut first);
    }
    let used = next - 2;
    for dir in &mut plan.dirs {
        let own = first[&dir.path];
        let parent = dir.path.rsplit_once('/').map_or("", |(p, _)| p);
        for (entry, child) in dir.entries.iter_mut().zip(&dir.children) {
            entry.cluster = match child {
                Some(c) => first[c],
                None if entry.short[..2] == *b". " => own,
                // `..` of a directory in the root names cluster 0, as the specification says.
                None if entry.short[..2] == *b".." => {
                    if parent.is_empty() {
                        0
                    } else {
                        first[parent]
                    }
                }
                None => 0,
            };
        }
    }

    file.set_len(start + len).at(image)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut hash = Sha256::new();
    hash.update(label);
    hash.update(mtime.to_le_bytes());
    out.seek(SeekFrom::Start(start + g.cluster_offset(2)))
        .at(image)?;
    let stamp = Stamp::from_epoch(mtime);
    let mut sink = Hashing {
        out: &mut out,
        hash: &mut hash,
    };
    write_padded(
        &mut sink,
        &fat::directory_bytes(&plan.dirs[0].entries, stamp),
        cluster,
    )
    .at(image)?;
    for (path, node) in layout.iter() {
        match node {
            Node::Dir => {
                let bytes = fat::directory_bytes(&plan.dirs[plan.dir_index[path]].entries, stamp);
                write_padded(&mut sink, &bytes, cluster).at(image)?;
            }
            Node::File { source, size } => {
                // Read errors name the source, write errors the image.
                let copied = copy(source, &mut sink, image)?;
                check_size(source, *size, copied)?;
                let pad = (cluster - copied % cluster) % cluster;
                sink.write_all(&vec![0u8; pad as usize]).at(image)?;
            }
        }
    }
    let volume_id = {
        let d = hash.finalize();
        u32::from_le_bytes([d[0], d[1], d[2], d[3]])
    };

    let mut fat_bytes = Vec::with_capacity((used as usize + 2) * 4);
    for v in fat::fat_head() {
        fat_bytes.extend_from_slice(&v.to_le_bytes());
    }
    for (start, count) in runs {
        for c in start..start + count {
            let v = if c + 1 == start + count {
                fat::EOC
            } else {
                c + 1
            };
            fat_bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    for n in 0..2 {
        out.seek(SeekFrom::Start(start + g.fat_offset(n)))
            .at(image)?;
        out.write_all(&fat_bytes).at(image)?;
    }
    let free = g.clusters - used;
    let next_free = if free == 0 { u32::MAX } else { used + 2 };
    let hidden = u32::try_from(start / fat::SECTOR)
        .map_err(|_| Error::setting("--size", "the partition starts past 2 TiB"))?;
    let boot = fat::boot_sector(&g, hidden, volume_id, &label);
    let info = fat::fsinfo_sector(free, next_free);
    let mut third = [0u8; 512];
    third[510..].copy_from_slice(&[0x55, 0xAA]);
    // Boot record in sectors 0-2, its backup in 6-8 (the sectors the boot sector names).
    for base in [0u64, 6] {
        out.seek(SeekFrom::Start(start + base * fat::SECTOR))
            .at(image)?;
        for sector in [&boot, &info, &third] {
            out.write_all(sector).at(image)?;
        }
    }
    out.flush().at(image)?;
    drop(out);
    file.sync_all().at(image)
}

fn write_padded(out: &mut dyn Write, bytes: &[u8], cluster: u64) -> io::Result<()> {
    out.write_all(bytes)?;
    let pad = (cluster - bytes.len() as u64 % cluster) % cluster;
    out.write_all(&vec![0u8; pad as usize])
}

/// Writes to the image and hashes what it writes (the volume serial comes from the data area).
struct Hashing<'a, 'b> {
    out: &'a mut BufWriter<&'b fs::File>,
    hash: &'a mut Sha256,
}

impl Write for Hashing<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Source;
    use std::io::Read;

    fn build(l: &Layout, len: u64) -> (tempfile::TempDir, std::path::PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("img");
        let f = fs::File::create_new(&path).unwrap();
        write_vfat(l, &f, &path, 0, len, "TESTLABEL", 1_703_680_496).unwrap();
        (t, path)
    }

    #[test]
    fn image_reads_back_through_an_independent_reader() {
        let mut l = Layout::default();
        l.add_file("apks/.boot_repository", Source::Bytes(Vec::new()), 0)
            .unwrap();
        l.add_file(
            "boot/syslinux/syslinux.cfg",
            Source::Bytes(b"cfg".to_vec()),
            3,
        )
        .unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        l.add_file(
            "apks/x86_64/big-1.0-r0.apk",
            Source::Bytes(big.clone()),
            big.len() as u64,
        )
        .unwrap();
        for i in 0..40 {
            l.add_file(
                &format!("apks/x86_64/package-number-{i}-1.0-r0.apk"),
                Source::Bytes(vec![i as u8; 1000]),
                1000,
            )
            .unwrap();
        }
        let (_t, path) = build(&l, 64 << 20);
        let disk = fs::File::open(&path).unwrap();
        let fs = fatfs::FileSystem::new(disk, fatfs::FsOptions::new()).unwrap();
        assert_eq!(fs.fat_type(), fatfs::FatType::Fat32);
        assert_eq!(fs.volume_label(), "TESTLABEL");
        assert_eq!(
            fs.read_volume_label_from_root_dir().unwrap().as_deref(),
            Some("TESTLABEL")
        );
        let mut got = Vec::new();
        fs.root_dir()
            .open_file("apks/x86_64/big-1.0-r0.apk")
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, big);
        let mut got = Vec::new();
        fs.root_dir()
            .open_file("apks/x86_64/package-number-39-1.0-r0.apk")
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, vec![39u8; 1000]);
        let names: Vec<String> = fs
            .root_dir()
            .open_dir("apks")
            .unwrap()
            .iter()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [".", "..", ".boot_repository", "x86_64"]);
        let e = fs
            .root_dir()
            .iter()
            .map(|e| e.unwrap())
            .find(|e| e.file_name() == "boot")
            .unwrap();
        let m = e.modified();
        assert_eq!(
            (
                m.date.year,
                m.date.month,
                m.date.day,
                m.time.hour,
                m.time.min,
                m.time.sec
            ),
            (2023, 12, 27, 12, 34, 56)
        );
        let stats = fs.stats().unwrap();
        assert_eq!(stats.cluster_size(), 512);
    }

    #[test]
    fn same_layout_same_bytes_and_serial_follows_content() {
        let mut a = Layout::default();
        a.add_file("x", Source::Bytes(b"one".to_vec()), 3).unwrap();
        let (_t1, p1) = build(&a, 64 << 20);
        let (_t2, p2) = build(&a, 64 << 20);
        let one = fs::read(&p1).unwrap();
        assert_eq!(one, fs::read(&p2).unwrap());
        let mut b = Layout::default();
        b.add_file("x", Source::Bytes(b"two".to_vec()), 3).unwrap();
        let (_t3, p3) = build(&b, 64 << 20);
        let two = fs::read(&p3).unwrap();
        assert_ne!(one[0x43..0x47], two[0x43..0x47], "volume serial");
        // The backup boot sector matches the boot sector.
        assert_eq!(one[..512], one[6 * 512..7 * 512]);
    }

    #[test]
    fn empty_files_have_no_clusters_and_dotdot_of_root_children_is_zero() {
        let mut l = Layout::default();
        l.add_file("d/empty", Source::Bytes(Vec::new()), 0).unwrap();
        let (_t, path) = build(&l, 64 << 20);
        let img = fs::read(&path).unwrap();
        let g = Geometry::for_size(64 << 20).unwrap();
        // Cluster 2 is the root, cluster 3 is d/: ".", "..", then the file's LFN + short entry.
        let d = &img[g.cluster_offset(3) as usize..];
        assert_eq!(&d[..11], b".          ");
        assert_eq!(u16::from_le_bytes([d[26], d[27]]), 3);
        assert_eq!(&d[32..43], b"..         ");
        assert_eq!(u16::from_le_bytes([d[32 + 26], d[32 + 27]]), 0);
        let f = &d[96..128];
        assert_eq!(&f[..11], b"EMPTY      ");
        assert_eq!(u16::from_le_bytes([f[26], f[27]]), 0);
    }

    #[test]
    fn too_small_case_collisions_and_bad_names_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("img");
        let f = fs::File::create(&path).unwrap();
        let mut l = Layout::default();
        l.add_file("big", Source::Bytes(vec![1; 70 << 20]), 70 << 20)
            .unwrap();
        let err = write_vfat(&l, &f, &path, 0, 64 << 20, "X", 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--size 64M: too small for the content (needs at least 72M)"
        );
        assert!(default_image_size(&l, Path::new("img")).unwrap() >= 72 << 20);
        let mut l = Layout::default();
        l.add_file("A", Source::Bytes(vec![1]), 1).unwrap();
        l.add_file("a", Source::Bytes(vec![2]), 1).unwrap();
        let err = write_vfat(&l, &f, &path, 0, 64 << 20, "X", 0).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("a: same name as A on FAT (names ignore case)"),
            "{err}"
        );
        let mut l = Layout::default();
        l.add_file("a:b", Source::Bytes(vec![1]), 1).unwrap();
        let err = write_vfat(&l, &f, &path, 0, 64 << 20, "X", 0).unwrap_err();
        assert!(
            err.to_string().contains("not allowed in FAT names"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_past_fats_entry_limit_is_refused() {
        let mut l = Layout::default();
        for i in 0..fat::MAX_DIR_ENTRIES - 1 {
            l.add_file(&format!("d/{i}"), Source::Bytes(Vec::new()), 0)
                .unwrap();
        }
        let err = default_image_size(&l, Path::new("img")).err().unwrap();
        assert_eq!(err.to_string(), "img: d: more than 65536 directory entries");
    }

    #[test]
    fn default_size_covers_the_content() {
        let mut l = Layout::default();
        l.add_file("x", Source::Bytes(vec![1; 1000]), 1000).unwrap();
        assert_eq!(
            default_image_size(&l, Path::new("img")).unwrap(),
            size::MIN_SIZE
        );
    }
}
