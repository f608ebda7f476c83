//! `commit` and `package` (lbu.md §5, §6), with the project's crash-safe sequence (§10.1 #1-4):
//!
//! 1. refuse early: unsupported cipher, no medium, other apkovls without `-d`;
//! 2. build in memory: pre-package hooks, selection, archive, encryption, signature; any failure
//!    (empty selection, a hook, an unreadable file, the cipher) aborts with nothing written;
//! 3. write a temporary file on the medium (a name the boot never considers) and fsync it;
//! 4. read it back and verify it: same bytes, decrypts (when we hold the secret), decompresses
//!    and lists exactly the expected members;
//! 5. back up the current overlay as a hard link or copy (never a rename), fsynced;
//! 6. rename the temporary file over the overlay, fsync the directory; with `SIGNING_KEY`, a
//!    signature file valid for both the old and the new overlay is put in place first, and the
//!    new signature alone afterwards, so a signed medium verifies at every instant;
//! 7. only now: `-d` removals, backup rotation, post-package hooks.
//!
//! At every instant the medium holds one complete overlay under the boot name. The environment
//! variable `LBU_FAULT` (`after-temp-write`, `after-sig`, `before-rename`, `after-rename`) aborts the process at
//! that point; it exists for the fault-injection tests.

use crate::backup::{self, fsync_dir, install, write_temp};
use crate::cli::{CommitArgs, PackageArgs};
use crate::config::Config;
use crate::wrap::Wrap;
use crate::{hooks, hostname, media, Error, IoResultExt};
use overlays::CreateOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An overlay built in memory, ready to be written.
pub struct Built {
    /// Bytes as stored (encrypted when asked).
    pub data: Vec<u8>,
    /// The gzip tar inside.
    pub gz: Vec<u8>,
    /// Member names.
    pub members: Vec<String>,
    /// The secret that opens `data` (passphrase), when we hold one.
    pub password: Option<String>,
    /// `.sig` text when `SIGNING_KEY` is set.
    pub sig: Option<String>,
}

fn fault(point: &str) {
    if std::env::var("LBU_FAULT").is_ok_and(|v| v == point) {
        std::process::abort();
    }
}

fn note_legacy_packages_list(root: &Path) {
    let old = root.join("etc/lbu/packages.list");
    if old.exists() && root.join("var/lib/apk/world").exists() && std::fs::remove_file(&old).is_ok()
    {
        eprintln!("Note: Removing /etc/lbu/packages.list.");
        eprintln!("      /var/lib/apk/world will be used.");
    }
}

/// Build the overlay of `cfg.root`: hooks, selection, archive, encryption, signature.
pub fn build(
    cfg: &Config,
    wrap: &Wrap,
    cli_password: Option<&str>,
    verbose: bool,
) -> Result<Built, Error> {
    hooks::run(&cfg.root, hooks::PRE)?;
    note_legacy_packages_list(&cfg.root);
    let ov = overlays::create(&cfg.root, &CreateOptions::default())?;
    if verbose {
        eprintln!("Archiving the following files:");
        for m in &ov.members {
            eprintln!("{m}");
        }
    }
    let password = wrap.password(cfg, cli_password)?;
    let data = wrap.seal(cfg, &ov.bytes, password.as_deref())?;
    let sig = match &cfg.signing_key {
        Some(k) => {
            let key = apk::trust::PrivateKey::load(k)?;
            let name = format!(
                "{}.pub",
                k.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
            Some(overlays::sign(&data, &key, &name)?)
        }
        None => None,
    };
    Ok(Built {
        data,
        gz: ov.bytes,
        members: ov.members,
        password,
        sig,
    })
}

/// Read the written file back and check it is the overlay we meant to write.
fn verify(path: &Path, built: &Built, wrap: &Wrap) -> Result<(), Error> {
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
        (_, Some(p)) => {
            let kind = match wrap {
                Wrap::Age => overlays::OverlayKind::Age,
                Wrap::Legacy(c) => overlays::OverlayKind::Legacy(*c),
                Wrap::Plain => overlays::OverlayKind::Plain,
            };
            overlays::decrypt(&back, &kind, &overlays::Secret::Passphrase(p))
                .map_err(|e| bad(e.to_string()))?
        }
        // Encrypted to recipients: we cannot decrypt; the plaintext was checked below.
        (_, None) => built.gz.clone(),
    };
    if gz != built.gz {
        return Err(bad("decrypted content differs".into()));
    }
    let (members, _) = overlays::read_members(&gz, 1 << 32).map_err(|e| bad(e.to_string()))?;
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

/// Overlay files (`*.apkovl.tar.gz*` that are overlays, not signatures) in `dir`.
fn overlays_in(dir: &Path) -> Result<Vec<String>, Error> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .at(dir)?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| overlays::kind_of(n).is_some())
        .collect();
    v.sort();
    Ok(v)
}

