//! The writer: a reproducible newc archive of a [`Tree`], following what the kernel's
//! `init/initramfs.c` expects.
//!
//! Entries come from the sorted [`Tree`], so parents precede children. uid/gid are 0, every mtime
//! is the configured one (`SOURCE_DATE_EPOCH` or 0), inode numbers are assigned in archive order.
//! Host files that are hard links of each other (same device and inode) get one inode number and
//! `nlink` = the number of links in the archive; their data is written once, on the last link,
//! as GNU cpio does: the kernel links later names to the first one and opens them without
//! `O_TRUNC`, so the data may come on any link. Every write is checked, and a host file is copied
//! with exactly the size declared in its header (a file that changes size while we read it is an
//! error, not a corrupt archive). Written by hand because the `cpio` crate loses short writes and
//! renumbers inodes.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};

use crate::error::{Error, IoResultExt};
use crate::tree::{Content, Node, Tree};

use super::{MAGIC, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, TRAILER};

/// One newc header's fields.
struct Header<'a> {
    name: &'a str,
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    size: u32,
    rdev: (u32, u32),
}

/// Counts bytes so the padding can be computed without trusting the inner writer.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Counting<W> {
    fn put(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = (self.written % 4) as usize;
        if rem != 0 {
            self.put(&[0u8; 3][..4 - rem])?;
        }
        Ok(())
    }

    fn header(&mut self, h: &Header) -> io::Result<()> {
        let namesize = h.name.len() + 1;
        let text = format!(
            "{MAGIC}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
            h.ino, h.mode, 0, 0, h.nlink, h.mtime, h.size, 0, 0, h.rdev.0, h.rdev.1, namesize, 0
        );
        self.put(text.as_bytes())?;
        self.put(h.name.as_bytes())?;
        self.put(&[0])?;
        self.pad()
    }
}

