//! The modloop phase (docs/boot.md, "Modloop"): find the modloop on the boot media, verify its
//! detached signature with the initramfs's keys, mount it read-only at `/.modloop` in the new
//! root and link `/lib/modules` and `/lib/firmware` to it, as Alpine's OpenRC `modloop` service
//! does. That service is then taken out of the new root's runlevels: it would mount the image a
//! second time without verification (and mounts one that fails its check).
//!
//! [`verify_and_mount`] is the reusable step (netboot calls it, through
//! [`Boot::mount_modloop_files`], with a downloaded file); the decisions are in
//! [`crate::plan::modloop`].
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use apk::trust::{Alg, Keyring};
use bootspec::modloop::{self as spec, SignatureError, Signed};
use sha2::{Digest, Sha256};

use super::{Boot, BootError, Prepared};
use crate::plan::modloop::{self as plan, Located, ModloopPolicy};
use crate::sys::{self, rootdir::RootDir, MountFlags, SysError};
use crate::timeline::human_bytes;

/// Where the squashfs is mounted in the initramfs before it moves into the new root.
const STAGING: &str = "/.modloop";
/// Read size while hashing (bounded memory whatever the file's size).
const HASH_CHUNK: usize = 1 << 20;

/// Why a modloop was not mounted.
#[derive(Debug, thiserror::Error)]
pub enum ModloopError {
    /// No modloop where one was looked for.
    #[error("{0}")]
    NotFound(String),
    /// `modloop=URL` and nothing downloaded it.
    #[error(
        "modloop={}: downloading a modloop needs networking, which this boot does not have",
        apk::http::url::display(.0)
    )]
    Url(String),
    /// `modloop=URL`: the modloop or its `.sig` could not be downloaded (the error names the URL).
    #[error("{0}")]
    Download(apk::http::HttpError),
    /// `modloop=URL` was signed for another kernel. A medium may carry modloops of several
    /// kernels (the matching one is chosen, a mismatch only warns); a download must match.
    #[error(
        "{}: signed for kernel {modloop}, the running kernel is {running}",
        apk::http::url::display(.url)
    )]
    OtherKernel {
        /// The URL.
        url: String,
        /// The kernel in its signed statement.
        modloop: String,
        /// The running kernel.
        running: String,
    },
    /// `modloop=URL` names no file.
    #[error("modloop={}: the URL names no file", apk::http::url::display(.0))]
    UrlName(String),
    /// No `.sig` beside it, and one is required.
    #[error("{}: no signature ({} missing)", .image.display(), .signature.display())]
    Unsigned {
        /// The modloop.
        image: PathBuf,
        /// The signature file looked for.
        signature: PathBuf,
    },
    /// The signature file does not parse.
    #[error("{}: {source}", .path.display())]
    Signature {
        /// The signature file.
        path: PathBuf,
        /// Why.
        source: SignatureError,
    },
    /// The signature is for another file name.
    #[error("{}: the signature is for {signed}, not this file", .image.display())]
    OtherFile {
        /// The modloop.
        image: PathBuf,
        /// The name in the signature.
        signed: String,
    },
    /// The key is not in `etc/apk/keys`.
    #[error("{}: signed by {key}, which is not a trusted key of the initramfs", .image.display())]
    UntrustedKey {
        /// The modloop.
        image: PathBuf,
        /// The key name in the signature.
        key: String,
    },
    /// The signature does not verify with the key.
    #[error("{}: the signature by {key} does not verify", .image.display())]
    BadSignature {
        /// The modloop.
        image: PathBuf,
        /// The key name.
        key: String,
    },
    /// The file's size is not the signed size (truncated or extended).
    #[error("{}: {actual} bytes, the signature says {signed}", .image.display())]
    Size {
        /// The modloop.
        image: PathBuf,
        /// Its size.
        actual: u64,
        /// The signed size.
        signed: u64,
    },
    /// The file's bytes are not the signed bytes.
    #[error("{}: the contents do not match the signed SHA-256 (modified or corrupted)", .image.display())]
    Hash {
        /// The modloop.
        image: PathBuf,
    },
    /// The file would take more than half of the free RAM once copied there.
    #[error("{}: {size} bytes, more than half of the free RAM ({free} bytes): not copied into RAM, not mounted", .image.display())]
    TooLarge {
        /// The modloop.
        image: PathBuf,
        /// Its size.
        size: u64,
        /// The free RAM.
        free: u64,
    },
    /// A file operation or a mount failed.
    #[error("{0}")]
    Sys(#[from] SysError),
}

