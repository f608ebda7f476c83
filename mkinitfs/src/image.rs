//! A built image: the entry tree plus how to archive it, and the ways to emit it — a file
//! written atomically, any `Write`, a listing (`mkinitfs -l`) or a staging directory (`-k`).
//!
//! The output file appears complete or not at all: the archive is written to a temporary file in
//! the same directory, fsynced, renamed over the target, and the directory is fsynced, so a crash
//! or an error never leaves a half-written initramfs at `-o`.

use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::compress::Encoder;
use crate::config::Compression;
use crate::cpio;
use crate::error::{Error, IoResultExt};
use crate::tree::{Content, Node, Tree};

/// An initramfs ready to be written.
#[derive(Debug, Clone)]
pub struct Image {
    tree: Tree,
    mtime: u32,
    compression: Compression,
    warnings: Vec<String>,
    notes: Vec<String>,
}

impl Image {
    pub(crate) fn new(
        tree: Tree,
        mtime: u32,
        compression: Compression,
        warnings: Vec<String>,
        notes: Vec<String>,
    ) -> Self {
        Image {
            tree,
            mtime,
            compression,
            warnings,
            notes,
        }
    }

    /// The entries.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Problems the user must see (e.g. no package index key embedded).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Debug notes (feature lines that matched nothing, missing firmware, ...).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The sorted `./path` list of the image, as `mkinitfs -l` prints it.
    pub fn list(&self) -> Vec<String> {
        self.tree.iter().map(|(p, _)| format!("./{p}")).collect()
    }

    /// The compression used by [`Image::write`].
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Writes the compressed archive to `out`; `sink` names it in errors.
    pub fn write<W: Write>(&self, out: W, sink: &Path) -> Result<W, Error> {
        let enc = Encoder::new(out, self.compression).at(sink)?;
        let enc = cpio::write_tree(&self.tree, self.mtime, enc, sink)?;
        enc.finish().at(sink)
    }

    /// Writes the compressed archive to `path` atomically (mode 0600, like Alpine's umask 077:
    /// custom files may hold secrets such as a LUKS keyfile).
    pub fn write_to(&self, path: &Path) -> Result<(), Error> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().ok_or_else(|| Error::BadInput {
            path: path.to_path_buf(),
            reason: "output path has no file name".into(),
        })?;
        // pid + counter: concurrent builds in one process (a library caller) never share a name.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(
            ".{}.tmp{}-{n}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let result = (|| -> Result<(), Error> {
            let file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .at(&tmp)?;
            let buffered = BufWriter::with_capacity(1 << 20, file);
            let buffered = self.write(buffered, &tmp)?;
            let file = buffered.into_inner().map_err(|e| Error::Io {
                path: tmp.clone(),
                source: e.into_error(),
            })?;
            file.sync_all().at(&tmp)?;
            drop(file);
            fs::rename(&tmp, path).at(path)?;
            fs::File::open(&dir).and_then(|d| d.sync_all()).at(&dir)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Writes the tree as files into `dir` (for `-k`): directories, files, symlinks and hard
    /// links; device nodes are skipped (creating them needs root, the archive has them).
    pub fn stage_to(&self, dir: &Path) -> Result<(), Error> {
        fs::create_dir_all(dir).at(dir)?;
        let mut first_link: std::collections::HashMap<(u64, u64), PathBuf> = Default::default();
        for (rel, entry) in self.tree.iter() {
            let path = dir.join(rel);
            match &entry.node {
                Node::Dir => {
                    fs::create_dir_all(&path).at(&path)?;
                    fs::set_permissions(&path, fs::Permissions::from_mode(entry.mode)).at(&path)?;
                }
                Node::Symlink(target) => {
                    let _ = fs::remove_file(&path);
                    std::os::unix::fs::symlink(target, &path).at(&path)?;
                }
                Node::CharDev(..) => {}
                Node::File(content) => {
                    let _ = fs::remove_file(&path);
                    match content {
                        Content::Bytes(data) => fs::write(&path, data).at(&path)?,
                        Content::Host { path: src, id } => {
                            if let Some(first) = first_link.get(id) {
                                fs::hard_link(first, &path).at(&path)?;
                                continue;
                            }
                            fs::copy(src, &path).at(src)?;
                            first_link.insert(*id, path.clone());
                        }
                    }
                    fs::set_permissions(&path, fs::Permissions::from_mode(entry.mode)).at(&path)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(c: Compression) -> Image {
        let mut t = Tree::new();
        t.add_bytes("init", "#!/bin/sh\n", 0o755).unwrap();
        t.add_symlink("bin", "usr/bin").unwrap();
        t.add_dir("usr/bin", 0o755).unwrap();
        Image::new(t, 0, c, vec![], vec![])
    }

    #[test]
    fn write_to_is_atomic_and_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("initramfs");
        fs::write(&out, b"old").unwrap();
        image(Compression::Zstd(3)).write_to(&out).unwrap();
        let bytes = fs::read(&out).unwrap();
        let plain = zstd::decode_all(&bytes[..]).unwrap();
        let names: Vec<String> = cpio::parse(&plain)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec!["bin", "init", "usr", "usr/bin"]);
        assert_eq!(
            fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("initramfs");
        fs::write(&out, b"old").unwrap();
        let mut t = Tree::new();
        let missing = tmp.path().join("gone");
        fs::write(&missing, b"x").unwrap();
        let meta = fs::metadata(&missing).unwrap();
        t.add_host_file("f", missing.clone(), &meta).unwrap();
        fs::remove_file(&missing).unwrap();
        let img = Image::new(t, 0, Compression::None, vec![], vec![]);
        let err = img.write_to(&out).unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
        assert_eq!(fs::read(&out).unwrap(), b"old");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn list_and_stage() {
        let img = image(Compression::None);
        assert_eq!(img.list(), vec!["./bin", "./init", "./usr", "./usr/bin"]);
        let tmp = tempfile::tempdir().unwrap();
        img.stage_to(tmp.path()).unwrap();
        assert_eq!(
            fs::read_link(tmp.path().join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        assert_eq!(fs::read(tmp.path().join("init")).unwrap(), b"#!/bin/sh\n");
    }
}
