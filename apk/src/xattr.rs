//! Extended attributes: reading and writing them on files under a root, and the digest apk keeps
//! in `a:`/`M:` lines (SHA-1 over the attributes sorted by name, each as
//! `be32(len name) name be32(len value) value`, apk-format.md §1.4).

use crate::package::Checksum;
use sha1::{Digest, Sha1};
use std::io;
use std::path::Path;

/// Digest of a set of xattrs; `None` when there are none.
pub fn digest(attrs: &[(String, Vec<u8>)]) -> Option<Checksum> {
    if attrs.is_empty() {
        return None;
    }
    let mut sorted: Vec<&(String, Vec<u8>)> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha1::new();
    for (k, v) in sorted {
        h.update((k.len() as u32).to_be_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u32).to_be_bytes());
        h.update(v);
    }
    Some(Checksum(h.finalize().to_vec()))
}

/// Read all xattrs of `path` without following a final symlink (none where the file system has
/// no xattr support).
pub fn read(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let n = match rustix::fs::llistxattr_query(path) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut names = vec![0u8; n];
    let n = rustix::fs::llistxattr(path, &mut names[..])?;
    names.truncate(n);
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        // An attribute removed between the calls, or grown past the size just asked, is skipped.
        let Ok(vn) = rustix::fs::lgetxattr_query(path, name) else {
            continue;
        };
        let mut val = vec![0u8; vn];
        let Ok(vn) = rustix::fs::lgetxattr(path, name, &mut val[..]) else {
            continue;
        };
        val.truncate(vn);
        out.push((String::from_utf8_lossy(name).into_owned(), val));
    }
    Ok(out)
}

/// Set one xattr on `path` (not following a final symlink).
pub fn set(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_order_independent() {
        let a = vec![
            ("user.b".to_string(), b"2".to_vec()),
            ("user.a".to_string(), b"1".to_vec()),
        ];
        let b = vec![
            ("user.a".to_string(), b"1".to_vec()),
            ("user.b".to_string(), b"2".to_vec()),
        ];
        assert_eq!(digest(&a), digest(&b));
        assert!(digest(&[]).is_none());
    }

    #[test]
    fn set_and_read() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, "x").unwrap();
        if set(&f, "user.test", b"val").is_ok() {
            assert_eq!(
                read(&f).unwrap(),
                vec![("user.test".to_string(), b"val".to_vec())]
            );
        }
    }
}
