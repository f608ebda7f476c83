//! `commit` and `package` (lbu/README.md, "Commands"): refuse early (unsupported cipher, no
//! medium, other overlays without `-d`), build in memory ([`crate::build`]), then publish
//! crash-safely ([`crate::publish`]), and only then rotate backups and run post-package hooks.

use crate::backup;
use crate::build::{build, verify_written, Built};
use crate::config::Config;
use crate::password::Password;
use crate::publish::{publish, Publication, Signer};
use crate::wrap::Wrap;
use crate::{advice, durable, hooks, hostname, media, Error, IoResultExt};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `commit [-d] [-e] [-n] [-p PASSWORD] [-v] [MEDIA]`.
#[derive(Default)]
pub struct CommitOptions {
    /// Remove the other apkovl files on the medium (`-d`).
    pub delete_old: bool,
    /// Encrypt (`-e`: `ENCRYPTION`, else `DEFAULT_CIPHER`).
    pub encrypt: bool,
    /// Change nothing (`-n`, implies verbose).
    pub dry_run: bool,
    /// Password from the command line (`-p`).
    pub password: Option<Password>,
    /// Verbose (`-v`).
    pub verbose: bool,
    /// Medium name under `/media` (default `LBU_MEDIA`).
    pub media: Option<String>,
}

/// `package [-e] [-p PASSWORD] [-v] [DIR|FILE|-]`.
#[derive(Default)]
pub struct PackageOptions {
    /// Encrypt (`-e`).
    pub encrypt: bool,
    /// Password from the command line (`-p`).
    pub password: Option<Password>,
    /// Verbose (`-v`).
    pub verbose: bool,
    /// Output directory, file, or `-` for stdout.
    pub target: Option<OsString>,
}

/// Unix time now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Overlay files (`*.apkovl.tar.gz*` that are overlays, not signatures) in `dir`.
pub fn overlays_in(dir: &Path) -> Result<Vec<String>, Error> {
    Ok(backup::names_in(dir)?
        .into_iter()
        .filter(|n| overlays::kind_of(n).is_some())
        .collect())
}

/// The signing key, loaded before anything else happens (a missing key aborts the commit).
fn signer(cfg: &Config) -> Result<Option<Signer>, Error> {
    cfg.signing_key.as_deref().map(Signer::load).transpose()
}

fn warn(cfg: &Config, wrap: &Wrap, medium: Option<&Path>) {
    for w in advice::warnings(cfg, wrap, medium) {
        eprintln!("WARNING: {w}");
    }
}

/// `commit`.
pub fn commit(cfg: &Config, o: &CommitOptions, out: &mut dyn Write) -> Result<(), Error> {
    let verbose = o.verbose || o.dry_run;
    let wrap = Wrap::resolve(cfg, o.encrypt)?;
    let m = o.media.clone().or_else(|| cfg.media.clone());
    if cfg.backupdir.is_none() && m.is_none() {
        return Err(media::no_medium());
    }
    let target = media::open(cfg.backupdir.as_deref(), m.as_deref(), !o.dry_run)?;
    let dir = target.dir.clone();
    let host = hostname();
    let outname = format!("{host}.apkovl.tar.gz{}", wrap.suffix());
    let others: Vec<String> = overlays_in(&dir)?
        .into_iter()
        .filter(|n| n != &outname)
        .collect();
    if !others.is_empty() && !o.delete_old {
        return Err(Error::Conflict(others));
    }
    warn(cfg, &wrap, Some(&dir));
    let aborted = |e| Error::Aborted(Box::new(e));
    let signer = signer(cfg).map_err(aborted)?;
    let built = build(
        cfg,
        &wrap,
        o.password.as_deref().map(String::as_str),
        verbose,
    )
    .map_err(aborted)?;
    if o.dry_run {
        if dir.join(&outname).exists() {
            eprintln!("Would back up {}", dir.join(&outname).display());
        }
        for other in &others {
            eprintln!("Would remove {}", dir.join(other).display());
        }
        eprintln!(
            "Dry run: would save {} ({} bytes); nothing was written",
            dir.join(&outname).display(),
            built.data.len()
        );
        return Ok(());
    }
    let check = |p: &Path| verify_written(p, &built, &wrap);
    let done = publish(&Publication {
        dir: &dir,
        host: &host,
        name: &outname,
        data: &built.data,
        check: &check,
        signer: signer.as_ref(),
        time: now(),
        others: &others,
        backup: true,
    })
    .map_err(aborted)?;
    // The new overlay is durable: from here on, failures no longer endanger it.
    if let Some(b) = &done.backup {
        if verbose {
            eprintln!("Creating backup {}", dir.join(b).display());
        }
    }
    if !done.removed.is_empty() {
        if verbose {
            eprintln!("Removing old apk overlay files:");
        }
        for r in &done.removed {
            writeln!(out, "{r}").at("stdout")?;
        }
        if verbose {
            eprintln!();
        }
    }
    for r in backup::rotate(&dir, &host, cfg.backup_limit)? {
        if verbose {
            eprintln!("Removed old backup {r}");
        }
    }
    if durable::remove(&dir, "packages.list")? {
        writeln!(
            out,
            "Note: Removing packages.list from {}.\n      /var/lib/apk/world will be used.",
            dir.display()
        )
        .at("stdout")?;
    }
    if verbose {
        if let Some(g) = done.generation {
            eprintln!("Signed as generation {g} of {host}");
        }
        eprintln!("Successfully saved apk overlay files");
    }
    let _ = hooks::run(&cfg.root, hooks::POST);
    drop(target);
    Ok(())
}

