//! Secrets never travel: nothing mkimage trusts or copies may be a private key (the medium
//! signing key included: it signs the index and never goes on the medium). The test is
//! `mkinitfs::secret`'s, applied to the three kinds of input mkimage has:
//!
//! - the directories of trusted keys (`--keys-dir`): public keys only, as in `/etc/apk/keys`; a
//!   private key there is the `apk keygen -o DIR/KEY` mistake, and such a directory tends to be
//!   copied into images next;
//! - every host file the medium will carry (kernel, initramfs, modloop, overlay, cache,
//!   packages), by its first bytes;
//! - every file inside the initramfs ([`crate::initramfs`]), where the one private key allowed on
//!   purpose is the age identity at `etc/apkovl/identity` (`mkinitfs --ovl-identity`). mkimage
//!   never copies that identity anywhere else: it reads the initramfs, it does not unpack it.

use std::fs;
use std::path::Path;

use mkinitfs::secret;

use crate::error::{Error, IoResultExt};
use crate::layout::{Layout, Node, Source};

/// Refuses a directory of trusted keys that holds a private key (regular files, links
/// followed, in name order).
pub fn check_keys_dir(dir: &Path, option: &'static str) -> Result<(), Error> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        paths.push(entry.at(dir)?.path());
    }
    paths.sort();
    for path in paths.into_iter().filter(|p| p.is_file()) {
        if let Some(found) = secret::find_in_file(&path).at(&path)? {
            return Err(Error::Secret {
                option,
                path,
                secret: found,
                reason: "a directory of trusted keys holds public keys only (the .pub file)",
            });
        }
    }
    Ok(())
}

/// Refuses a planned medium that would carry a private key: a host file holding one, or bytes
/// mkimage generated (configurations, the index, the unified kernel image) that start like one.
pub fn check_layout(layout: &Layout) -> Result<(), Error> {
    for (at, node) in layout.iter() {
        let Node::File { source, .. } = node else {
            continue;
        };
        let path = match source {
            Source::Path(path) => path,
            Source::Bytes(bytes) => {
                if let Some(found) = secret::find(bytes) {
                    return Err(Error::Secret {
                        option: "mkimage",
                        path: at.into(),
                        secret: found,
                        reason:
                            "generated content that would carry a private key (a bug: report it)",
                    });
                }
                continue;
            }
        };
        if let Some(found) = secret::find_in_file(path).at(path)? {
            return Err(Error::Secret {
                option: option_of(at),
                path: path.clone(),
                secret: found,
                reason: "only public keys may go on a medium",
            });
        }
    }
    Ok(())
}

/// Refuses a signing key that is not a private key (e.g. the certificate given twice): the
/// signer would fail later with a less clear message.
pub fn check_signing_key(key: &Path, option: &'static str) -> Result<(), Error> {
    match secret::find_in_file(key).at(key)? {
        Some(_) => Ok(()),
        None => Err(Error::Input {
            option,
            path: key.to_path_buf(),
            reason: "not a private key (PEM expected)".into(),
        }),
    }
}

/// Refuses a medium that would carry the file `key` itself (whatever its content: a hardware
/// token's stub or a key in an unusual format is refused too).
pub fn check_not_carried(layout: &Layout, key: &Path, option: &'static str) -> Result<(), Error> {
    let key = fs::canonicalize(key).at(key)?;
    for (at, node) in layout.iter() {
        if let Node::File {
            source: Source::Path(path),
            ..
        } = node
        {
            if fs::canonicalize(path).ok().as_ref() == Some(&key) {
                return Err(Error::Input {
                    option,
                    path: key.clone(),
                    reason: format!("would go on the medium as /{at}: private keys never do"),
                });
            }
        }
    }
    Ok(())
}

/// The option that put a medium path in the layout (for the message).
fn option_of(at: &str) -> &'static str {
    use bootspec::medium::{CACHE_DIR, INITRAMFS, KERNEL};
    if at == KERNEL {
        "--kernel"
    } else if at == INITRAMFS {
        "--initramfs"
    } else if at.starts_with(&format!("{CACHE_DIR}/")) {
        "--cache"
    } else if at.starts_with("apks") {
        "--repository"
    } else if at.starts_with(&format!("{}/", bootspec::medium::BOOT_DIR)) {
        "--modloop"
    } else {
        "--apkovl"
    }
}

/// The first line of `--ovl-passphrase-file`, read as lbu reads its `PASSWORD_FILE`
/// ([`overlays::passphrase`]: private to root or to the user running mkimage, opened once
/// without following a link, bounded, zeroed). The passphrase never appears in a message.
pub fn read_passphrase(path: &Path) -> Result<zeroize::Zeroizing<String>, Error> {
    overlays::read_passphrase_file(path).map_err(|e| Error::Input {
        option: "--ovl-passphrase-file",
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_dirs_and_medium_files_with_a_private_key_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let key = apk::trust::PrivateKey::generate_ed25519();
        fs::write(t.path().join("medium.key.pub"), key.public().to_pem()).unwrap();
        check_keys_dir(t.path(), "--keys-dir").unwrap();
        fs::write(t.path().join("medium.key"), key.to_pem().unwrap()).unwrap();
        let err = check_keys_dir(t.path(), "--keys-dir")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "--keys-dir {}: a PEM private key (PRIVATE KEY): a directory of trusted keys holds public keys only (the .pub file)",
                t.path().join("medium.key").display()
            )
        );
        let mut l = Layout::default();
        l.add_host_file("cache/x.pub", &t.path().join("medium.key.pub"), "--cache")
            .unwrap();
        check_layout(&l).unwrap();
        l.add_host_file("cache/x", &t.path().join("medium.key"), "--cache")
            .unwrap();
        let err = check_layout(&l).unwrap_err().to_string();
        assert!(
            err.starts_with("--cache ") && err.ends_with("medium.key: a PEM private key (PRIVATE KEY): only public keys may go on a medium"),
            "{err}"
        );
        assert_eq!(option_of("boot/vmlinuz"), "--kernel");
        assert_eq!(option_of("boot/modloop-lts"), "--modloop");
        assert_eq!(option_of("apks/x86_64/a-1.apk"), "--repository");
        assert_eq!(option_of("fw1.apkovl.tar.gz"), "--apkovl");
    }

    /// The rules are the overlays crate's (tested there); mkimage names its option and the file.
    #[test]
    fn passphrase_file_errors_name_the_option_and_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("passphrase");
        fs::write(&p, b"correct horse\r\nsecond\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_passphrase(&p).unwrap().as_str(), "correct horse");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            read_passphrase(&p).unwrap_err().to_string(),
            format!(
                "--ovl-passphrase-file {}: mode 0640: group or others may access it (it must be a \
                 regular file owned by root with mode 0600 or stricter: chmod 600)",
                p.display()
            )
        );
    }
}
