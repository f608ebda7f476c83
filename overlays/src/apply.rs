//! Applying an apkovl to a root, safely (overlays/README.md, "Reading and applying").
//!
//! The whole archive is decompressed and parsed first ([`crate::archive`], bounded by
//! [`ApplyPolicy::max_unpacked`] and at most [`crate::MAX_UNPACKED_BYTES`]), so a truncated,
//! corrupt or oversized overlay is rejected before anything is written. Then each member is
//! placed beneath a root handle opened once: parents are resolved with `openat2(RESOLVE_IN_ROOT)`
//! (an existing absolute symlink such as usr-merge's `bin -> usr/bin` is followed, but inside the
//! root), and the last component is created under a temporary name and renamed over the target,
//! so an existing symlink there is replaced, never written through. Owners are the numeric ids
//! (the overlay was made on the same system), modes keep setuid/setgid/sticky, mtimes are kept.
//!
//! Refused, with a reason, and skipped (the rest still applies): absolute names, names with `..`,
//! names through a symlink this same overlay created (the classic "symlink, then a member
//! through it" escape), device nodes and setuid/setgid files unless the policy allows them. The
//! deletion manifest ([`crate::deleted`]) is parsed instead of extracted. Like Alpine's init,
//! `root/` is made mode 0700 afterwards.

use crate::archive::{self, Links, RawMember};
use crate::deleted::{self, MANIFEST};
use crate::{Error, IoResultExt, MAX_OVERLAY_BYTES, MAX_UNPACKED_BYTES};
use apk::root::{split_parent, Root};
use apk::tar::Kind;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use std::collections::HashSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// What an overlay may contain.
#[derive(Clone, Debug)]
pub struct ApplyPolicy {
    /// Create character and block device nodes.
    pub allow_devices: bool,
    /// Keep setuid/setgid bits on files (setgid directories are always fine).
    pub allow_setid: bool,
    /// Refuse archives that decompress to more than this many bytes (capped at
    /// [`MAX_UNPACKED_BYTES`]).
    pub max_unpacked: u64,
}

impl Default for ApplyPolicy {
    fn default() -> Self {
        ApplyPolicy {
            allow_devices: false,
            allow_setid: false,
            max_unpacked: MAX_UNPACKED_BYTES,
        }
    }
}

/// A member that was not applied, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Member name as stored (lossy UTF-8).
    pub name: String,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.reason)
    }
}

/// Result of [`apply`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Extracted names, in archive order, directories with a trailing `/` (apk's overlay list).
    pub extracted: Vec<String>,
    /// Members not applied.
    pub refused: Vec<Refused>,
    /// Paths of the deletion manifest, to remove after the package install
    /// ([`crate::apply_deletions`]).
    pub deletions: Vec<String>,
}

struct Applier<'a> {
    root: Root,
    policy: &'a ApplyPolicy,
    /// Symlinks this overlay created: later members must not pass through them.
    links: Links,
    /// Directories to stamp with their mtime once all members are in.
    dir_times: Vec<(String, u64)>,
    counter: u64,
    is_root: bool,
}

fn errno(e: nix::Error) -> String {
    e.desc().to_string()
}

/// Apply an overlay (gzip tar bytes, at most [`MAX_OVERLAY_BYTES`]) to `root`.
pub fn apply(overlay: &[u8], root: &Path, policy: &ApplyPolicy) -> Result<ApplyReport, Error> {
    if overlay.len() as u64 > MAX_OVERLAY_BYTES {
        return Err(Error::OverlayTooLarge {
            size: overlay.len() as u64,
        });
    }
    let tarball = archive::gunzip(overlay, policy.max_unpacked)?;
    let members = archive::parse(&tarball)?;
    let r = Root::open(root).at(root)?;
    let mut a = Applier {
        root: r,
        policy,
        links: Links::default(),
        dir_times: Vec::new(),
        counter: 0,
        is_root: nix::unistd::geteuid().is_root(),
    };
    let mut rep = ApplyReport::default();
    let mut seen = HashSet::new();
    for m in &members {
        let refuse = |rep: &mut ApplyReport, reason: String| {
            rep.refused.push(Refused {
                name: m.entry.name.clone(),
                reason,
            })
        };
        let (comps, slash) = match a.links.check(&m.entry.name) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(why) => {
                refuse(&mut rep, why);
                continue;
            }
        };
        let rel = comps.join("/");
        if rel == MANIFEST && m.entry.kind == Kind::File {
            match std::str::from_utf8(m.data)
                .map_err(|_| Error::Manifest("not UTF-8".into()))
                .and_then(deleted::parse)
            {
                Ok(d) => rep.deletions = d,
                Err(e) => refuse(&mut rep, e.to_string()),
            }
            continue;
        }
        let listed = match a.member(m, &rel, slash) {
            Ok(()) if m.entry.kind == Kind::Dir || slash => format!("{rel}/"),
            Ok(()) => rel,
            Err(why) => {
                refuse(&mut rep, why);
                continue;
            }
        };
        if seen.insert(listed.clone()) {
            rep.extracted.push(listed);
        }
    }
    a.finish();
    Ok(rep)
}

