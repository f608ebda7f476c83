//! `mkimage`: command line over the `mkimage` library.
//!
//! Stage one is the clap struct as typed; stage two is [`mkimage::Options`] with keys loaded,
//! repositories parsed and the size read. Progress goes to stdout (`-q` silences it); errors are
//! one line `mkimage: ERROR: <subject>: <why>` on stderr (the solver's block follows it, as apk
//! prints it), exit code 1, and nothing is left at `-o`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use mkimage::{Error, Format, Options, SignKey};

/// Build a diskless boot medium in Alpine's layout: a boot repository (apks/) holding the
/// closure of --world copied from local repositories with an index signed by --sign-key, the
/// kernel and initramfs in boot/ with syslinux, extlinux and grub configurations carrying the
/// command line, an optional apkovl, and /.alpine-release.
///
/// Set SOURCE_DATE_EPOCH for reproducible output: dir and vfat media are then identical, byte for
/// byte, from run to run. Labels: vfat at most 11 characters, iso at most 32. The medium key's
/// public half must be in the initramfs (mkinitfs --keys-dir) for the init to trust apks/; the
/// private key does not belong on the medium: mkimage refuses any private key among the files it
/// copies, inside the initramfs (except the age identity of mkinitfs --ovl-identity) and in
/// --keys-dir.
#[derive(Debug, Parser)]
#[command(name = "mkimage", version, disable_version_flag = true)]
// --sb-key signs a unified kernel image: --uki makes one, and so does a --profile build given it.
#[command(group(clap::ArgGroup::new("makes_uki").args(["uki", "profile"]).multiple(true)))]
struct Cli {
    /// Output: a directory (dir) or an image file (vfat, iso), replaced atomically
    #[arg(
        short = 'o',
        long = "output",
        value_name = "OUT",
        required_unless_present = "new_profile"
    )]
    output: Option<PathBuf>,
    /// What to write (with --profile: one of the profile's formats, default its first)
    #[arg(long, value_enum, value_name = "FORMAT", required_unless_present_any = ["profile", "new_profile"])]
    format: Option<FormatArg>,
    /// Build the appliance profile in DIR (profile.toml, rootfs/, rootfs.owners): install its
    /// world into a scratch root, package its overlay, build its initramfs and write the medium,
    /// all in this process. See the README, "Making a medium"
    #[arg(long, value_name = "DIR", conflicts_with = "new_profile")]
    profile: Option<PathBuf>,
    /// Write a commented skeleton profile into the new directory DIR and exit
    #[arg(long = "new-profile", value_name = "DIR")]
    new_profile: Option<PathBuf>,
    /// With --profile: where packages come from when the profile names no repositories, a
    /// directory or http(s):// URL (repeatable; a value may hold several, space separated)
    #[arg(long = "mirror", value_name = "URL|DIR", requires = "profile")]
    mirrors: Vec<String>,
    /// The ed25519 private key that signs overlays: with --profile the profile's (signing =
    /// "required"); with --format netboot each host's, for its MAC (needed by --hosts)
    #[arg(long = "ovl-key", value_name = "KEY")]
    ovl_key: Option<PathBuf>,
    /// With --profile and encryption = "passphrase": the file whose first line (at most 4096
    /// bytes) is the passphrase the overlay is encrypted to; owned by root or you, mode 0600 or
    /// stricter (the box asks for it on the console at boot; it never enters the medium)
    #[arg(
        long = "ovl-passphrase-file",
        value_name = "FILE",
        requires = "profile"
    )]
    ovl_passphrase_file: Option<PathBuf>,
    /// With --profile: make the medium key DIR/medium.rsa and the overlay key DIR/overlay.key
    /// (with their .pub) if they are not there yet, and sign with them
    #[arg(long = "generate-keys", value_name = "DIR", requires = "profile")]
    generate_keys: Option<PathBuf>,
    /// With --profile: the init program the initramfs gets [default: init beside mkimage]
    #[arg(long = "init", value_name = "FILE", requires = "profile")]
    init: Option<PathBuf>,
    /// Source repository: a directory with ARCH/APKINDEX.tar.gz, an APKINDEX.tar.gz, or an
    /// http(s):// repository URL (downloaded and verified through a scratch cache; repeatable)
    #[arg(
        long = "repository",
        value_name = "DIR|INDEX|URL",
        conflicts_with = "profile"
    )]
    repositories: Vec<String>,
    /// Packages whose dependency closure goes to apks/ (space separated, apk world syntax;
    /// repeatable)
    #[arg(long, value_name = "PKGS", conflicts_with = "profile")]
    world: Vec<String>,
    /// Source repository for apks-extra/, a second repository that is not a boot repository
    /// (repeatable; copied whole unless --world-extra is given)
    #[arg(
        long = "extra-repository",
        value_name = "DIR|INDEX|URL",
        conflicts_with = "profile"
    )]
    extra_repositories: Vec<String>,
    /// Packages whose closure, minus what apks/ holds, goes to apks-extra/ (for apk add later;
    /// repeatable)
    #[arg(long = "world-extra", value_name = "PKGS", conflicts_with = "profile")]
    world_extra: Vec<String>,
    /// Kernel, copied to /boot/vmlinuz
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    kernel: Option<PathBuf>,
    /// Initramfs, copied to /boot/initramfs
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    initramfs: Option<PathBuf>,
    /// Prebuilt modloop squashfs (mkinitfs --modloop), copied to /boot/modloop-<flavor> with a
    /// signature made with --sign-key; modloop=/boot/modloop-<flavor> goes on the command line
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    modloop: Option<PathBuf>,
    /// Build the modloop of this kernel version from BASEDIR/lib/modules/KVER and
    /// BASEDIR/lib/firmware (with --modloop: the kernel to sign it for, when it holds several)
    #[arg(long = "modloop-kver", value_name = "KVER", conflicts_with = "profile")]
    modloop_kver: Option<String>,
    /// BASEDIR for --modloop-kver [default: /]
    #[arg(long = "modloop-basedir", value_name = "DIR")]
    modloop_basedir: Option<PathBuf>,
    /// Leave matching paths out of the built modloop (repeatable; module paths relative to
    /// lib/modules/KVER, e.g. 'kernel/drivers/gpu/*' or 'kernel/sound/*'; firmware as 'firmware/...')
    #[arg(long = "modloop-exclude", value_name = "GLOB")]
    modloop_excludes: Vec<String>,
    /// Compression of the built modloop: xz (smallest, Alpine's) or zstd (faster)
    #[arg(long = "modloop-comp", value_name = "xz|zstd", default_value = "xz", value_parser = parse_modloop_comp)]
    modloop_comp: mkinitfs::modloop::ModloopCompression,
    /// Overlay (NAME.apkovl.tar.gz*), copied to the top level with NAME.sig if present beside it.
    /// Netboot: repeatable; HOST.apkovl.tar.gz for the --hosts lines naming HOST, or
    /// MAC.apkovl.tar.gz (aa:bb:cc:dd:ee:ff) for that machine
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    apkovl: Vec<PathBuf>,
    /// Netboot: which machine boots which overlay, one "aa:bb:cc:dd:ee:ff hostname" per line
    /// (# comments); each host's --apkovl is published as MAC.apkovl.tar.gz, signed for the MAC
    /// with --ovl-key
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    hosts: Option<PathBuf>,
    /// Netboot: the URL the tree is served from, set as ${base} in boot.ipxe unless already set
    /// when it runs [default: http://${next-server}, the web server's root on the DHCP/TFTP server]
    #[arg(long = "netboot-url", value_name = "URL")]
    netboot_url: Option<String>,
    /// Directory of cached packages, copied to /cache/ (Alpine's local apk cache)
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Private key (RSA or ed25519 PEM) signing the medium's indexes; the signature names it
    /// after its file name plus .pub. Required with --world
    #[arg(long = "sign-key", value_name = "KEY")]
    sign_key: Option<PathBuf>,
    /// Volume label (blkid LABEL)
    #[arg(long, value_name = "LABEL", default_value = mkimage::DEFAULT_LABEL)]
    label: String,
    /// Kernel command line for the boot loader configurations
    #[arg(long, value_name = "CMDLINE", default_value = mkimage::DEFAULT_CMDLINE)]
    cmdline: String,
    /// Repository architecture [default: the build host's]
    #[arg(long, value_name = "ARCH")]
    arch: Option<String>,
    /// vfat image size, e.g. 256M or 1G [default: content + 25% + 8M, at least 64M]
    #[arg(long, value_name = "SIZE", conflicts_with = "profile")]
    size: Option<String>,
    /// Directory of public keys trusted for the source indexes (repeatable) [default: /etc/apk/keys]
    #[arg(long = "keys-dir", value_name = "DIR")]
    keys_dirs: Vec<PathBuf>,
    /// Accept source indexes that no trusted key signed
    #[arg(long = "allow-untrusted")]
    allow_untrusted: bool,
    /// Keep what remote repositories send (verified indexes and packages, apk's cache names) in
    /// DIR and reuse it [default: a scratch directory, removed afterwards]
    #[arg(long = "cache-dir", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Also trust the certificate authorities in FILE for HTTPS sources (repeatable; the host's
    /// bundle and SSL_CERT_FILE are trusted too; proxies come from http_proxy/https_proxy)
    #[arg(long = "ca", value_name = "FILE")]
    ca: Vec<PathBuf>,
    /// Boot UEFI through a unified kernel image at EFI/BOOT/BOOTX64.EFI (instead of GRUB):
    /// systemd's EFI stub with the kernel, the initramfs sealed with the command line
    /// (etc/boot-policy sealed=yes, etc/boot-cmdline) and the command line itself; BIOS keeps
    /// syslinux. Needs --kernel and --initramfs
    #[arg(long, conflicts_with = "profile")]
    uki: bool,
    /// Sign the unified kernel image for Secure Boot with this private key (PEM; sbsign).
    /// Never copied to the medium. Needs --sb-cert, and --uki (or --profile, which then makes one)
    #[arg(long = "sb-key", value_name = "KEY", requires_all = ["makes_uki", "sb_cert"])]
    sb_key: Option<PathBuf>,
    /// The certificate of --sb-key (PEM or DER), written to the medium as EFI/keys/db.der for
    /// enrollment in the firmware's Secure Boot db
    #[arg(long = "sb-cert", value_name = "CERT", requires = "sb_key")]
    sb_cert: Option<PathBuf>,
    /// Quiet: no progress lines
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    /// A directory tree
    Dir,
    /// A FAT32 image file
    Vfat,
    /// An ISO 9660 image (needs xorriso)
    Iso,
    /// A netboot tree for a web server: boot.ipxe, boot/, apks/, one overlay per MAC
    Netboot,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mkimage: ERROR: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    if let Some(dir) = &cli.new_profile {
        mkimage::profile::new_profile(dir)?;
        if !cli.quiet {
            println!(
                "Wrote the profile {0}: edit {0}/profile.toml and {0}/rootfs/, then build it with: mkimage --profile {0} -o OUT",
                dir.display()
            );
        }
        return Ok(());
    }
    if let Some(dir) = &cli.profile {
        return run_profile(&cli, dir);
    }
    let opts = options(&cli)?;
    let quiet = cli.quiet;
    let mut progress = |line: &str| {
        if !quiet {
            println!("{line}");
        }
    };
    let start = std::time::Instant::now();
    let report = mkimage::build(&opts, &mut progress)?;
    for w in &report.warnings {
        eprintln!("mkimage: WARNING: {w}");
    }
    progress(&format!(
        "{}: {}, {} packages, {} MiB of files, in {:.1} s",
        opts.output.display(),
        report.release,
        report.packages + report.extra_packages,
        report.content_bytes.div_ceil(1 << 20),
        start.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// `--profile DIR`: the profile build, with its step lines and a summary.
fn run_profile(cli: &Cli, dir: &std::path::Path) -> Result<(), Error> {
    use mkimage::profile;
    let quiet = cli.quiet;
    let mut progress = |line: &str| {
        if !quiet {
            println!("{line}");
        }
    };
    let loaded = profile::load(dir)?;
    let Some(output) = cli.output.clone() else {
        return Err(medium_setting("-o", "required with --profile".into()));
    };
    let mut keys = profile::Keys::default();
    if let Some(d) = &cli.generate_keys {
        let (made, notes) = profile::generate_keys(d)?;
        for n in notes {
            progress(&n);
        }
        keys = made;
    }
    if let Some(k) = &cli.sign_key {
        keys.medium = Some(k.clone());
    }
    if let Some(k) = &cli.ovl_key {
        keys.overlay = Some(k.clone());
    }
    let trusted_dirs = if cli.keys_dirs.is_empty() {
        let default = PathBuf::from("/etc/apk/keys");
        if default.is_dir() {
            vec![default]
        } else {
            vec![]
        }
    } else {
        for d in &cli.keys_dirs {
            if !d.is_dir() {
                return Err(Error::Input {
                    option: "--keys-dir",
                    path: d.clone(),
                    reason: "not a directory".into(),
                });
            }
        }
        cli.keys_dirs.clone()
    };
    let exe = std::env::current_exe().ok();
    let kernel_root = PathBuf::from("/");
    let mut http = apk::http::ClientOptions {
        proxy: apk::http::ProxyConfig::from_env(),
        ..Default::default()
    };
    for f in cli.ca.iter().cloned().chain(
        std::env::var_os("SSL_CERT_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    ) {
        http.ca
            .add_file(&f)
            .map_err(|e| medium_setting("--ca", e.to_string()))?;
    }
    let req = profile::BuildRequest {
        profile: &loaded,
        output: output.clone(),
        format: cli.format.map(format_of),
        mirrors: cli.mirrors.clone(),
        trusted_dirs,
        keys,
        secure_boot: match (&cli.sb_key, &cli.sb_cert) {
            (Some(key), Some(cert)) => Some(mkimage::SecureBootKey {
                key: key.clone(),
                cert: cert.clone(),
            }),
            _ => None,
        },
        build_time: source_date_epoch()?.unwrap_or_else(now),
        init: cli.init.clone().or_else(|| {
            exe.as_deref()
                .and_then(std::path::Path::parent)
                .map(|d| d.join("init"))
                .filter(|p| p.is_file())
        }),
        feature_dirs: mkinitfs::features::default_dirs(exe.as_deref(), &kernel_root),
        kernel_root,
        cache_dir: cli.cache_dir.clone(),
        http,
        netboot_url: cli.netboot_url.clone(),
        ovl_passphrase: cli
            .ovl_passphrase_file
            .as_deref()
            .map(mkimage::read_passphrase)
            .transpose()?,
    };
    let s = profile::build(&req, &mut progress)?;
    for w in &s.warnings {
        eprintln!("mkimage: WARNING: {w}");
    }
    progress(&format!(
        "{}: {} {}, {} packages ({} MiB installed), overlay of {} files, {} MiB, in {:.1} s",
        output.display(),
        s.format.name(),
        s.report.release,
        s.installed_packages,
        s.installed_bytes.div_ceil(1 << 20),
        s.overlay_members,
        s.output_bytes.div_ceil(1 << 20),
        s.seconds
    ));
    Ok(())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Stage two: the options the library takes.
fn options(cli: &Cli) -> Result<Options, Error> {
    // clap requires both outside --new-profile and --profile.
    let (Some(format), Some(output)) = (cli.format, &cli.output) else {
        return Err(medium_setting("--format", "and -o are required".into()));
    };
    let mut opts = Options::new(format_of(format), output.clone());
    if let Some(t) = source_date_epoch()? {
        opts.build_time = t;
    }
    if let Some(a) = &cli.arch {
        opts.arch = a.clone();
    }
    opts.repositories = specs(&cli.repositories)?;
    opts.extra_repositories = specs(&cli.extra_repositories)?;
    opts.cache_dir = cli.cache_dir.clone();
    opts.http.proxy = apk::http::ProxyConfig::from_env();
    let mut ca_files = cli.ca.clone();
    ca_files.extend(
        std::env::var_os("SSL_CERT_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    );
    for f in &ca_files {
        opts.http.ca.add_file(f).map_err(|e| Error::Setting {
            option: "--ca",
            reason: e.to_string(),
        })?;
    }
    let default_keys = [PathBuf::from("/etc/apk/keys")];
    let dirs: &[PathBuf] = if cli.keys_dirs.is_empty() {
        &default_keys
    } else {
        &cli.keys_dirs
    };
    for dir in dirs {
        // An explicit directory must exist; the default may be absent on a non-Alpine host.
        if !cli.keys_dirs.is_empty() && !dir.is_dir() {
            return Err(Error::Input {
                option: "--keys-dir",
                path: dir.clone(),
                reason: "not a directory".into(),
            });
        }
        if dir.is_dir() {
            mkimage::check_keys_dir(dir, "--keys-dir")?;
        }
        opts.keys.add_dir(dir);
    }
    opts.allow_untrusted = cli.allow_untrusted;
    opts.world = mkimage::parse_world(&cli.world.join(" "), "--world")?;
    opts.world_extra = mkimage::parse_world(&cli.world_extra.join(" "), "--world-extra")?;
    opts.kernel = cli.kernel.clone();
    opts.initramfs = cli.initramfs.clone();
    opts.modloop = cli.modloop.clone();
    opts.modloop_kver = cli.modloop_kver.clone();
    opts.modloop_basedir = cli.modloop_basedir.clone();
    opts.modloop_excludes = cli.modloop_excludes.clone();
    opts.modloop_compression = cli.modloop_comp;
    opts.apkovl = cli.apkovl.clone();
    opts.hosts = cli
        .hosts
        .as_deref()
        .map(mkimage::netboot::Hosts::load)
        .transpose()?;
    opts.ovl_key = cli
        .ovl_key
        .as_deref()
        .map(mkimage::OverlayKey::load)
        .transpose()?;
    opts.netboot_url = cli.netboot_url.clone();
    opts.cache = cli.cache.clone();
    opts.sign_key = cli.sign_key.as_deref().map(SignKey::load).transpose()?;
    opts.uki = cli.uki;
    opts.secure_boot = match (&cli.sb_key, &cli.sb_cert) {
        (Some(key), Some(cert)) => Some(mkimage::SecureBootKey {
            key: key.clone(),
            cert: cert.clone(),
        }),
        _ => None,
    };
    opts.label = cli.label.clone();
    opts.cmdline = cli.cmdline.clone();
    opts.size = cli
        .size
        .as_deref()
        .map(|s| mkimage::parse_size(s).map_err(|r| medium_setting("--size", r)))
        .transpose()?;
    Ok(opts)
}

fn format_of(f: FormatArg) -> Format {
    match f {
        FormatArg::Dir => Format::Dir,
        FormatArg::Vfat => Format::Vfat,
        FormatArg::Iso => Format::Iso,
        FormatArg::Netboot => Format::Netboot,
    }
}

fn parse_modloop_comp(s: &str) -> Result<mkinitfs::modloop::ModloopCompression, String> {
    mkinitfs::modloop::ModloopCompression::parse(s)
        .ok_or_else(|| format!("{s}: expected xz or zstd"))
}

fn specs(values: &[String]) -> Result<Vec<apk::repo::RepoSpec>, Error> {
    values.iter().map(|v| mkimage::repository_spec(v)).collect()
}

fn medium_setting(option: &'static str, reason: String) -> Error {
    Error::Setting { option, reason }
}

/// `SOURCE_DATE_EPOCH` as the time stamp of everything on the medium.
fn source_date_epoch() -> Result<Option<u64>, Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|_| {
            medium_setting(
                "SOURCE_DATE_EPOCH",
                format!("\"{v}\" is not a number of seconds"),
            )
        }),
        _ => Ok(None),
    }
}
