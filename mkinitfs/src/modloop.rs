//! The modloop: a squashfs of one kernel's modules and firmware, mounted by the init at
//! `/.modloop` of the booted system (`mkinitfs --modloop OUT`, README "Modloop").
//!
//! Layout inside (`bootspec::modloop`, Alpine's, as its `update-kernel` makes it and its OpenRC
//! `modloop` service reads it): `modules/<kver>/...` from `BASEDIR/lib/modules/<kver>` and
//! `modules/firmware/...` from `BASEDIR/lib/firmware`. Paths matching an exclude glob
//! (`apk::fnmatch` without `FNM_PATHNAME`, so `kernel/drivers/gpu/*` takes the whole subtree;
//! module paths are relative to `modules/<kver>/`, firmware paths start with `firmware/`) are
//! left out; then `modules.dep`, `modules.alias`, `modules.softdep` and `modules.order` are
//! regenerated for the modules that remain (through the `kmod` crate, as for the initramfs) and
//! the stale `.bin` indexes dropped; without excludes every `modules.*` file is copied as it is.
//!
//! The squashfs itself is written by `mksquashfs` (squashfs-tools, installed by `make deps`):
//! the in-process writer considered, `backhand`, was not adopted in this round (its images were
//! not yet checked against the kernel's squashfs and `unsquashfs`, which `mksquashfs`'s are by
//! construction). Reproducible: the tree is staged in sorted order, and `mksquashfs` gets fixed
//! owners (`-all-root`), one time for everything (`-all-time`, `-mkfs-time`: `SOURCE_DATE_EPOCH`
//! or 0), no extended attributes. The output is written atomically (temporary file beside it,
//! fsync, rename, fsync of the directory).
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Error;
use crate::modules::ModuleDb;

/// squashfs compression of the modloop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModloopCompression {
    /// xz (Alpine's choice: the smallest image; slow to build).
    Xz,
    /// zstd (several times faster to build and to read, a larger image).
    Zstd,
}

impl ModloopCompression {
    /// Parses `xz` or `zstd`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "xz" => Some(Self::Xz),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The `mksquashfs -comp` name, which is also the kernel's name for the decompressor
    /// (`CONFIG_SQUASHFS_XZ`, `CONFIG_SQUASHFS_ZSTD`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Xz => "xz",
            Self::Zstd => "zstd",
        }
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct ModloopOptions {
    /// The base directory holding `lib/modules/<kver>` and `lib/firmware`.
    pub basedir: PathBuf,
    /// The kernel version.
    pub kernel_version: String,
    /// Globs of paths to leave out (see the module documentation).
    pub excludes: Vec<String>,
    /// Compression.
    pub compression: ModloopCompression,
    /// Time of every file and of the image (`SOURCE_DATE_EPOCH`, default 0).
    pub mtime: u64,
}

/// What was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modloop {
    /// The image.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Module files in it.
    pub modules: usize,
    /// Firmware files in it.
    pub firmware: usize,
    /// Files and directories left out by the excludes.
    pub excluded: usize,
    /// Modules kept that depend on an excluded one (their load will fail).
    pub broken_dependencies: Vec<String>,
}

