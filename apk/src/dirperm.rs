//! The permissions of installed directories (`apk fix --directory-permissions`): every directory
//! the installed packages list gets the owner and mode the database records, merged over the
//! packages that share it as apk-tools merges them (docs/apk-format.md §6.1b): the
//! lowest owner (uid, then gid) wins, and the modes of the packages with that owner add up.

use crate::db::{Acl, Database};
use crate::extract::Ownership;
use crate::root::split_parent;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::collections::BTreeMap;
use std::os::fd::AsFd;

/// The permissions each directory should have (the root itself excluded), by path.
pub fn merged(db: &Database) -> BTreeMap<String, Acl> {
    let mut dirs: BTreeMap<String, Acl> = BTreeMap::new();
    for d in db.installed.iter().flat_map(|p| &p.dirs) {
        if d.path.is_empty() {
            continue;
        }
        let a = &d.acl;
        dirs.entry(d.path.clone())
            .and_modify(|m| {
                if (a.uid, a.gid) < (m.uid, m.gid) {
                    *m = a.clone();
                } else if (a.uid, a.gid) == (m.uid, m.gid) {
                    m.mode |= a.mode;
                }
            })
            .or_insert_with(|| a.clone());
    }
    dirs
}

/// Give every installed directory its merged permissions where they differ on disk. Returns how
/// many directories could not be set (a missing one counts). A path that is not a directory on
/// disk (a symlink, say) is left alone: it is opened without following it, so nothing outside the
/// root is ever changed.
pub fn reset(db: &Database, ownership: Ownership) -> usize {
    merged(db)
        .iter()
        .filter(|(path, acl)| set(db, path, acl, ownership).is_err())
        .count()
}

fn set(db: &Database, path: &str, acl: &Acl, ownership: Ownership) -> nix::Result<()> {
    let (parent, name) = split_parent(path);
    let pfd = db.root.dir(parent).map_err(|_| nix::Error::ENOENT)?;
    let fd = match nix::fcntl::openat(
        pfd.as_fd(),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::Error::ELOOP | nix::Error::ENOTDIR) => return Ok(()),
        Err(e) => return Err(e),
    };
    let st = nix::sys::stat::fstat(&fd)?;
    let chown = ownership.chown_dirs() && (st.st_uid != acl.uid || st.st_gid != acl.gid);
    if chown {
        nix::unistd::fchown(&fd, Some(acl.uid.into()), Some(acl.gid.into()))?;
    }
    // After a chown too: it may clear set-id bits.
    if chown || st.st_mode & 0o7777 != acl.mode & 0o7777 {
        nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(acl.mode & 0o7777))?;
    }
    Ok(())
}