/// `package [DIR|FILE|-]`.
pub fn package(cfg: &Config, o: &PackageOptions, out: &mut dyn Write) -> Result<(), Error> {
    let to_stdout = o.target.as_deref().is_some_and(|t| t == "-");
    // `package -` is never encrypted (upstream behaviour) nor signed (a signature has no place
    // on stdout).
    let wrap = if to_stdout {
        Wrap::Plain
    } else {
        Wrap::resolve(cfg, o.encrypt)?
    };
    let default_name = format!("{}.apkovl.tar.gz{}", hostname(), wrap.suffix());
    let path: Option<PathBuf> = match &o.target {
        _ if to_stdout => None,
        None => Some(PathBuf::from(&default_name)),
        Some(t) if Path::new(t).is_dir() => Some(Path::new(t).join(&default_name)),
        // A file name is used verbatim, without adding a suffix (upstream behaviour).
        Some(t) => Some(PathBuf::from(t)),
    };
    let aborted = |e| Error::Aborted(Box::new(e));
    let Some(path) = path else {
        let built = build(cfg, &wrap, None, o.verbose).map_err(aborted)?;
        out.write_all(&built.gz)
            .and_then(|_| out.flush())
            .at("stdout")?;
        let _ = hooks::run(&cfg.root, hooks::POST);
        return Ok(());
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    warn(cfg, &wrap, None);
    let signer = signer(cfg).map_err(aborted)?;
    let built = build(
        cfg,
        &wrap,
        o.password.as_deref().map(String::as_str),
        o.verbose,
    )
    .map_err(aborted)?;
    write_package(cfg, &path, &dir, &built, &wrap, signer.as_ref()).map_err(aborted)?;
    if o.verbose {
        eprintln!("Created {}", path.display());
    }
    let _ = hooks::run(&cfg.root, hooks::POST);
    Ok(())
}

fn write_package(
    cfg: &Config,
    path: &Path,
    dir: &Path,
    built: &Built,
    wrap: &Wrap,
    signer: Option<&Signer>,
) -> Result<(), Error> {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::metadata(path)
        .is_ok_and(|m| m.file_type().is_block_device() || m.file_type().is_char_device())
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .at(path)?;
        return f.write_all(&built.data).and_then(|_| f.sync_all()).at(path);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Io {
            path: path.to_path_buf(),
            source: std::io::ErrorKind::InvalidInput.into(),
        })?;
    // The statement names the host the file is for: the stem of an overlay name (an admin
    // packaging `fw1.apkovl.tar.gz` on a workstation), else this machine.
    let local = hostname();
    let host = overlays::host_of(&name).unwrap_or(&local);
    let check = |p: &Path| verify_written(p, built, wrap);
    publish(&Publication {
        dir,
        host,
        name: &name,
        data: &built.data,
        check: &check,
        signer,
        time: cfg.source_date_epoch.unwrap_or_else(now),
        others: &[],
        backup: false,
    })?;
    Ok(())
}
