//! Writing an apkovl the way Alpine's lbu does with busybox (overlays/README.md, "Archive format"):
//! old-GNU tar headers,
//! exactly the selected names in selection order (no implied parents), directories with a
//! trailing `/`, symlink targets verbatim, later names of an already archived inode as tar hard
//! links, numeric owners plus the names from the root's own `etc/passwd`/`etc/group`, original
//! mtimes (clamped when asked), two end blocks, then a gzip header like busybox's
//! (`1f 8b 08 00 00000000 00 03`). Names longer than 100 bytes use GNU `././@LongLink` entries.
//!
//! The walk order is the apk core's sorted walk, so the same tree gives the same bytes.

use crate::deleted::{self, MANIFEST};
use crate::select::{selection, Selection};
use crate::{Error, IoResultExt};
use apk::tar::{Entry, Kind, Magic, Writer};
use flate2::{Compression, GzBuilder};
use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// How to write an overlay.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Clamp member mtimes to this (`SOURCE_DATE_EPOCH`); `None` keeps the real ones.
    pub clamp_mtime: Option<u64>,
    /// Add the deletion manifest when package-owned configuration files were deleted.
    pub record_deletions: bool,
    /// Write an archive even when nothing is selected (Alpine's lbu silently did; we refuse).
    pub allow_empty: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            clamp_mtime: None,
            record_deletions: true,
            allow_empty: false,
        }
    }
}

/// A finished overlay (gzip bytes) and what is inside.
#[derive(Clone, Debug)]
pub struct Overlay {
    /// The `.apkovl.tar.gz` bytes.
    pub bytes: Vec<u8>,
    /// Archived member names, in order (without the manifest).
    pub members: Vec<String>,
    /// Deletions recorded in the manifest.
    pub deletions: Vec<String>,
}

/// Select and archive the configuration of `root`.
pub fn create(root: &Path, opts: &CreateOptions) -> Result<Overlay, Error> {
    let sel = selection(root)?;
    write_overlay(root, &sel, opts)
}

/// Owner and group names of a root, from its own `etc/passwd` and `etc/group`.
#[derive(Default)]
struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    fn load(root: &Path) -> Names {
        let parse = |rel: &str| {
            let mut m = HashMap::new();
            if let Ok(t) = std::fs::read_to_string(root.join(rel)) {
                for l in t.lines() {
                    let f: Vec<&str> = l.split(':').collect();
                    if let (Some(name), Some(Ok(id))) =
                        (f.first(), f.get(2).map(|s| s.parse::<u32>()))
                    {
                        m.entry(id).or_insert_with(|| name.to_string());
                    }
                }
            }
            m
        };
        Names {
            users: parse("etc/passwd"),
            groups: parse("etc/group"),
        }
    }
}

/// Archive the given selection of `root`.
pub fn write_overlay(root: &Path, sel: &Selection, opts: &CreateOptions) -> Result<Overlay, Error> {
    if sel.names.is_empty() && !opts.allow_empty {
        return Err(Error::EmptySelection(root.to_path_buf()));
    }
    let names = Names::load(root);
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(Vec::new(), Compression::default());
    let mut w = Writer::new(gz, Magic::Gnu);
    w.pax_extras = false;
    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    let mut members = Vec::with_capacity(sel.names.len());
    let out = |e: std::io::Error| Error::Io {
        path: "overlay".into(),
        source: e,
    };
    for name in &sel.names {
        let rel = name.trim_end_matches('/');
        let path = root.join(rel);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            // The apk core works on text paths: a name that is not UTF-8 came back mangled.
            Err(_) if rel.contains('\u{FFFD}') => return Err(Error::BadName(path)),
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        let ft = meta.file_type();
        let (kind, arch_name) = if ft.is_dir() {
            (Kind::Dir, format!("{rel}/"))
        } else if ft.is_symlink() {
            (Kind::Symlink, rel.to_string())
        } else if ft.is_file() {
            (Kind::File, rel.to_string())
        } else if ft.is_char_device() {
            (Kind::CharDev, rel.to_string())
        } else if ft.is_block_device() {
            (Kind::BlockDev, rel.to_string())
        } else if ft.is_fifo() {
            (Kind::Fifo, rel.to_string())
        } else {
            // Sockets cannot be archived (tar: "socket ignored").
            continue;
        };
        let mut e = Entry::new(&arch_name, kind, meta.mode() & 0o7777);
        e.uid = meta.uid();
        e.gid = meta.gid();
        e.uname = names.users.get(&e.uid).cloned().unwrap_or_default();
        e.gname = names.groups.get(&e.gid).cloned().unwrap_or_default();
        let mtime = meta.mtime().max(0) as u64;
        e.mtime = opts.clamp_mtime.map_or(mtime, |c| mtime.min(c));
        match kind {
            Kind::Symlink => {
                let target = std::fs::read_link(&path).at(&path)?;
                e.link = target
                    .to_str()
                    .ok_or_else(|| Error::BadName(path.clone()))?
                    .to_string();
                w.append_header(&e).map_err(out)?;
            }
            Kind::CharDev | Kind::BlockDev => {
                let rdev = meta.rdev();
                e.dev = (
                    nix::sys::stat::major(rdev) as u32,
                    nix::sys::stat::minor(rdev) as u32,
                );
                w.append_header(&e).map_err(out)?;
            }
            Kind::File if meta.nlink() > 1 && inodes.contains_key(&(meta.dev(), meta.ino())) => {
                e.kind = Kind::HardLink;
                e.link = inodes[&(meta.dev(), meta.ino())].clone();
                w.append_header(&e).map_err(out)?;
            }
            Kind::File => {
                if meta.nlink() > 1 {
                    inodes.insert((meta.dev(), meta.ino()), arch_name.clone());
                }
                // O_NOFOLLOW: the name was a regular file at lstat time; never archive what a
                // symlink swapped in since then points to.
                let mut f = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                    .open(&path)
                    .at(&path)?;
                e.size = meta.len();
                w.append_header(&e).map_err(out)?;
                w.write_data(&mut f, e.size).at(&path)?;
            }
            _ => w.append_header(&e).map_err(out)?,
        }
        members.push(arch_name);
    }
    let deletions = if opts.record_deletions {
        sel.deletions.clone()
    } else {
        Vec::new()
    };
    if !deletions.is_empty() {
        let text = deleted::format(&deletions);
        let mut e = Entry::new(MANIFEST, Kind::File, 0o644);
        e.mtime = opts.clamp_mtime.unwrap_or_else(now);
        w.append(&e, text.as_bytes()).map_err(out)?;
    }
    let gz = w.finish().map_err(out)?;
    let bytes = gz.finish().map_err(out)?;
    Ok(Overlay {
        bytes,
        members,
        deletions,
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