impl Applier<'_> {
    fn tmp_name(&mut self) -> String {
        self.counter += 1;
        format!(".apkovl-tmp.{}.{}", std::process::id(), self.counter)
    }

    fn parent(&self, rel: &str) -> Result<(OwnedFd, String), String> {
        let (parent, name) = split_parent(rel);
        self.root
            .mkdir_p(parent, 0o755)
            .map_err(|e| format!("cannot create parent directory: {e}"))?;
        let d = self
            .root
            .dir(parent)
            .map_err(|e| format!("cannot open parent directory: {e}"))?;
        Ok((d, name.to_string()))
    }

    fn chown(&self, r: nix::Result<()>) -> Result<(), String> {
        match r {
            // Unprivileged callers (tests, `lbu status` as a user) cannot give files away.
            Err(nix::Error::EPERM) if !self.is_root => Ok(()),
            other => other.map_err(|e| format!("cannot set owner: {}", errno(e))),
        }
    }

    fn member(&mut self, m: &RawMember<'_>, rel: &str, slash: bool) -> Result<(), String> {
        use Kind as T;
        let setid = m.entry.mode & 0o6000 != 0;
        match m.entry.kind {
            T::Dir => self.dir(m, rel),
            // Old (V7) archives mark directories only by the trailing `/`, as tar readers know.
            T::File if slash && m.data.is_empty() => self.dir(m, rel),
            T::File | T::HardLink | T::Fifo if setid && !self.policy.allow_setid => {
                Err("setuid/setgid file (not allowed by policy)".into())
            }
            T::File => self.file(m, rel),
            T::Symlink => self.symlink(m, rel),
            T::HardLink => self.hardlink(m, rel),
            T::CharDev | T::BlockDev if !self.policy.allow_devices => {
                Err("device node (not allowed by policy)".into())
            }
            T::CharDev | T::BlockDev | T::Fifo => self.special(m, rel),
        }
    }

    /// Put `tmp` in place of `name` once it is `prepared` (owner, mode, times);
    /// if preparing or the rename failed, remove `tmp` so nothing half-made stays.
    fn commit(
        &self,
        d: &OwnedFd,
        tmp: &str,
        name: &str,
        prepared: Result<(), String>,
    ) -> Result<(), String> {
        let res = prepared.and_then(|_| {
            nix::fcntl::renameat(d, tmp, d, name)
                .map_err(|e| format!("cannot replace existing entry: {}", errno(e)))
        });
        if res.is_err() {
            let _ = nix::unistd::unlinkat(d, tmp, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        res
    }

    fn file(&mut self, m: &RawMember<'_>, rel: &str) -> Result<(), String> {
        let (d, name) = self.parent(rel)?;
        let tmp = self.tmp_name();
        let fd = nix::fcntl::openat(
            &d,
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| format!("cannot create: {}", errno(e)))?;
        let res = (|| {
            let mut f = std::fs::File::from(fd);
            std::io::Write::write_all(&mut f, m.data).map_err(|e| format!("cannot write: {e}"))?;
            self.chown(nix::unistd::fchown(
                f.as_fd(),
                Some(Uid::from_raw(m.entry.uid)),
                Some(Gid::from_raw(m.entry.gid)),
            ))?;
            // After chown, which clears setuid/setgid.
            nix::sys::stat::fchmod(f.as_fd(), Mode::from_bits_truncate(m.entry.mode))
                .map_err(|e| format!("cannot set mode: {}", errno(e)))?;
            set_times_fd(f.as_fd(), m.entry.mtime)
        })();
        self.commit(&d, &tmp, &name, res)
    }

    fn symlink(&mut self, m: &RawMember<'_>, rel: &str) -> Result<(), String> {
        let (d, name) = self.parent(rel)?;
        let tmp = self.tmp_name();
        nix::unistd::symlinkat(m.entry.link.as_str(), &d, tmp.as_str())
            .map_err(|e| format!("cannot create symlink: {}", errno(e)))?;
        let res = self
            .chown(nix::unistd::fchownat(
                &d,
                tmp.as_str(),
                Some(Uid::from_raw(m.entry.uid)),
                Some(Gid::from_raw(m.entry.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ))
            .and_then(|_| set_times_at(&d, &tmp, m.entry.mtime));
        self.commit(&d, &tmp, &name, res)?;
        self.links.add(rel);
        Ok(())
    }

    fn hardlink(&mut self, m: &RawMember<'_>, rel: &str) -> Result<(), String> {
        let tcomps = self.links.check_link_target(&m.entry.link)?;
        let target = tcomps.join("/");
        let (tparent, tname) = split_parent(&target);
        let td = self
            .root
            .dir(tparent)
            .map_err(|e| format!("hard link target {target}: {e}"))?;
        let (d, name) = self.parent(rel)?;
        let tmp = self.tmp_name();
        // No AT_SYMLINK_FOLLOW: linking a symlink links the symlink itself.
        nix::unistd::linkat(&td, tname, &d, tmp.as_str(), AtFlags::empty())
            .map_err(|e| format!("hard link to {target}: {}", errno(e)))?;
        self.commit(&d, &tmp, &name, Ok(()))
    }

    fn special(&mut self, m: &RawMember<'_>, rel: &str) -> Result<(), String> {
        let (d, name) = self.parent(rel)?;
        let tmp = self.tmp_name();
        let kind = match m.entry.kind {
            Kind::CharDev => SFlag::S_IFCHR,
            Kind::BlockDev => SFlag::S_IFBLK,
            _ => SFlag::S_IFIFO,
        };
        let dev = nix::sys::stat::makedev(m.entry.dev.0.into(), m.entry.dev.1.into());
        nix::sys::stat::mknodat(&d, tmp.as_str(), kind, Mode::from_bits_truncate(0o600), dev)
            .map_err(|e| format!("cannot create node: {}", errno(e)))?;
        let res = self
            .chown(nix::unistd::fchownat(
                &d,
                tmp.as_str(),
                Some(Uid::from_raw(m.entry.uid)),
                Some(Gid::from_raw(m.entry.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ))
            .and_then(|_| {
                nix::sys::stat::fchmodat(
                    &d,
                    tmp.as_str(),
                    Mode::from_bits_truncate(m.entry.mode),
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )
                .map_err(|e| format!("cannot set mode: {}", errno(e)))
            })
            .and_then(|_| set_times_at(&d, &tmp, m.entry.mtime));
        self.commit(&d, &tmp, &name, res)
    }

    fn dir(&mut self, m: &RawMember<'_>, rel: &str) -> Result<(), String> {
        let (d, name) = self.parent(rel)?;
        match nix::sys::stat::fstatat(&d, name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if file_type(st.st_mode) == SFlag::S_IFDIR => {}
            // An existing symlink (usr-merge `bin -> usr/bin`) stays; its target keeps its metadata.
            Ok(st) if file_type(st.st_mode) == SFlag::S_IFLNK => return Ok(()),
            Ok(_) => {
                nix::unistd::unlinkat(&d, name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| format!("cannot replace file by directory: {}", errno(e)))?;
                nix::sys::stat::mkdirat(&d, name.as_str(), Mode::from_bits_truncate(0o700))
                    .map_err(|e| format!("cannot create directory: {}", errno(e)))?;
            }
            Err(nix::Error::ENOENT) => {
                nix::sys::stat::mkdirat(&d, name.as_str(), Mode::from_bits_truncate(0o700))
                    .map_err(|e| format!("cannot create directory: {}", errno(e)))?;
            }
            Err(e) => return Err(errno(e)),
        }
        let fd = nix::fcntl::openat(
            &d,
            name.as_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("cannot open directory: {}", errno(e)))?;
        self.chown(nix::unistd::fchown(
            &fd,
            Some(Uid::from_raw(m.entry.uid)),
            Some(Gid::from_raw(m.entry.gid)),
        ))?;
        nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(m.entry.mode))
            .map_err(|e| format!("cannot set mode: {}", errno(e)))?;
        self.dir_times.push((rel.to_string(), m.entry.mtime));
        Ok(())
    }

    /// Directory mtimes last (creating entries inside changed them), then `chmod 700 root/`.
    fn finish(&mut self) {
        for (rel, mtime) in self.dir_times.iter().rev() {
            let (parent, name) = split_parent(rel);
            if let Ok(d) = self.root.dir(parent) {
                let _ = set_times_at(&d, name, *mtime);
            }
        }
        // Parent directories are not stored in overlays, so /root would get a default mode
        // (overlays/README.md, "Reading and applying").
        if let Ok(fd) = nix::fcntl::openat(
            self.root.fd(),
            "root",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            let _ = nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(0o700));
        }
    }
}

/// The file type bits of an `st_mode`.
pub(crate) fn file_type(mode: nix::libc::mode_t) -> SFlag {
    SFlag::from_bits_truncate(mode) & SFlag::S_IFMT
}

fn set_times_fd(fd: BorrowedFd<'_>, mtime: u64) -> Result<(), String> {
    let t = TimeSpec::new(mtime as i64, 0);
    nix::sys::stat::futimens(fd, &t, &t).map_err(|e| format!("cannot set mtime: {}", errno(e)))
}

fn set_times_at(d: &OwnedFd, name: &str, mtime: u64) -> Result<(), String> {
    let t = TimeSpec::new(mtime as i64, 0);
    nix::sys::stat::utimensat(d, name, &t, &t, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| format!("cannot set mtime: {}", errno(e)))
}
