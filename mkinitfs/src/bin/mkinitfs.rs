//! `mkinitfs`: Alpine-compatible command line over the `mkinitfs` library.
//!
//! Stage one is the clap struct as typed; stage two is [`mkinitfs::Config`] via
//! `Config::resolve` (command line over config file over defaults). Errors print as one line,
//! `mkinitfs: ERROR: <subject>: <why>`, with exit code 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bootspec::OverlayRequirement;
use clap::Parser;
use mkinitfs::{ConfFile, Config, Error, Overrides};

/// Build an initramfs for the project's init (Alpine mkinitfs compatible options).
///
/// Feature directories are searched in this order: -P dirs, <exe dir>/../share/mkinitfs/features.d,
/// <exe dir>/../../mkinitfs/features.d (the repository, from out/bin), then
/// BASEDIR/etc/mkinitfs/features.d. Command-line options override the config file (unlike Alpine).
///
/// Only public keys may enter the image: a private key anywhere in it (a keys directory holding
/// both halves of `apk keygen -o DIR/KEY`, a custom file) is refused with the file's name. The one
/// exception is --ovl-identity, an age identity embedded on purpose: whoever can read the medium
/// can then read the overlays encrypted to it.
#[derive(Debug, Parser)]
#[command(name = "mkinitfs", version, disable_version_flag = true)]
struct Cli {
    /// Take files, modules, firmware and keys from BASEDIR instead of /
    #[arg(short = 'b', value_name = "BASEDIR")]
    basedir: Option<PathBuf>,
    /// Config file (KEY="VALUE" lines, never executed) [default: BASEDIR/etc/mkinitfs/mkinitfs.conf]
    #[arg(short = 'c', value_name = "CONFIGFILE")]
    config: Option<PathBuf>,
    /// Compression: gzip, zstd (default) or none
    #[arg(short = 'C', value_name = "gzip|zstd|none")]
    compression: Option<String>,
    /// fstab to embed as /etc/fstab (default: Alpine's)
    #[arg(short = 'f', value_name = "FSTAB")]
    fstab: Option<PathBuf>,
    /// Features to include, space separated (replaces the config's features=)
    #[arg(short = 'F', value_name = "FEATURES")]
    features: Option<String>,
    /// Program to install as /init (default: `init` next to this binary)
    #[arg(short = 'i', value_name = "INITFILE")]
    init: Option<PathBuf>,
    /// Keep the staged tree (in -t TEMPDIR or a new temporary directory) and print its path
    #[arg(short = 'k')]
    keep: bool,
    /// Also embed the build host's /etc/apk/keys
    #[arg(short = 'K')]
    host_keys: bool,
    /// List the files that would go in (sorted ./path lines) and exit
    #[arg(short = 'l')]
    list: bool,
    /// List the available features and exit
    #[arg(short = 'L')]
    list_features: bool,
    /// No kernel modules and no firmware
    #[arg(short = 'n')]
    no_modules: bool,
    /// Output file (default: BASEDIR/boot/initramfs-<flavor>)
    #[arg(short = 'o', value_name = "OUTFILE")]
    output: Option<PathBuf>,
    /// Prepend a features directory (repeatable, earlier wins)
    #[arg(short = 'P', value_name = "FEATURESDIR")]
    feature_dirs: Vec<PathBuf>,
    /// Quiet: no "creating" line
    #[arg(short = 'q')]
    quiet: bool,
    /// Staging directory used with -k (the tree is otherwise built in memory)
    #[arg(short = 't', value_name = "TEMPDIR")]
    tempdir: Option<PathBuf>,
    /// Debug output: effective config, unmatched feature lines, skipped firmware
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Package index keys to embed in etc/apk/keys/ (repeatable; default BASEDIR/etc/apk/keys)
    #[arg(long = "keys-dir", value_name = "DIR")]
    keys_dirs: Vec<PathBuf>,
    /// Overlay signature keys to embed in etc/apkovl/keys/ (repeatable)
    #[arg(long = "ovl-keys-dir", value_name = "DIR")]
    ovl_keys_dirs: Vec<PathBuf>,
    /// What every overlay must be at boot, recorded in etc/boot-policy (the kernel command line
    /// can only tighten it) [default: the config's apkovl_require, else any]
    #[arg(long = "ovl-require", value_name = "any|signed|encrypted|signed,encrypted", value_parser = parse_requirement)]
    ovl_require: Option<OverlayRequirement>,
    /// Also accept round-1 overlay signatures (a bare signature over the file's bytes, bound to no
    /// host and no generation, so an old or another host's overlay can be replayed); for media
    /// committed by older lbu versions
    #[arg(long = "ovl-legacy-sig")]
    ovl_legacy_sig: bool,
    /// Boot only HOST's overlay: it must be signed, with a statement for HOST (lbu commit on
    /// HOST makes one), so an overlay copied from another host's medium is refused; recorded in
    /// etc/boot-policy [default: the config's apkovl_host, else any host]
    #[arg(long = "ovl-host", value_name = "HOST", value_parser = parse_host)]
    ovl_host: Option<String>,
    /// Refuse overlays signed before this time (seconds since 1970, or `now`: SOURCE_DATE_EPOCH
    /// when set, else the clock), recorded in etc/boot-policy: a validly signed older overlay, as
    /// a netboot server or a swapped file could replay it, is refused. Overlays made by lbu commit
    /// or mkimage after that time boot [default: the config's apkovl_not_before, else no floor]
    #[arg(long = "ovl-not-before", value_name = "SECONDS|now")]
    ovl_not_before: Option<String>,
    /// age identity (age-keygen output) embedded as etc/apkovl/identity, mode 0600, to decrypt
    /// overlays encrypted to its recipient without a prompt. Whoever reads the medium reads the
    /// overlay: use it where the medium is as protected as the box
    #[arg(long = "ovl-identity", value_name = "FILE")]
    ovl_identity: Option<PathBuf>,
    /// Add the certificate authorities of a PEM file to the image's bundle
    /// (etc/ssl/certs/ca-certificates.crt, which the network feature copies from BASEDIR), for
    /// alpine_repo=, apkovl= and modloop= URLs on an HTTPS server with a private CA (repeatable;
    /// certificates only: a file holding a private key is refused)
    #[arg(long = "ca", value_name = "FILE")]
    ca_files: Vec<PathBuf>,
    /// Build the modloop instead of an initramfs: a squashfs of BASEDIR/lib/modules/KVER and
    /// BASEDIR/lib/firmware in Alpine's layout (modules/KVER/..., modules/firmware/...), written to
    /// OUT; reproducible with SOURCE_DATE_EPOCH. mkimage signs it and puts it on the medium
    #[arg(long = "modloop", value_name = "OUT")]
    modloop: Option<PathBuf>,
    /// Leave matching paths out of the modloop (repeatable; module paths are relative to
    /// lib/modules/KVER, e.g. 'kernel/drivers/gpu/*', 'kernel/sound/*'; firmware as 'firmware/...')
    #[arg(long = "modloop-exclude", value_name = "GLOB")]
    modloop_excludes: Vec<String>,
    /// Modloop compression: xz (smallest, Alpine's) or zstd (faster to build and to read)
    #[arg(long = "modloop-comp", value_name = "xz|zstd", default_value = "xz")]
    modloop_comp: String,
    /// Kernel version (default: the running kernel)
    #[arg(value_name = "KERNELVERSION")]
    kernel_version: Option<String>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mkinitfs: ERROR: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    let exe = std::env::current_exe().ok();
    let basedir = absolute(cli.basedir.as_deref().unwrap_or(Path::new("/")))?;
    let default_dirs = mkinitfs::features::default_dirs(exe.as_deref(), &basedir);
    let mut feature_dirs = cli.feature_dirs.clone();
    feature_dirs.extend(default_dirs.iter().cloned());
    if cli.list_features {
        for name in mkinitfs::features::available(&feature_dirs)? {
            println!("{name}");
        }
        return Ok(());
    }
    if let Some(out) = &cli.modloop {
        return build_modloop(&cli, basedir, out);
    }
    let conf = match &cli.config {
        Some(path) => ConfFile::load(path)?,
        None => {
            // The default config may be absent; an explicit -c must exist.
            let path = basedir.join(mkinitfs::config::DEFAULT_CONFIG);
            if path.exists() {
                ConfFile::load(&path)?
            } else {
                ConfFile::default()
            }
        }
    };
    let overrides = Overrides {
        basedir: Some(basedir),
        features: cli
            .features
            .as_deref()
            .map(|f| f.split_whitespace().map(str::to_string).collect()),
        compression: cli.compression.clone(),
        fstab: cli.fstab.clone(),
        init: cli.init.clone(),
        no_modules: cli.no_modules,
        feature_dirs: cli.feature_dirs.clone(),
        keys_dirs: cli.keys_dirs.clone(),
        ovl_keys_dirs: cli.ovl_keys_dirs.clone(),
        host_keys: cli.host_keys,
        kernel_version: cli.kernel_version.clone(),
        mtime: source_date_epoch()?,
        ovl_require: cli.ovl_require,
        ovl_legacy_sig: cli.ovl_legacy_sig.then_some(true),
        ovl_host: cli.ovl_host.clone(),
        ovl_not_before: cli.ovl_not_before.as_deref().map(not_before).transpose()?,
        ovl_identity: cli.ovl_identity.clone(),
        ca_files: cli.ca_files.clone(),
    };
    let default_init = exe
        .as_deref()
        .and_then(Path::parent)
        .map(|d| d.join("init"))
        .filter(|p| p.is_file());
    let config = Config::resolve(&conf, &overrides, default_init, default_dirs)?;
    if cli.verbose {
        eprintln!("mkinitfs: effective config: {config:#?}");
    }
    let image = mkinitfs::build(&config)?;
    for w in image.warnings() {
        eprintln!("mkinitfs: WARNING: {w}");
    }
    if cli.verbose {
        for n in image.notes() {
            eprintln!("mkinitfs: note: {n}");
        }
    }
    if cli.list {
        let mut out = String::new();
        for line in image.list() {
            out.push_str(&line);
            out.push('\n');
        }
        print!("{out}");
        return Ok(());
    }
    if cli.keep {
        let dir = match &cli.tempdir {
            Some(d) => d.clone(),
            None => std::env::temp_dir().join(format!("mkinitfs.{}", std::process::id())),
        };
        image.stage_to(&dir)?;
        eprintln!("mkinitfs: staging directory kept: {}", dir.display());
    }
    let output = cli
        .output
        .clone()
        .unwrap_or_else(|| config.default_output());
    if !cli.quiet {
        println!(
            "==> initramfs: creating {} for {}",
            output.display(),
            config.kernel_version
        );
    }
    let start = std::time::Instant::now();
    image.write_to(&output)?;
    if cli.verbose {
        eprintln!(
            "mkinitfs: note: time: archive written in {:.1} ms",
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

fn build_modloop(cli: &Cli, basedir: PathBuf, out: &Path) -> Result<(), Error> {
    use mkinitfs::modloop::{ModloopCompression, ModloopOptions};
    let compression =
        ModloopCompression::parse(&cli.modloop_comp).ok_or_else(|| Error::Setting {
            key: "--modloop-comp".into(),
            reason: format!("{}: expected xz or zstd", cli.modloop_comp),
        })?;
    let kernel_version = match &cli.kernel_version {
        Some(k) => k.clone(),
        None => std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .map_err(|source| Error::Io {
                path: "/proc/sys/kernel/osrelease".into(),
                source,
            })?,
    };
    let opts = ModloopOptions {
        basedir,
        kernel_version,
        excludes: cli.modloop_excludes.clone(),
        compression,
        mtime: source_date_epoch()?.map_or(0, u64::from),
    };
    if !cli.quiet {
        println!(
            "==> modloop: creating {} for {} ({})",
            out.display(),
            opts.kernel_version,
            compression.name()
        );
    }
    let built = mkinitfs::modloop::build_modloop(&opts, out)?;
    for m in &built.broken_dependencies {
        eprintln!("mkinitfs: WARNING: modloop: {m} is kept but depends on an excluded module");
    }
    if !cli.quiet {
        println!(
            "==> modloop: {} bytes, {} modules, {} firmware files, {} paths excluded",
            built.size, built.modules, built.firmware, built.excluded
        );
    }
    Ok(())
}

fn parse_requirement(text: &str) -> Result<OverlayRequirement, String> {
    mkinitfs::config::parse_requirement(text)
}

fn parse_host(text: &str) -> Result<String, String> {
    if bootspec::is_host_name(text) {
        Ok(text.to_string())
    } else {
        Err("expected a host name (letters, digits, '-', '.')".into())
    }
}

fn absolute(path: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `SOURCE_DATE_EPOCH` as the archive mtime (reproducible builds convention).
/// `--ovl-not-before`: seconds, or `now` (SOURCE_DATE_EPOCH when set, for a reproducible image;
/// else the clock).
fn not_before(text: &str) -> Result<u64, Error> {
    if text == "now" {
        return Ok(match source_date_epoch()? {
            Some(t) => u64::from(t),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        });
    }
    mkinitfs::config::parse_not_before(text).map_err(|reason| Error::Setting {
        key: "--ovl-not-before".into(),
        reason,
    })
}

fn source_date_epoch() -> Result<Option<u32>, Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v.trim().parse().map(Some).map_err(|_| Error::Setting {
            key: "SOURCE_DATE_EPOCH".into(),
            reason: format!("\"{v}\" is not a number of seconds that fits newc's 32-bit mtime"),
        }),
        _ => Ok(None),
    }
}
