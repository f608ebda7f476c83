//! Building an overlay in memory, and checking a written copy of it (lbu/README.md, "Crash
//! safety"): pre-package hooks, the selection without lbu's own secrets, the archive and its
//! encryption. Nothing is written to the medium here; any failure aborts with the previous
//! overlay untouched.

use crate::config::Config;
use crate::password::Password;
use crate::secrets::{self, Excluded};
use crate::wrap::Wrap;
use crate::{hooks, Error, IoResultExt};
use overlays::CreateOptions;
use std::path::Path;

/// An overlay built in memory, ready to be written.
pub struct Built {
    /// Bytes as stored (encrypted when asked).
    pub data: Vec<u8>,
    /// The gzip tar inside.
    pub gz: Vec<u8>,
    /// Member names.
    pub members: Vec<String>,
    /// The passphrase that opens `data`, when we hold one.
    pub password: Option<Password>,
    /// Selected files left out because they are lbu's own secrets.
    pub excluded: Vec<Excluded>,
}

fn note_legacy_packages_list(root: &Path) {
    let old = root.join("etc/lbu/packages.list");
    if old.exists() && root.join("var/lib/apk/world").exists() && std::fs::remove_file(&old).is_ok()
    {
        eprintln!("Note: Removing /etc/lbu/packages.list.");
        eprintln!("      /var/lib/apk/world will be used.");
    }
}

/// The overlay of `cfg.root` as a commit would save it, without running hooks (what `status`
/// and `diff` compare with), plus the secrets left out.
pub fn snapshot(
    cfg: &Config,
    opts: &CreateOptions,
) -> Result<(overlays::Overlay, Vec<Excluded>), Error> {
    let mut sel = overlays::selection(&cfg.root)?;
    let excluded = secrets::exclude(cfg, &mut sel);
    let ov = overlays::create::write_overlay(&cfg.root, &sel, opts)?;
    Ok((ov, excluded))
}

/// Build the overlay of `cfg.root`: hooks, selection, archive, encryption.
pub fn build(
    cfg: &Config,
    wrap: &Wrap,
    cli_password: Option<&str>,
    verbose: bool,
) -> Result<Built, Error> {
    hooks::run(&cfg.root, hooks::PRE)?;
    note_legacy_packages_list(&cfg.root);
    let (ov, excluded) = snapshot(cfg, &CreateOptions::default())?;
    for e in &excluded {
        eprintln!("Note: {e}");
    }
    if verbose {
        eprintln!("Archiving the following files:");
        for m in &ov.members {
            eprintln!("{m}");
        }
    }
    let password = wrap.password(cfg, cli_password)?;
    let data = wrap.seal(cfg, &ov.bytes, password.as_deref().map(String::as_str))?;
    Ok(Built {
        data,
        gz: ov.bytes,
        members: ov.members,
        password,
        excluded,
    })
}

/// Read a written copy back and check it is the overlay we meant to write: same bytes, opens
/// with the secret we hold, and lists exactly the expected members within the bounds the boot
/// applies (so lbu never writes an overlay the init would refuse as too large).
pub fn verify_written(path: &Path, built: &Built, wrap: &Wrap) -> Result<(), Error> {
    let bad = |reason: String| Error::Verify {
        path: path.to_path_buf(),
        reason,
    };
    let back = std::fs::read(path).at(path)?;
    if back != built.data {
        return Err(bad("content read back differs from what was written".into()));
    }
    let gz = match (wrap, &built.password) {
        (Wrap::Plain, _) => back,
        (_, Some(p)) => overlays::decrypt(&back, &wrap.kind(), &overlays::Secret::Passphrase(p))
            .map_err(|e| bad(e.to_string()))?,
        // Encrypted to recipients: we cannot decrypt; the plaintext is checked below.
        (_, None) => built.gz.clone(),
    };
    if gz != built.gz {
        return Err(bad("decrypted content differs".into()));
    }
    if back_len_too_large(built) {
        return Err(bad(overlays::Error::OverlayTooLarge {
            size: built.data.len() as u64,
        }
        .to_string()));
    }
    let (members, _) = overlays::read_members(&gz).map_err(|e| bad(e.to_string()))?;
    let got: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    let want: Vec<&str> = built
        .members
        .iter()
        .map(|m| m.trim_end_matches('/'))
        .collect();
    if got != want {
        return Err(bad(format!(
            "archive lists {} members, expected {}",
            got.len(),
            want.len()
        )));
    }
    Ok(())
}

fn back_len_too_large(built: &Built) -> bool {
    built.data.len() as u64 > overlays::MAX_OVERLAY_BYTES
}
