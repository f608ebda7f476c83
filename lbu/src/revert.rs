//! `revert REVISION [MEDIA]` (lbu/README.md, "Backups"): make a backup's content the current
//! overlay again, as a new commit.
//!
//! The backup is checked before it is used: it must open (decrypted with the password or
//! `AGE_IDENTITY` when encrypted), decompress within the boot's bounds and list only safe member
//! names. With `SIGNING_KEY`, its `.sig` must verify with that key: lbu never signs bytes it did
//! not sign before (a file planted on the medium does not get a fresh signature by being
//! "reverted" to). The content is then published through the same crash-safe sequence as a
//! commit ([`crate::publish`]) with a new statement, one generation above everything on the
//! medium, rather than resurrecting the backup's old statement (which the boot would refuse as
//! a replay). Exactly one current overlay remains: this host's overlays under other ciphers are
//! moved away; another host's overlay is a conflict, as for `commit`. The backup stays in the
//! history; unlike a commit, nothing is rotated (as upstream).

use crate::backup::{self, is_backup};
use crate::commit::{now, overlays_in};
use crate::config::Config;
use crate::password::Password;
use crate::publish::{publish, Publication, Signer};
use crate::{advice, hostname, media, wrap, Error, IoResultExt};
use overlays::Verification;
use std::path::Path;

/// `revert [-p PASSWORD] [-v] REVISION [MEDIA]`.
#[derive(Default)]
pub struct RevertOptions {
    /// Verbose (`-v`).
    pub verbose: bool,
    /// Backup file name on the medium.
    pub revision: String,
    /// Medium name under `/media` (default `LBU_MEDIA`).
    pub media: Option<String>,
    /// Password for an encrypted backup (`-p`).
    pub password: Option<Password>,
}

/// `revert`.
pub fn revert(cfg: &Config, o: &RevertOptions) -> Result<(), Error> {
    let rev = &o.revision;
    if rev.is_empty() || rev.contains('/') || rev.starts_with('.') || !is_backup(rev) {
        return Err(Error::BadRevision(rev.clone()));
    }
    let m = o.media.clone().or_else(|| cfg.media.clone());
    if cfg.backupdir.is_none() && m.is_none() {
        return Err(media::no_medium());
    }
    let target = media::open(cfg.backupdir.as_deref(), m.as_deref(), true)?;
    let dir = &target.dir;
    let src = dir.join(rev);
    if !src.is_file() {
        return Err(Error::NotFound(src));
    }
    let suffix = &rev[rev
        .find(".tar.gz")
        .map_or(rev.len(), |p| p + ".tar.gz".len())..];
    let host = hostname();
    let current = format!("{host}.apkovl.tar.gz{suffix}");
    let mut others = Vec::new();
    let mut foreign = Vec::new();
    for n in overlays_in(dir)? {
        if n == current {
            continue;
        }
        if overlays::host_of(&n) == Some(host.as_str()) {
            others.push(n);
        } else {
            foreign.push(n);
        }
    }
    if !foreign.is_empty() {
        return Err(Error::Conflict(foreign));
    }
    let data = overlays::read_file(&src)?;
    check_content(
        cfg,
        &src,
        &current,
        &data,
        o.password.as_deref().map(String::as_str),
    )?;
    let signer = cfg.signing_key.as_deref().map(Signer::load).transpose()?;
    check_signature(&src, &data, signer.as_ref())?;
    for w in advice::warnings(cfg, &wrap::Wrap::of_name(&current)?, Some(dir)) {
        eprintln!("WARNING: {w}");
    }
    if o.verbose {
        eprintln!("Reverting to {rev}");
    }
    let check = |p: &Path| {
        let back = std::fs::read(p).at(p)?;
        if back != data {
            return Err(Error::Verify {
                path: p.to_path_buf(),
                reason: "content read back differs from what was written".into(),
            });
        }
        Ok(())
    };
    let done = publish(&Publication {
        dir,
        host: &host,
        name: &current,
        data: &data,
        check: &check,
        signer: signer.as_ref(),
        time: now(),
        others: &others,
        backup: true,
    })
    .map_err(|e| Error::Aborted(Box::new(e)))?;
    if o.verbose {
        if let Some(b) = &done.backup {
            eprintln!("Creating backup {}", dir.join(b).display());
        }
        for r in &done.removed {
            eprintln!("Removed {}", dir.join(r).display());
        }
        if let Some(g) = done.generation {
            eprintln!("Signed as generation {g} of {host}");
        }
    }
    drop(target);
    Ok(())
}

/// The backup opens, decompresses within bounds and lists only safe names.
fn check_content(
    cfg: &Config,
    src: &Path,
    current: &str,
    data: &[u8],
    cli: Option<&str>,
) -> Result<(), Error> {
    let bad = |reason: String| Error::Verify {
        path: src.to_path_buf(),
        reason,
    };
    let mut password = None;
    // Opened by the name it will have: the suffix says how it is wrapped.
    let gz =
        wrap::open_bytes(cfg, Path::new(current), data, &mut password, cli).map_err(
            |e| match e {
                Error::Unpack { source, .. } => bad(source.to_string()),
                other => other,
            },
        )?;
    overlays::read_members(&gz).map_err(|e| bad(e.to_string()))?;
    Ok(())
}

/// With a signing key, the backup must carry a valid signature by that key.
fn check_signature(src: &Path, data: &[u8], signer: Option<&Signer>) -> Result<(), Error> {
    let sig_path = backup::sig_of(src);
    let sig = overlays::read_signature(&sig_path)?;
    let Some(signer) = signer else {
        if sig.is_some() {
            return Err(Error::Revert(format!(
                "{}: the backup is signed but SIGNING_KEY is not set, so the reverted overlay could not be signed (set SIGNING_KEY, or remove {} to revert to it unsigned)",
                src.display(),
                sig_path.display()
            )));
        }
        return Ok(());
    };
    match overlays::verify_with(data, sig.as_deref(), &signer.public(), "SIGNING_KEY") {
        Verification::Verified { .. } => Ok(()),
        Verification::Unsigned => Err(Error::Revert(format!(
            "{}: not signed by SIGNING_KEY; refusing to sign content lbu did not sign before",
            src.display()
        ))),
        Verification::Bad { reason } => Err(Error::Revert(format!(
            "{}: signature check failed: {reason}",
            src.display()
        ))),
    }
}