/// A mounted modloop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    /// The file.
    pub image: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The key that verified it (`None`: mounted unverified, `modloop_verify=no` without keys).
    pub verified_by: Option<String>,
    /// The kernel version it was signed for (`None` when unsigned).
    pub kernel: Option<String>,
    /// The loop device.
    pub device: PathBuf,
    /// Links that could not be made (something was in the way), for the console.
    pub kept: Vec<String>,
}

impl Mounted {
    /// One line for the timeline and the console.
    pub fn summary(&self) -> String {
        let name = self
            .image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let how = match &self.verified_by {
            Some(k) => format!("verified by {k}"),
            None => "NOT verified (modloop_verify=no)".to_string(),
        };
        let kernel = self
            .kernel
            .as_deref()
            .map(|k| format!(", kernel {k}"))
            .unwrap_or_default();
        format!("{name} {}, {how}{kernel}", human_bytes(self.size))
    }
}

/// Verifies `image` against the signature at `signature` with `keys` (unless the policy lets an
/// unsigned one through), then mounts it read-only at `/.modloop` in the new root and links
/// `/lib/modules` (and `/lib/firmware` when it carries firmware) to it.
///
/// The file is opened once: the signature is checked first (cheap), then the exact signed number
/// of bytes is read through that descriptor in 1 MiB reads, hashed and copied into a sealed
/// memfd, and the loop device is configured from that copy: the bytes mounted are the bytes
/// verified, whatever the medium answers later, and the medium can be pulled out. The copy costs
/// the modloop's size in RAM; one larger than half of the free RAM is refused. Nothing is mounted
/// unless everything verified.
pub fn verify_and_mount(
    image: &Path,
    signature: &Path,
    keys: &Keyring,
    policy: &ModloopPolicy,
    root: &RootDir,
) -> Result<Mounted, ModloopError> {
    let io_err = |source: io::Error| {
        ModloopError::Sys(SysError::Io {
            path: image.to_path_buf(),
            source,
        })
    };
    let file = File::open(image).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(io_err(io::Error::other("not a regular file")));
    }
    let size = meta.len();
    let signed = read_signature(signature)?;
    match (&signed, policy.require_signature) {
        (Some(signed), _) => check_statement(image, size, signed, keys)?,
        (None, true) => {
            return Err(ModloopError::Unsigned {
                image: image.to_path_buf(),
                signature: signature.to_path_buf(),
            })
        }
        (None, false) => {}
    }
    if let Some(free) = sys::memfd::ram_unused().filter(|free| size > free / 2) {
        return Err(ModloopError::TooLarge {
            image: image.to_path_buf(),
            size,
            free,
        });
    }
    let ram = copy_to_ram(image, &file, size, signed.as_ref())?;
    drop(file);
    let (verified_by, kernel) = match signed {
        Some(s) => (Some(s.statement.key_name), Some(s.statement.kernel)),
        None => (None, None),
    };
    let loop_device = sys::loopdev::attach_read_only(&ram, size, image)?;
    let staging = Path::new(STAGING);
    sys::make_dirs(staging)?;
    let flags = MountFlags {
        read_only: true,
        nosuid: true,
        nodev: true,
        noexec: false,
    };
    sys::mount_fs(
        &loop_device.path.display().to_string(),
        staging,
        "squashfs",
        flags,
        None,
    )?;
    // The loop device now lives as long as the mount (auto-clear), and holds the memfd: our
    // descriptors can go. Closed before the mount, the device would be detached under it (the
    // kernel clears an auto-clear device when its last opener closes it).
    let device = loop_device.path.clone();
    drop(loop_device);
    drop(ram);
    let moved = root
        .create_dir_all(spec::MOUNT_POINT, 0o755)
        .and_then(|_| root.mount_point(spec::MOUNT_POINT))
        .and_then(|target| sys::move_into(staging, &target));
    if let Err(e) = moved {
        let _ = sys::unmount(staging);
        return Err(e.into());
    }
    let _ = std::fs::remove_dir(staging);
    let has_firmware = root.kind(&format!("{}/{}", spec::MOUNT_POINT, spec::FIRMWARE_DIR))
        == Some(sys::rootdir::FileKind::Dir);
    let mut kept = Vec::new();
    for (path, target) in plan::new_root_links(has_firmware) {
        let entries = match root.kind(path) {
            None if !root.exists_nofollow(path) => None,
            Some(sys::rootdir::FileKind::Dir) => Some(root.list(path).len()),
            _ => Some(1),
        };
        match plan::link_action(entries) {
            plan::LinkAction::Link => {
                root.create_dir_all("lib", 0o755)?;
                root.symlink(path, &target)?;
            }
            plan::LinkAction::ReplaceEmptyDir => {
                root.remove_empty_dir(path)?;
                root.symlink(path, &target)?;
            }
            plan::LinkAction::Keep => kept.push(format!(
                "/{path} is not empty in the new root: left as it is, not linked to {target}"
            )),
        }
    }
    Ok(Mounted {
        image: image.to_path_buf(),
        size,
        verified_by,
        kernel,
        device,
        kept,
    })
}