/// Builds the modloop of `opts` into `output`.
pub fn build_modloop(opts: &ModloopOptions, output: &Path) -> Result<Modloop, Error> {
    let kver = &opts.kernel_version;
    let db = ModuleDb::load(&opts.basedir, kver)?;
    let (dir, name) = split_output(output)?;
    let staging = dir.join(format!(".{name}.staging{}", std::process::id()));
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let _ = fs::remove_dir_all(&staging);
        let mut stats = Stats::default();
        let modules_out = staging.join("modules").join(kver);
        make_dir(&staging)?;
        make_dir(&staging.join("modules"))?;
        make_dir(&modules_out)?;
        copy_tree(
            &db.dir,
            &modules_out,
            "",
            &opts.excludes,
            &|rel| is_metadata(rel),
            &mut stats,
        )?;
        let kept = kept_modules(&db, &stats.module_paths);
        let broken = if stats.excluded_modules {
            write_metadata(&db, &modules_out, &kept)?
        } else {
            copy_metadata(&db.dir, &modules_out)?;
            Vec::new()
        };
        let firmware = opts.basedir.join(bootspec::initramfs::FIRMWARE_DIR);
        let mut fw_stats = Stats::default();
        if firmware.is_dir() {
            let fw_out = staging.join(bootspec::modloop::FIRMWARE_DIR);
            make_dir(&fw_out)?;
            copy_tree(
                &firmware,
                &fw_out,
                "firmware/",
                &opts.excludes,
                &|_| false,
                &mut fw_stats,
            )?;
        }
        mksquashfs(&staging, &tmp, opts)?;
        let file = fs::File::open(&tmp).map_err(io_at(&tmp))?;
        file.sync_all().map_err(io_at(&tmp))?;
        let size = file.metadata().map_err(io_at(&tmp))?.len();
        drop(file);
        fs::rename(&tmp, output).map_err(io_at(output))?;
        fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_at(&dir))?;
        Ok(Modloop {
            path: output.to_path_buf(),
            size,
            modules: stats.module_paths.len(),
            firmware: fw_stats.files,
            excluded: stats.excluded + fw_stats.excluded,
            broken_dependencies: broken,
        })
    })();
    let _ = fs::remove_dir_all(&staging);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[derive(Default)]
struct Stats {
    files: usize,
    excluded: usize,
    excluded_modules: bool,
    /// Module paths kept, relative to `modules/<kver>/` (as in `modules.dep`).
    module_paths: BTreeSet<String>,
}

fn is_module(rel: &str) -> bool {
    [".ko", ".ko.gz", ".ko.xz", ".ko.zst"]
        .iter()
        .any(|e| rel.ends_with(e))
}

/// Top-level `modules.*` files (copied or regenerated separately).
fn is_metadata(rel: &str) -> bool {
    !rel.contains('/') && rel.starts_with("modules.")
}

fn excluded(excludes: &[String], rel: &str) -> bool {
    excludes
        .iter()
        .any(|g| apk::fnmatch::fnmatch_noflags(g, rel))
}

