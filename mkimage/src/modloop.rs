//! The medium's modloop (README "Modloop"): built on the fly from a kernel's module tree
//! (`--modloop-kver`, through `mkinitfs::modloop`) or taken prebuilt (`--modloop FILE`), placed in
//! `boot/` as `modloop-<flavor>` (`bootspec::medium::modloop`) with its detached signature
//! `modloop-<flavor>.sig` (`bootspec::modloop`), made with the medium key that signs the boot
//! repository's index. The init verifies it with the initramfs's `etc/apk/keys` before it mounts
//! it, and the boot command line names it (`modloop=/boot/modloop-<flavor>`).
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use bootspec::modloop::{Signed, Statement};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::options::SignKey;

/// How the modloop is obtained.
#[derive(Debug, Clone)]
pub enum ModloopSource {
    /// A prebuilt squashfs (`--modloop FILE`); the kernel version is read from it unless given.
    File {
        /// The file.
        path: PathBuf,
        /// `--modloop-kver`, when the image holds several kernels.
        kernel_version: Option<String>,
    },
    /// Built now (`--modloop-kver KVER`) from `BASEDIR/lib/modules/KVER` and `BASEDIR/lib/firmware`.
    Build(mkinitfs::modloop::ModloopOptions),
}

/// The flavor of a kernel version: its last `-` word (`6.6.7-0-lts` -> `lts`, Debian's
/// `6.1.0-13-amd64` -> `amd64`), Alpine's naming of `modloop-<flavor>`.
pub fn flavor(kernel_version: &str) -> &str {
    kernel_version
        .rsplit('-')
        .next()
        .filter(|f| !f.is_empty())
        .unwrap_or(kernel_version)
}

/// The kernel versions a squashfs holds: `modules/<kver>/modules.dep` entries of
/// `unsquashfs -l` (which also checks that it is a squashfs the tools read).
pub fn kernel_versions(image: &Path) -> Result<Vec<String>, Error> {
    let out = Command::new("unsquashfs")
        .args(["-l", "-no-progress", "-d", ""])
        .arg(image)
        .output()
        .map_err(|e| Error::Tool {
            tool: "unsquashfs",
            reason: format!("cannot run it ({e}); install squashfs-tools (make deps)"),
        })?;
    if !out.status.success() {
        return Err(Error::Input {
            option: "--modloop",
            path: image.to_path_buf(),
            reason: format!(
                "not a squashfs image unsquashfs reads: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
            ),
        });
    }
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let rest = l.trim_start_matches('/').strip_prefix("modules/")?;
            let (kver, file) = rest.split_once('/')?;
            (file == "modules.dep").then(|| kver.to_string())
        })
        .collect();
    v.sort();
    v.dedup();
    Ok(v)
}

/// The kernel version of a prebuilt modloop: the one given, which it must hold, or the only one
/// it holds.
pub fn kernel_version_of(image: &Path, given: Option<&str>) -> Result<String, Error> {
    let found = kernel_versions(image)?;
    let bad = |reason: String| Error::Input {
        option: "--modloop",
        path: image.to_path_buf(),
        reason,
    };
    match (given, found.as_slice()) {
        (Some(k), f) if f.iter().any(|x| x == k) => Ok(k.to_string()),
        (Some(k), f) => Err(bad(format!(
            "holds no modules/{k}/modules.dep (it has: {})",
            f.join(", ")
        ))),
        (None, [one]) => Ok(one.clone()),
        (None, []) => Err(bad(
            "holds no modules/<kver>/modules.dep: not a modloop".into()
        )),
        (None, many) => Err(bad(format!(
            "holds several kernels ({}): choose one with --modloop-kver",
            many.join(", ")
        ))),
    }
}

/// The signature file text for `image`, to be stored as `NAME.sig` beside it under `name`.
pub fn signature(
    image: &Path,
    name: &str,
    kernel_version: &str,
    key: &SignKey,
) -> Result<String, Error> {
    let io = |source| Error::Io {
        path: image.to_path_buf(),
        source,
    };
    let mut file = File::open(image).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let alg = key.key.default_alg();
    let statement = Statement {
        file: name.to_string(),
        kernel: kernel_version.to_string(),
        size,
        sha256: hasher.finalize().into(),
        key_name: key.name.clone(),
        algorithm: alg.tag().to_string(),
    };
    let signature = key
        .key
        .sign(alg, &statement.message())
        .map_err(|e| Error::Key {
            path: key.path.clone(),
            reason: e.to_string(),
        })?;
    // Checked with the public half, as the index is: a key that cannot verify its own signature
    // would make every boot refuse the modloop.
    if !key
        .key
        .public()
        .verify(alg, &statement.message(), &signature)
    {
        return Err(Error::Key {
            path: key.path.clone(),
            reason: "the modloop signature does not verify with the key's public half".into(),
        });
    }
    Ok(Signed {
        statement,
        signature,
    }
    .render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_is_the_last_word() {
        assert_eq!(flavor("6.6.7-0-lts"), "lts");
        assert_eq!(flavor("6.1.0-57-amd64"), "amd64");
        assert_eq!(flavor("6.1"), "6.1");
        assert_eq!(flavor("6.1-"), "6.1-");
    }

    #[test]
    fn signature_verifies_and_binds_name_kernel_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("built");
        std::fs::write(&image, b"squashfs bytes").unwrap();
        let key_path = dir.path().join("medium.rsa");
        let key = apk::trust::PrivateKey::generate_ed25519();
        std::fs::write(&key_path, key.to_pem().unwrap()).unwrap();
        let key = SignKey::load(&key_path).unwrap();
        let text = signature(&image, "modloop-amd64", "6.1.0-57-amd64", &key).unwrap();
        let s = Signed::parse(&text).unwrap();
        assert_eq!(s.statement.file, "modloop-amd64");
        assert_eq!(s.statement.kernel, "6.1.0-57-amd64");
        assert_eq!(s.statement.size, 14);
        assert_eq!(s.statement.key_name, "medium.rsa.pub");
        assert_eq!(
            s.statement.sha256,
            <[u8; 32]>::from(Sha256::digest(b"squashfs bytes"))
        );
        assert!(key.key.public().verify(
            apk::trust::Alg::Ed25519,
            &s.statement.message(),
            &s.signature
        ));
    }
}