/// The signature file, parsed (`None` when absent).
fn read_signature(path: &Path) -> Result<Option<Signed>, ModloopError> {
    let Some(bytes) = sys::read_file(path, spec::MAX_SIGNATURE_BYTES)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    Signed::parse(&text)
        .map(Some)
        .map_err(|source| ModloopError::Signature {
            path: path.to_path_buf(),
            source,
        })
}

/// Name, key, signature and size: everything but the contents' hash.
fn check_statement(
    image: &Path,
    size: u64,
    signed: &Signed,
    keys: &Keyring,
) -> Result<(), ModloopError> {
    let st = &signed.statement;
    let name = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if st.file != name {
        return Err(ModloopError::OtherFile {
            image: image.to_path_buf(),
            signed: st.file.clone(),
        });
    }
    let untrusted = || ModloopError::UntrustedKey {
        image: image.to_path_buf(),
        key: st.key_name.clone(),
    };
    let key = keys.get(&st.key_name).ok_or_else(untrusted)?;
    let alg = [Alg::RsaSha256, Alg::RsaSha512, Alg::Ed25519]
        .into_iter()
        .find(|a| a.tag() == st.algorithm)
        .ok_or_else(untrusted)?;
    if !key.verify(alg, &st.message(), &signed.signature) {
        return Err(ModloopError::BadSignature {
            image: image.to_path_buf(),
            key: st.key_name.clone(),
        });
    }
    if size != st.size {
        return Err(ModloopError::Size {
            image: image.to_path_buf(),
            actual: size,
            signed: st.size,
        });
    }
    Ok(())
}

/// Copies exactly `size` bytes of `file` into a sealed memfd, hashing them on the way; with a
/// signature, the hash must be the signed one. The loop device is attached to that copy, never
/// to the medium (see `sys::memfd`).
fn copy_to_ram(
    image: &Path,
    file: &File,
    size: u64,
    signed: Option<&Signed>,
) -> Result<File, ModloopError> {
    let ram = sys::memfd::create("modloop")?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut offset = 0u64;
    while offset < size {
        let want = (size - offset).min(HASH_CHUNK as u64) as usize;
        let n = file
            .read_at(&mut buf[..want], offset)
            .map_err(|source| SysError::Io {
                path: image.to_path_buf(),
                source,
            })?;
        if n == 0 {
            return Err(ModloopError::Size {
                image: image.to_path_buf(),
                actual: offset,
                signed: size,
            });
        }
        hasher.update(&buf[..n]);
        sys::memfd::append(&ram, &buf[..n], image)?;
        offset += n as u64;
    }
    if signed.is_some_and(|s| hasher.finalize().as_slice() != s.statement.sha256) {
        return Err(ModloopError::Hash {
            image: image.to_path_buf(),
        });
    }
    sys::memfd::seal(&ram, image)?;
    Ok(ram)
}

/// Where `modloop=URL` is saved before it is verified and copied into its sealed memfd.
const DOWNLOAD_DIR: &str = "/modloop-download";

