//! Files that live in RAM: a copy of something read once from a medium, sealed so that nothing
//! can change it afterwards (docs/boot.md, "Modloop": the bytes mounted are the bytes verified).
//!
//! A loop device reads its backing file lazily, through the page cache: mounted straight from a
//! medium, the modloop's blocks would be read again from the device whenever the cache drops
//! them, and a medium that answers differently on a second read (a USB gadget, virtual media)
//! could serve modules that were never verified. A sealed memfd holds the verified bytes for the
//! whole life of the mount, and the medium can be pulled out.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

use super::SysError;

/// A new, empty memfd named `name` (what `/proc/PID/fd` shows), which can be sealed.
pub fn create(name: &str) -> Result<File, SysError> {
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).map_err(
        |errno| SysError::Io {
            path: format!("memfd:{name}").into(),
            source: io::Error::from(errno),
        },
    )?;
    Ok(File::from(fd))
}

/// Seals `file` against any change: no write, no growth, no shrinking, no more seals.
pub fn seal(file: &File, name: &Path) -> Result<(), SysError> {
    let seals = SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_SEAL;
    fcntl(file, FcntlArg::F_ADD_SEALS(seals)).map_err(|errno| SysError::Io {
        path: name.to_path_buf(),
        source: io::Error::from(errno),
    })?;
    Ok(())
}

/// Appends `bytes` to `file` (a memfd being filled).
pub fn append(mut file: &File, bytes: &[u8], name: &Path) -> Result<(), SysError> {
    file.write_all(bytes).map_err(|source| SysError::Io {
        path: name.to_path_buf(),
        source,
    })
}

/// The RAM not in use right now (`sysinfo`'s free RAM), for a bound on what is copied there.
pub fn ram_unused() -> Option<u64> {
    nix::sys::sysinfo::sysinfo().ok().map(|s| s.ram_unused())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    #[test]
    fn a_sealed_copy_keeps_its_bytes_and_refuses_changes() {
        let name = Path::new("modloop-lts");
        let mut f = create("modloop-test").unwrap();
        append(&f, b"squashfs bytes", name).unwrap();
        seal(&f, name).unwrap();
        let e = append(&f, b"more", name).unwrap_err().to_string();
        assert!(e.starts_with("modloop-lts: "), "{e}");
        assert!(f.set_len(3).is_err());
        f.rewind().unwrap();
        let mut back = String::new();
        f.read_to_string(&mut back).unwrap();
        assert_eq!(back, "squashfs bytes");
        assert!(ram_unused().is_some_and(|n| n > 0));
    }
}
