//! The sealed initramfs of a unified kernel image (`--uki`): the given initramfs with a small
//! uncompressed newc archive appended, holding
//!
//! - `etc/boot-policy` ([`bootspec::initramfs::POLICY`]): the initramfs's own policy (read from
//!   it: its last `etc/boot-policy`, as the kernel unpacks archives in order and later entries
//!   replace earlier ones) with `sealed=yes`; every other field is copied unchanged, so the
//!   image's overlay requirements stay exactly what its builder decided (never loosened);
//! - `etc/boot-cmdline` ([`bootspec::initramfs::SIGNED_CMDLINE`]): the exact command line the
//!   image is signed with, which the init of a sealed image compares with `/proc/cmdline`.
//!
//! The kernel unpacks concatenated archives in order, so the appended files replace whatever the
//! initramfs held at those paths. The initramfs itself is not unpacked or rewritten (mkinitfs
//! stays the one writer of its content); the firmware's signature check over the whole UKI then
//! covers both archives.

use std::fs;
use std::io;
use std::path::Path;

use bootspec::initramfs::{POLICY, SIGNED_CMDLINE};
use bootspec::BootPolicy;
use mkinitfs::cpio;
use mkinitfs::tree::Tree;

use crate::error::{Error, IoResultExt};

/// A policy file larger than this is not one mkinitfs wrote.
const MAX_POLICY: u64 = 64 << 10;

/// The initramfs at `initramfs` with the sealing archive for `cmdline` appended.
pub fn sealed_initramfs(initramfs: &Path, cmdline: &str, mtime: u64) -> Result<Vec<u8>, Error> {
    let policy = image_policy(initramfs)?;
    let mut bytes = fs::read(initramfs).at(initramfs)?;
    // Each archive starts on a 4-byte boundary (the kernel skips zero padding between them).
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    bytes.extend(sealing_archive(&policy, cmdline, mtime)?);
    Ok(bytes)
}

/// The archive that seals an image whose own policy is `policy`.
pub fn sealing_archive(policy: &BootPolicy, cmdline: &str, mtime: u64) -> Result<Vec<u8>, Error> {
    let sealed = BootPolicy {
        sealed: true,
        ..policy.clone()
    };
    let mut tree = Tree::new();
    let fail = |e: mkinitfs::Error| Error::setting("--uki", e.to_string());
    tree.add_dir("etc", 0o755).map_err(fail)?;
    tree.add_bytes(POLICY, sealed.render(), 0o644)
        .map_err(fail)?;
    tree.add_bytes(SIGNED_CMDLINE, cmdline, 0o644)
        .map_err(fail)?;
    // newc holds 32-bit times; a build time past 2106 is clamped rather than wrapped.
    let mtime = u32::try_from(mtime).unwrap_or(u32::MAX);
    cpio::write_tree(&tree, mtime, Vec::new(), Path::new("<sealing archive>")).map_err(fail)
}

/// The boot policy the initramfs carries (the default when it has none). An initramfs mkimage
/// cannot read, or whose policy does not parse, cannot be sealed: guessing would risk loosening
/// what its builder decided.
fn image_policy(initramfs: &Path) -> Result<BootPolicy, Error> {
    let refuse = |reason: String| Error::Input {
        option: "--initramfs",
        path: initramfs.to_path_buf(),
        reason,
    };
    let file = fs::File::open(initramfs).at(initramfs)?;
    let mut text: Option<Vec<u8>> = None;
    cpio::scan(io::BufReader::new(file), &mut |header, data| {
        if header.is_file() && header.path() == POLICY {
            if u64::from(header.size) > MAX_POLICY {
                return Err(io::Error::other(format!(
                    "/{POLICY} is larger than {MAX_POLICY} bytes"
                )));
            }
            let mut content = Vec::new();
            data.read_to_end(&mut content)?;
            text = Some(content);
        }
        Ok(())
    })
    .map_err(|e| {
        refuse(format!(
            "cannot read its boot policy to seal it for --uki ({e})"
        ))
    })?;
    match text {
        None => Ok(BootPolicy::default()),
        Some(t) => BootPolicy::parse(&String::from_utf8_lossy(&t))
            .map_err(|e| refuse(format!("/{POLICY}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bootspec::OverlayRequirement;

    fn newc(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tree = Tree::new();
        for (name, data) in files {
            tree.add_bytes(name, data.to_vec(), 0o644).unwrap();
        }
        cpio::write_tree(&tree, 0, Vec::new(), Path::new("test")).unwrap()
    }

    /// The files the kernel ends up with: later archives replace earlier entries.
    fn unpacked(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
        let mut out = std::collections::BTreeMap::new();
        cpio::scan(io::BufReader::new(bytes), &mut |h, data| {
            if h.is_file() {
                let mut v = Vec::new();
                data.read_to_end(&mut v)?;
                out.insert(h.path().to_string(), v);
            }
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn the_image_policy_is_kept_and_sealed_with_the_exact_command_line() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("initramfs");
        let policy = BootPolicy {
            apkovl_require: OverlayRequirement::SIGNED,
            apkovl_legacy_sig: true,
            sealed: false,
            apkovl_host: Some("fw1".into()),
            apkovl_not_before: Some(1_700_000_000),
        };
        // A compressed main archive, as mkinitfs writes it.
        let main = newc(&[("init", b"x"), (POLICY, policy.render().as_bytes())]);
        let main = zstd::encode_all(&main[..], 3).unwrap();
        fs::write(&p, &main).unwrap();
        let bytes = sealed_initramfs(&p, "console=ttyS0 quiet", 1_700_000_000).unwrap();
        assert_eq!(
            &bytes[..main.len()],
            &main[..],
            "the initramfs is kept as it is"
        );
        // The appended archive starts at the next 4-byte boundary (the kernel skips the zeros;
        // the workspace's reader does not go past a compressed stream, hence two reads).
        let at = main.len().next_multiple_of(4);
        assert!(bytes[main.len()..at].iter().all(|&b| b == 0));
        let mut files = unpacked(&zstd::decode_all(&main[..]).unwrap());
        files.extend(unpacked(&bytes[at..]));
        let sealed = BootPolicy::parse(std::str::from_utf8(&files[POLICY]).unwrap()).unwrap();
        assert_eq!(
            sealed,
            BootPolicy {
                sealed: true,
                ..policy.clone()
            }
        );
        assert_eq!(files[SIGNED_CMDLINE], b"console=ttyS0 quiet");
        assert_eq!(files["init"], b"x");
    }

    #[test]
    fn no_policy_means_the_default_and_a_bad_one_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("initramfs");
        fs::write(&p, newc(&[("init", b"x")])).unwrap();
        let files = unpacked(&sealed_initramfs(&p, "quiet", 0).unwrap());
        assert_eq!(
            BootPolicy::parse(std::str::from_utf8(&files[POLICY]).unwrap()).unwrap(),
            BootPolicy {
                sealed: true,
                ..BootPolicy::default()
            }
        );
        fs::write(&p, newc(&[(POLICY, b"apkovl_require=maybe\n")])).unwrap();
        let err = sealed_initramfs(&p, "quiet", 0).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "--initramfs {}: /etc/boot-policy: line 1: apkovl_require=maybe: expected any, signed, encrypted or signed,encrypted",
                p.display()
            )
        );
        fs::write(&p, b"\x04\x22\x4d\x18lz4").unwrap();
        let err = sealed_initramfs(&p, "quiet", 0).unwrap_err().to_string();
        assert!(
            err.contains("cannot read its boot policy to seal it for --uki"),
            "{err}"
        );
    }
}