/// `modloop=URL`: the modloop and `URL.sig` downloaded through the apk core's HTTP client (3
/// tries; the modloop at most half of the free RAM, as a medium's, the `.sig` at most
/// [`bootspec::modloop::MAX_SIGNATURE_BYTES`]; a missing `.sig` is no signature) into the
/// initramfs under the URL's file name; [`Boot::mount_modloop_files`] then treats it as a
/// medium's file.
fn download(url: &str) -> Result<PathBuf, ModloopError> {
    let name = url
        .split(['?', '#'])
        .next()
        .and_then(|p| p.splitn(4, '/').nth(3))
        .and_then(|p| p.rsplit('/').next())
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .ok_or_else(|| ModloopError::UrlName(url.to_string()))?
        .to_string();
    log::info!(
        "Downloading the modloop from {}",
        apk::http::url::display(url)
    );
    let dir = Path::new(DOWNLOAD_DIR);
    let _ = std::fs::remove_dir_all(dir);
    sys::make_dirs(dir)?;
    let result = download_into(url, &dir.join(&name));
    if result.is_err() {
        // A partial download must not hold RAM for the rest of the boot (or the rescue shell).
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// Downloads `url` to `file` and its `.sig` (if the server has one) beside it.
fn download_into(url: &str, file: &Path) -> Result<PathBuf, ModloopError> {
    let client = apk::http::Client::new(super::network::http_options());
    let limit = sys::memfd::ram_unused().map(|f| f / 2).unwrap_or(1 << 30);
    let mut sink = File::create(file).map_err(|source| SysError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    client
        .get(
            url,
            &apk::http::Get::limited(limit),
            &mut sink,
            &mut |_, _| {},
        )
        .map_err(ModloopError::Download)?;
    drop(sink);
    let get = apk::http::Get::limited(bootspec::modloop::MAX_SIGNATURE_BYTES);
    match client.get_bytes(&crate::plan::signature_url(url), &get) {
        Ok(sig) => sys::write_file(&plan::signature_path(file), &sig)?,
        Err(e)
            if matches!(
                e.kind,
                apk::http::HttpErrorKind::Status {
                    code: 404 | 410,
                    ..
                }
            ) => {}
        Err(e) => return Err(ModloopError::Download(e)),
    }
    Ok(file.to_path_buf())
}

impl Boot {
    /// The modloop phase: find it on the boot media (or skip it), then
    /// [`Boot::mount_modloop_files`]. OpenRC's own `modloop` service leaves the new root's
    /// runlevels whatever happens: the init owns the modloop.
    pub(super) fn modloop(&mut self, p: &Prepared, root: &RootDir) -> Result<(), BootError> {
        self.disable_openrc_modloop(root)?;
        let media: Vec<(PathBuf, String)> = p
            .media
            .iter()
            .map(|m| (m.mount_point.clone(), m.name.clone()))
            .collect();
        let media = plan::home_first(&media, p.home.as_deref());
        let located = plan::locate(
            self.cfg.modloop.as_ref(),
            &media,
            &|d| super::list_dir(d),
            &|f| f.is_file(),
        );
        match located {
            Located::Skipped => {
                self.timeline.note("modloop=none");
                Ok(())
            }
            Located::Url(url) if self.network.is_some() => match download(&url) {
                Ok(file) => {
                    let signed_for = read_signature(&plan::signature_path(&file))
                        .ok()
                        .flatten()
                        .map(|s| s.statement.kernel);
                    let result = match (signed_for, sys::kernel_release()) {
                        (Some(modloop), Some(running)) if modloop != running => self
                            .modloop_outcome(Err(ModloopError::OtherKernel {
                                url,
                                modloop,
                                running,
                            })),
                        _ => self.mount_modloop_files(vec![file.clone()], root),
                    };
                    // The mounted bytes are the memfd's copy: the download can go.
                    let _ = std::fs::remove_file(&file);
                    let _ = std::fs::remove_file(plan::signature_path(&file));
                    result
                }
                Err(e) => self.modloop_outcome(Err(e)),
            },
            Located::Url(url) => self.modloop_outcome(Err(ModloopError::Url(url))),
            Located::NotFound(what) => {
                // Without `modloop=` a medium without modloop is normal, unless it is required.
                if self.cfg.modloop.is_none() && !self.modloop_policy().fatal {
                    log::info!("modloop: none found: only the initramfs's modules are available");
                    self.timeline.note("none found");
                    return Ok(());
                }
                self.modloop_outcome(Err(ModloopError::NotFound(what)))
            }
            Located::Files(files) => {
                let running = sys::kernel_release();
                let candidates: Vec<(PathBuf, Option<String>)> = files
                    .into_iter()
                    .map(|f| {
                        let kernel = read_signature(&plan::signature_path(&f))
                            .ok()
                            .flatten()
                            .map(|s| s.statement.kernel);
                        (f, kernel)
                    })
                    .collect();
                self.mount_modloop_files(plan::order(candidates, running.as_deref()), root)
            }
        }
    }

    /// Verifies and mounts modloop files (each one's signature is `FILE.sig` beside it) under the
    /// boot's policy, trying them in order and mounting the first that verifies; the refusals
    /// before it are warnings. When none verifies, the first refusal is the phase's outcome: the
    /// timeline and the console say what happened, and the boot goes on without a modloop unless
    /// `modloop_verify=required` (then it is the phase's error). Netboot calls this with the file
    /// it downloaded.
    pub fn mount_modloop_files(
        &mut self,
        candidates: Vec<PathBuf>,
        root: &RootDir,
    ) -> Result<(), BootError> {
        let policy = self.modloop_policy();
        let keys = Keyring::load(Path::new(&bootspec::initramfs::absolute(
            bootspec::initramfs::APK_KEYS,
        )));
        let mut first_refusal = None;
        for image in &candidates {
            match verify_and_mount(image, &plan::signature_path(image), &keys, &policy, root) {
                Ok(mounted) => {
                    if let Some(e) = &first_refusal {
                        log::warn!("modloop: {e}: another candidate is used");
                    }
                    return self.modloop_outcome(Ok(mounted));
                }
                Err(e) if first_refusal.is_none() => first_refusal = Some(e),
                Err(e) => log::warn!("modloop: {e}"),
            }
        }
        match first_refusal {
            Some(e) => self.modloop_outcome(Err(e)),
            None => Ok(()),
        }
    }

    fn modloop_policy(&self) -> ModloopPolicy {
        let keys = !super::list_dir(Path::new(&bootspec::initramfs::absolute(
            bootspec::initramfs::APK_KEYS,
        )))
        .is_empty();
        plan::modloop_policy(self.cfg.modloop_verify, keys)
    }

    fn modloop_outcome(&mut self, result: Result<Mounted, ModloopError>) -> Result<(), BootError> {
        let policy = self.modloop_policy();
        if let Some(w) = &policy.warning {
            log::warn!("{w}");
        }
        match result {
            Ok(m) => {
                log::info!("modloop: {} mounted on /{}", m.summary(), spec::MOUNT_POINT);
                if m.verified_by.is_none() {
                    log::warn!(
                        "modloop: {} is mounted without verification",
                        m.image.display()
                    );
                }
                let running = sys::kernel_release();
                match &m.kernel {
                    Some(k) => {
                        if let Some(w) = plan::kernel_mismatch(k, running.as_deref()) {
                            log::warn!("modloop: {w}");
                        }
                    }
                    None => {
                        if let Some(r) = &running {
                            let dir =
                                format!("/sysroot/{}/{}/{r}", spec::MOUNT_POINT, spec::MODULES_DIR);
                            if !Path::new(&dir).is_dir() {
                                log::warn!(
                                    "modloop: it holds no modules for the running kernel {r}"
                                );
                            }
                        }
                    }
                }
                for k in &m.kept {
                    log::warn!("modloop: {k}");
                }
                self.timeline.note(m.summary());
                Ok(())
            }
            Err(e) if policy.fatal => {
                self.timeline.note(format!("refused: {e}"));
                Err(BootError::Modloop(e))
            }
            Err(e) => {
                log::warn!("modloop: {e}; not mounted, booting without it (only the initramfs's modules are available)");
                self.timeline.note(format!("refused: {e}"));
                Ok(())
            }
        }
    }

    /// Removes OpenRC's `modloop` service from every runlevel of the new root (the defaults no
    /// longer add it; an overlay saved on Alpine may).
    fn disable_openrc_modloop(&mut self, root: &RootDir) -> Result<(), BootError> {
        let levels: Vec<(String, Vec<String>)> = root
            .list("etc/runlevels")
            .into_iter()
            .map(|l| {
                let services = root.list(&format!("etc/runlevels/{l}"));
                (l, services)
            })
            .collect();
        for link in plan::openrc_modloop_links(&levels) {
            root.remove_file(&link)?;
            log::info!("modloop: /{link} removed: the init mounts the verified modloop itself");
        }
        Ok(())
    }
}