/// `commit`.
pub fn commit(cfg: &Config, a: &CommitArgs, out: &mut dyn Write) -> Result<(), Error> {
    let verbose = a.verbose || a.dry_run;
    let wrap = Wrap::resolve(cfg, a.encrypt)?;
    let m = a.media.clone().or_else(|| cfg.media.clone());
    if cfg.backupdir.is_none() && m.is_none() {
        return Err(Error::NoMedia);
    }
    let target = media::open(cfg.backupdir.as_deref(), m.as_deref(), !a.dry_run)?;
    let dir = target.dir.clone();
    let host = hostname();
    let outname = format!("{host}.apkovl.tar.gz{}", wrap.suffix());
    let others: Vec<String> = overlays_in(&dir)?
        .into_iter()
        .filter(|n| n != &outname)
        .collect();
    if !others.is_empty() && !a.delete_old {
        return Err(Error::Conflict(others));
    }
    let built = build(cfg, &wrap, a.password.as_deref(), verbose)
        .map_err(|e| Error::Aborted(Box::new(e)))?;
    if a.dry_run {
        if dir.join(&outname).exists() {
            eprintln!("Would back up {}", dir.join(&outname).display());
        }
        for o in &others {
            eprintln!("Would remove {}", dir.join(o).display());
        }
        eprintln!(
            "Dry run: would save {} ({} bytes); nothing was written",
            dir.join(&outname).display(),
            built.data.len()
        );
        return Ok(());
    }
    write_commit(&dir, &host, &outname, &wrap, &built, verbose)
        .map_err(|e| Error::Aborted(Box::new(e)))?;
    // The new overlay is durable: from here on, failures no longer endanger it.
    if a.delete_old && !others.is_empty() {
        if verbose {
            eprintln!("Removing old apk overlay files:");
        }
        for o in &others {
            let p = dir.join(o);
            std::fs::remove_file(&p).at(&p)?;
            let _ = std::fs::remove_file(dir.join(format!("{o}.sig")));
            writeln!(out, "{o}").at("stdout")?;
        }
        if verbose {
            eprintln!();
        }
        fsync_dir(&dir)?;
    }
    for r in backup::rotate(&dir, &host, cfg.backup_limit)? {
        if verbose {
            eprintln!("Removed old backup {r}");
        }
    }
    let packages_list = dir.join("packages.list");
    if packages_list.exists() && std::fs::remove_file(&packages_list).is_ok() {
        writeln!(
            out,
            "Note: Removing packages.list from {}.\n      /var/lib/apk/world will be used.",
            dir.display()
        )
        .at("stdout")?;
    }
    if verbose {
        eprintln!("Successfully saved apk overlay files");
    }
    let _ = hooks::run(&cfg.root, hooks::POST);
    drop(target);
    Ok(())
}