fn archive_err(path: &str, reason: impl Into<String>) -> Error {
    Error::Archive {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Writes `tree` as a newc archive (with trailer) to `out`; `sink` names the output in errors.
pub fn write_tree<W: Write>(
    tree: &Tree,
    mtime: u32,
    out: W,
    sink: &std::path::Path,
) -> Result<W, Error> {
    // Hard link groups: count the links of each host (dev, ino) and find the last one. The mode
    // is part of the key because the kernel only links entries whose mode matches too: the same
    // host file added as /init (0755 forced) and elsewhere with another mode must stay two files,
    // each with its data.
    let mut links: HashMap<(u64, u64, u32), (u32, usize)> = HashMap::new();
    for (index, (_, entry)) in tree.iter().enumerate() {
        if let Node::File(Content::Host { id, .. }) = &entry.node {
            let slot = links.entry((id.0, id.1, entry.mode)).or_insert((0, index));
            slot.0 += 1;
            slot.1 = index;
        }
    }
    let mut inodes: HashMap<(u64, u64, u32), u32> = HashMap::new();
    let mut w = Counting {
        inner: out,
        written: 0,
    };
    let mut buf = vec![0u8; 256 << 10];
    for (next_ino, (index, (name, entry))) in (1u32..).zip(tree.iter().enumerate()) {
        if name.len() >= 4096 {
            return Err(archive_err(name, "path longer than PATH_MAX"));
        }
        let perm = entry.mode & 0o7777;
        let mut ino = next_ino;
        let mut h = Header {
            name,
            ino,
            mode: 0,
            nlink: 1,
            mtime,
            size: 0,
            rdev: (0, 0),
        };
        match &entry.node {
            Node::Dir => {
                h.mode = S_IFDIR | perm;
                h.nlink = 2;
                w.header(&h).at(sink)?;
            }
            Node::Symlink(target) => {
                h.mode = S_IFLNK | 0o777;
                h.size = target.len() as u32;
                w.header(&h).at(sink)?;
                w.put(target.as_bytes()).at(sink)?;
                w.pad().at(sink)?;
            }
            Node::CharDev(major, minor) => {
                h.mode = S_IFCHR | perm;
                h.rdev = (*major, *minor);
                w.header(&h).at(sink)?;
            }
            Node::File(Content::Bytes(data)) => {
                h.mode = S_IFREG | perm;
                h.size = u32::try_from(data.len())
                    .map_err(|_| archive_err(name, "larger than 4 GiB (newc limit)"))?;
                w.header(&h).at(sink)?;
                w.put(data).at(sink)?;
                w.pad().at(sink)?;
            }
            Node::File(Content::Host { path, id }) => {
                h.mode = S_IFREG | perm;
                let key = (id.0, id.1, entry.mode);
                // Every host file's key was counted in the first pass over the same tree.
                let (count, last) = links.get(&key).copied().unwrap_or((1, index));
                if count > 1 {
                    ino = *inodes.entry(key).or_insert(ino);
                    h.ino = ino;
                    h.nlink = count;
                }
                if count > 1 && index != last {
                    // Data goes on the last link only.
                    w.header(&h).at(sink)?;
                    continue;
                }
                let mut file = fs::File::open(path).at(path)?;
                let len = file.metadata().at(path)?.len();
                h.size = u32::try_from(len)
                    .map_err(|_| archive_err(name, "larger than 4 GiB (newc limit)"))?;
                w.header(&h).at(sink)?;
                let mut left = len;
                while left > 0 {
                    let want = buf.len().min(left as usize);
                    let n = file.read(&mut buf[..want]).at(path)?;
                    if n == 0 {
                        return Err(Error::BadInput {
                            path: path.clone(),
                            reason: "file shrank while it was archived".into(),
                        });
                    }
                    w.put(&buf[..n]).at(sink)?;
                    left -= n as u64;
                }
                let mut probe = [0u8; 1];
                if file.read(&mut probe).at(path)? != 0 {
                    return Err(Error::BadInput {
                        path: path.clone(),
                        reason: "file grew while it was archived".into(),
                    });
                }
                w.pad().at(sink)?;
            }
        }
    }
    let trailer = Header {
        name: TRAILER,
        ino: 0,
        mode: 0,
        nlink: 1,
        mtime: 0,
        size: 0,
        rdev: (0, 0),
    };
    w.header(&trailer).at(sink)?;
    Ok(w.inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::parse;
    use std::path::Path;

    struct ShortWriter {
        budget: usize,
    }
    impl Write for ShortWriter {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Ok(0);
            }
            let n = data.len().min(self.budget);
            self.budget -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn sample(dir: &Path) -> Tree {
        fs::write(dir.join("a"), b"hello").unwrap();
        fs::hard_link(dir.join("a"), dir.join("b")).unwrap();
        fs::write(dir.join("c"), b"xyz").unwrap();
        let mut t = Tree::new();
        t.add_symlink("lib", "usr/lib").unwrap();
        t.insert(
            "dev/console",
            crate::tree::Entry {
                node: Node::CharDev(5, 1),
                mode: 0o600,
            },
        )
        .unwrap();
        for (img, host) in [
            ("usr/lib/one", "a"),
            ("usr/bin/two", "b"),
            ("usr/bin/three", "c"),
        ] {
            let p = dir.join(host);
            t.add_host_file(img, p.clone(), &fs::metadata(&p).unwrap())
                .unwrap();
        }
        t.add_bytes("init", "#!/bin/sh\n", 0o755).unwrap();
        t
    }

    #[test]
    fn writes_sorted_entries_devices_and_hardlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let t = sample(tmp.path());
        let bytes = write_tree(&t, 1234, Vec::new(), Path::new("out")).unwrap();
        assert_eq!(bytes.len() % 4, 0);
        let entries = parse(&bytes).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "dev",
                "dev/console",
                "init",
                "lib",
                "usr",
                "usr/bin",
                "usr/bin/three",
                "usr/bin/two",
                "usr/lib",
                "usr/lib/one"
            ]
        );
        let by = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();
        let console = by("dev/console");
        assert_eq!((console.mode, console.rdev), (0o020600, (5, 1)));
        assert_eq!(by("lib").data, b"usr/lib");
        assert_eq!(by("lib").mode, 0o120777);
        assert_eq!(by("init").mode, 0o100755);
        // Hard links: same inode, nlink 2, data only on the last link in archive order.
        let (two, one) = (by("usr/bin/two"), by("usr/lib/one"));
        assert_eq!(two.ino, one.ino);
        assert_eq!((two.nlink, one.nlink), (2, 2));
        assert!(two.data.is_empty());
        assert_eq!(one.data, b"hello");
        assert_eq!(by("usr/bin/three").nlink, 1);
        assert!(entries
            .iter()
            .all(|e| e.mtime == 1234 && e.uid == 0 && e.gid == 0));
        // Inode numbers are unique apart from hard links.
        let mut inos: Vec<u32> = entries.iter().map(|e| e.ino).collect();
        inos.sort();
        inos.dedup();
        assert_eq!(inos.len(), entries.len() - 1);
    }

    /// Regression: the same host file as /init (mode forced to 0755) and as a 0644 entry became
    /// one hard link group with mismatched modes; the kernel would not link them and the first
    /// name would stay empty.
    #[test]
    fn same_host_file_with_different_modes_is_not_a_hard_link() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        fs::write(&p, b"data").unwrap();
        let meta = fs::metadata(&p).unwrap();
        let mut t = Tree::new();
        t.add_host_file("a", p.clone(), &meta).unwrap();
        let content = Content::Host {
            path: p,
            id: (
                std::os::unix::fs::MetadataExt::dev(&meta),
                std::os::unix::fs::MetadataExt::ino(&meta),
            ),
        };
        t.insert(
            "init",
            crate::tree::Entry {
                node: Node::File(content),
                mode: 0o755,
            },
        )
        .unwrap();
        let entries = parse(&write_tree(&t, 0, Vec::new(), Path::new("out")).unwrap()).unwrap();
        assert_ne!(entries[0].ino, entries[1].ino);
        assert!(entries.iter().all(|e| e.nlink == 1 && e.data == b"data"));
    }

    #[test]
    fn host_cpio_accepts_the_archive() {
        let tmp = tempfile::tempdir().unwrap();
        let t = sample(tmp.path());
        let bytes = write_tree(&t, 0, Vec::new(), Path::new("out")).unwrap();
        let mut child = std::process::Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("host cpio (make deps installs it)");
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let listed = String::from_utf8(out.stdout).unwrap();
        assert_eq!(listed.lines().count(), 10, "{listed}");
    }

    #[test]
    fn short_writes_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let t = sample(tmp.path());
        let full = write_tree(&t, 0, Vec::new(), Path::new("out"))
            .unwrap()
            .len();
        for budget in [0, 5, 110, full / 2, full - 1] {
            let r = write_tree(&t, 0, ShortWriter { budget }, Path::new("out"));
            assert!(r.is_err(), "budget {budget} accepted");
        }
    }

    #[test]
    fn identical_input_identical_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let t = sample(tmp.path());
        let a = write_tree(&t, 7, Vec::new(), Path::new("out")).unwrap();
        let b = write_tree(&t.clone(), 7, Vec::new(), Path::new("out")).unwrap();
        assert_eq!(a, b);
    }
}
