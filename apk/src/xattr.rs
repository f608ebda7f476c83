//! Extended attributes: reading and writing them on files under a root, and the digest apk keeps
//! in `a:`/`M:` lines (SHA-1 over the attributes sorted by name, each as
//! `be32(len name) name be32(len value) value`, apk-format.md §1.4).

use crate::package::Checksum;
use sha1::{Digest, Sha1};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
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

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

/// Read all xattrs of `path` without following a final symlink.
pub fn read(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let c = cpath(path)?;
    // SAFETY: a NULL buffer with size 0 asks for the needed size; `c` is a valid C string.
    let n = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTSUP) => Ok(Vec::new()),
            _ => Err(e),
        };
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut names = vec![0u8; n as usize];
    // SAFETY: the buffer is `names.len()` bytes long and owned by us.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad xattr name"))?;
        // SAFETY: size query with a NULL buffer.
        let vn = unsafe { libc::lgetxattr(c.as_ptr(), cname.as_ptr(), std::ptr::null_mut(), 0) };
        if vn < 0 {
            continue;
        }
        let mut val = vec![0u8; vn as usize];
        // SAFETY: the buffer is `val.len()` bytes long and owned by us.
        let vn = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                val.as_mut_ptr().cast(),
                val.len(),
            )
        };
        if vn < 0 {
            continue;
        }
        val.truncate(vn as usize);
        out.push((String::from_utf8_lossy(name).into_owned(), val));
    }
    Ok(out)
}

/// Set one xattr on `path` (not following a final symlink).
pub fn set(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = cpath(path)?;
    let cname = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad xattr name"))?;
    // SAFETY: both strings are valid and the value slice is valid for its length.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
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