fn write_commit(
    dir: &Path,
    host: &str,
    outname: &str,
    wrap: &Wrap,
    built: &Built,
    verbose: bool,
) -> Result<(), Error> {
    let (tmp, id) = write_temp(dir, &built.data)?;
    fault("after-temp-write");
    verify(&tmp, built, wrap)?;
    if let Some(b) = backup::make_backup(dir, host, outname, &wrap.suffix())? {
        if verbose {
            eprintln!("Creating backup {}", dir.join(b).display());
        }
    }
    let sig_name = format!("{outname}.sig");
    let sig_path = dir.join(&sig_name);
    let old_sig = match std::fs::read_to_string(&sig_path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Error::Io {
                path: sig_path,
                source: e,
            })
        }
    };
    // With a signature on the medium, the old overlay must keep verifying until the rename and
    // the new one from the rename on: first a signature file valid for both.
    if let (Some(new), Some(old)) = (&built.sig, &old_sig) {
        let (st, sid) = write_temp(dir, format!("{new}{old}").as_bytes())?;
        install(&st, sid, dir, &sig_name)?;
        fault("after-sig");
    }
    fault("before-rename");
    install(&tmp, id, dir, outname)?;
    fault("after-rename");
    match (&built.sig, &old_sig) {
        // Then the new signature alone (or the first one, when the old overlay was unsigned:
        // unsigned until now is what it was before).
        (Some(new), _) => {
            let (st, sid) = write_temp(dir, new.as_bytes())?;
            install(&st, sid, dir, &sig_name)?;
        }
        // Signing turned off: the old signature would now be a bad one.
        (None, Some(_)) => {
            std::fs::remove_file(&sig_path).at(&sig_path)?;
            fsync_dir(dir)?;
        }
        (None, None) => {}
    }
    Ok(())
}

/// `package [DIR|FILE|-]`.
pub fn package(cfg: &Config, a: &PackageArgs, out: &mut dyn Write) -> Result<(), Error> {
    let to_stdout = a.target.as_deref().is_some_and(|t| t == "-");
    // `package -` is never encrypted (upstream behaviour).
    let wrap = if to_stdout {
        Wrap::Plain
    } else {
        Wrap::resolve(cfg, a.encrypt)?
    };
    let host = hostname();
    let default_name = format!("{host}.apkovl.tar.gz{}", wrap.suffix());
    let path: Option<PathBuf> = match &a.target {
        _ if to_stdout => None,
        None => Some(PathBuf::from(&default_name)),
        Some(t) if Path::new(t).is_dir() => Some(Path::new(t).join(&default_name)),
        // A file name is used verbatim, without adding a suffix (upstream behaviour).
        Some(t) => Some(PathBuf::from(t)),
    };
    let built = build(cfg, &wrap, a.password.as_deref(), a.verbose)
        .map_err(|e| Error::Aborted(Box::new(e)))?;
    let Some(path) = path else {
        out.write_all(&built.gz)
            .and_then(|_| out.flush())
            .at("stdout")?;
        let _ = hooks::run(&cfg.root, hooks::POST);
        return Ok(());
    };
    let write = || -> Result<(), Error> {
        use std::os::unix::fs::FileTypeExt;
        if std::fs::metadata(&path)
            .is_ok_and(|m| m.file_type().is_block_device() || m.file_type().is_char_device())
        {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .at(&path)?;
            return f
                .write_all(&built.data)
                .and_then(|_| f.sync_all())
                .at(&path);
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::Io {
                path: path.clone(),
                source: std::io::ErrorKind::InvalidInput.into(),
            })?;
        let (tmp, id) = write_temp(&dir, &built.data)?;
        verify(&tmp, &built, &wrap)?;
        install(&tmp, id, &dir, &name)?;
        if let Some(s) = &built.sig {
            let (st, sid) = write_temp(&dir, s.as_bytes())?;
            install(&st, sid, &dir, &format!("{name}.sig"))?;
        }
        Ok(())
    };
    write().map_err(|e| Error::Aborted(Box::new(e)))?;
    if a.verbose {
        eprintln!("Created {}", path.display());
    }
    let _ = hooks::run(&cfg.root, hooks::POST);
    Ok(())
}