/// Copies `src` into `dst` in sorted order: directories (0755), files (hard link when possible,
/// else a copy keeping the mode), symlinks as symlinks. `prefix` is prepended to the relative path
/// for the exclude globs.
fn copy_tree(
    src: &Path,
    dst: &Path,
    prefix: &str,
    excludes: &[String],
    skip: &dyn Fn(&str) -> bool,
    stats: &mut Stats,
) -> Result<(), Error> {
    let mut stack: Vec<String> = vec![String::new()];
    while let Some(dir_rel) = stack.pop() {
        let dir = src.join(&dir_rel);
        let mut names: Vec<String> = fs::read_dir(&dir)
            .map_err(io_at(&dir))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(io_at(&dir))?;
        names.sort();
        let mut subdirs = Vec::new();
        for name in names {
            let rel = if dir_rel.is_empty() {
                name.clone()
            } else {
                format!("{dir_rel}/{name}")
            };
            if skip(&rel) {
                continue;
            }
            let from = src.join(&rel);
            let to = dst.join(&rel);
            let meta = fs::symlink_metadata(&from).map_err(io_at(&from))?;
            // `dir/*` also takes `dir` itself (as `dir/` matches it), not only its contents.
            let full = format!("{prefix}{rel}");
            if excluded(excludes, &full)
                || (meta.is_dir() && excluded(excludes, &format!("{full}/")))
            {
                stats.excluded += 1;
                if is_module(&rel) || meta.is_dir() {
                    stats.excluded_modules = true;
                }
                continue;
            }
            if meta.is_dir() {
                make_dir(&to)?;
                subdirs.push(rel);
            } else if meta.file_type().is_symlink() {
                let target = fs::read_link(&from).map_err(io_at(&from))?;
                std::os::unix::fs::symlink(&target, &to).map_err(io_at(&to))?;
            } else if meta.is_file() {
                if fs::hard_link(&from, &to).is_err() {
                    fs::copy(&from, &to).map_err(io_at(&to))?;
                }
                stats.files += 1;
                if is_module(&rel) {
                    stats.module_paths.insert(rel);
                }
            }
        }
        // Reversed so the stack pops them in sorted order.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

/// Module paths of `modules.dep` that are kept (the set the regenerated files describe).
fn kept_modules(db: &ModuleDb, kept_paths: &BTreeSet<String>) -> BTreeSet<String> {
    db.modules()
        .filter(|m| kept_paths.contains(*m))
        .map(str::to_string)
        .collect()
}

/// Writes `modules.*` for the kept subset; returns kept modules whose dependencies are not kept.
fn write_metadata(
    db: &ModuleDb,
    out: &Path,
    kept: &BTreeSet<String>,
) -> Result<Vec<String>, Error> {
    let dep = db.render_dep(kept);
    let mut broken = Vec::new();
    for line in dep.lines() {
        if let Some((module, deps)) = line.split_once(':') {
            if deps.split_whitespace().any(|d| !kept.contains(d)) {
                broken.push(module.to_string());
            }
        }
    }
    let files: [(&str, String); 4] = [
        ("modules.dep", dep),
        ("modules.alias", db.render_alias(kept)),
        ("modules.softdep", db.render_softdep(kept, &[])),
        ("modules.order", db.render_order(kept)),
    ];
    for (name, text) in files {
        write_file(&out.join(name), text.as_bytes())?;
    }
    if let Some(t) = db.builtin_text() {
        write_file(&out.join("modules.builtin"), t.as_bytes())?;
    }
    if let Some(b) = db.builtin_modinfo() {
        write_file(&out.join("modules.builtin.modinfo"), b)?;
    }
    Ok(broken)
}

/// Copies every top-level `modules.*` file as it is.
fn copy_metadata(src: &Path, out: &Path) -> Result<(), Error> {
    let mut names: Vec<String> = fs::read_dir(src)
        .map_err(io_at(src))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_metadata(n))
        .collect();
    names.sort();
    for n in names {
        let from = src.join(&n);
        if from.is_file() {
            fs::copy(&from, out.join(&n)).map_err(io_at(&from))?;
        }
    }
    Ok(())
}

fn mksquashfs(staging: &Path, tmp: &Path, opts: &ModloopOptions) -> Result<(), Error> {
    let _ = fs::remove_file(tmp);
    let time = opts.mtime.to_string();
    let out = Command::new("mksquashfs")
        .arg(staging)
        .arg(tmp)
        .args(["-comp", opts.compression.name()])
        .args(["-all-root", "-no-xattrs", "-noappend", "-no-progress"])
        .args(["-mkfs-time", &time, "-all-time", &time])
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .map_err(|e| Error::BadInput {
            path: PathBuf::from("mksquashfs"),
            reason: format!("cannot run it ({e}); install squashfs-tools (make deps)"),
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::BadInput {
            path: tmp.to_path_buf(),
            reason: format!(
                "mksquashfs failed ({}): {}",
                out.status,
                err.lines().last().unwrap_or("").trim()
            ),
        });
    }
    Ok(())
}

fn split_output(output: &Path) -> Result<(PathBuf, String), Error> {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::BadInput {
            path: output.to_path_buf(),
            reason: "output path has no file name".into(),
        })?;
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

fn make_dir(path: &Path) -> Result<(), Error> {
    match fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_at(path)(e)),
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).map_err(io_at(path))
}

fn write_file(path: &Path, data: &[u8]) -> Result<(), Error> {
    fs::write(path, data).map_err(io_at(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).map_err(io_at(path))
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
