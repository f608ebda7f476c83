//! Pure boot decisions: which overlay, which trust verdict, which packages in which order, which
//! services, which mount points and fstab/inittab/repositories lines.
//!
//! Nothing here touches the system; every function takes the facts it needs (the command line,
//! the media found, file contents, a "does this path exist" callback) and returns a value, so
//! each Alpine rule (boot-params.md §3.5–§3.11) and each documented deviation (§8) is a unit test.
use std::path::{Component, Path, PathBuf};

use crate::cmdline::{ApkovlSpec, BootConfig, ConsoleSpec, DeviceSpec, VerifyPolicy};
use crate::media::Medium;
use crate::overlay::{Encryption, SignatureCheck};
use crate::step::StepError;

/// A decision that stops the boot, with what and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `root=` asks for root-device mode, which this init does not implement.
    #[error("root={0}: root-device mode is not supported by this init (diskless only); remove root=")]
    RootMode(String),
    /// `apkovl=` is a URL.
    #[error("apkovl={0}: network overlays are not supported (no network at boot); use DEV:PATH or a path")]
    UrlOverlay(String),
    /// `alpine_repo=` holds a URL.
    #[error("alpine_repo={0}: network repositories are not supported (no network at boot); use a local path")]
    UrlRepository(String),
    /// `alpine_repo=` holds a relative path.
    #[error("alpine_repo={0}: not an absolute path")]
    RelativeRepository(String),
    /// An `alpine_repo=` path does not exist after discovery.
    #[error("alpine_repo={}: not found on the boot media", .0.display())]
    RepositoryMissing(PathBuf),
    /// The device named by `apkovl=DEV:PATH` did not appear.
    #[error("apkovl={0}: device not found")]
    OverlayDeviceMissing(String),
    /// The path in `apkovl=DEV:PATH` leaves the device.
    #[error("apkovl=…:{0}: path must stay on the device (no ..)")]
    OverlayPathEscapes(String),
    /// The chosen overlay is not a regular file (upstream silently boots without it, §8.5).
    #[error("{}: apkovl is not a regular file", .0.display())]
    OverlayNotAFile(PathBuf),
    /// Several overlays were found and none was selected (upstream takes the first, §8.8).
    #[error("ambiguous apkovl: {} found ({}); select one with apkovl=", .0.len(), list_paths(.0))]
    AmbiguousOverlay(Vec<PathBuf>),
    /// `alpine_dev=` named a device that did not appear.
    #[error("alpine_dev={0}: device not found")]
    SelectedDeviceMissing(String),
    /// Nothing to boot from.
    #[error("no boot medium found: no boot repository and no apkovl on {0} block device(s)")]
    NoMedium(usize),
}

fn list_paths(p: &[PathBuf]) -> String {
    p.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Refuses command lines this init cannot honour, before any device is touched.
pub fn check_supported(cfg: &BootConfig) -> Result<(), PlanError> {
    if let Some(root) = &cfg.root {
        return Err(PlanError::RootMode(root.clone()));
    }
    if let Some(ApkovlSpec::Url(u)) = &cfg.apkovl {
        return Err(PlanError::UrlOverlay(u.clone()));
    }
    for r in &cfg.alpine_repo {
        if r.contains("://") {
            return Err(PlanError::UrlRepository(r.clone()));
        }
        if !r.starts_with('/') {
            return Err(PlanError::RelativeRepository(r.clone()));
        }
    }
    Ok(())
}

/// tmpfs options of the new root: `mode=0755[,size=<root_size>][,<rootflags>]` (§3.4).
pub fn tmpfs_options(cfg: &BootConfig) -> String {
    let mut opts = String::from("mode=0755");
    if let Some(size) = &cfg.root_size {
        opts.push_str(",size=");
        opts.push_str(size);
    }
    if let Some(flags) = cfg.rootflags.as_deref().filter(|f| !f.is_empty()) {
        opts.push(',');
        opts.push_str(flags);
    }
    opts
}

/// The effective `apkovl_verify`: the command line, else `required` when the initramfs holds
/// overlay keys (whoever built it wants signed overlays), else `off` (Alpine's behaviour).
pub fn effective_verify_policy(param: Option<VerifyPolicy>, keys_present: bool) -> VerifyPolicy {
    match param {
        Some(p) => p,
        None if keys_present => VerifyPolicy::Required,
        None => VerifyPolicy::Off,
    }
}

/// Why an overlay was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// Signed by a trusted key.
    Verified {
        /// The key.
        key: String,
    },
    /// Unsigned, accepted under `optional` (the caller prints a warning).
    UnsignedWarn,
    /// Unsigned, accepted under `off`.
    Unsigned,
}

/// The signature verdict. A bad signature is never accepted, whatever the policy: a signature
/// that is present and wrong means tampering or a wrong key, both worth stopping for.
pub fn judge_signature(policy: VerifyPolicy, check: &SignatureCheck, file: &Path) -> Result<Acceptance, StepError> {
    let refuse = |reason: String| StepError::SignatureRefused { file: file.to_path_buf(), reason };
    match (policy, check) {
        (_, SignatureCheck::Bad { reason }) => Err(refuse(format!("bad signature: {reason}"))),
        (_, SignatureCheck::Verified { key }) => Ok(Acceptance::Verified { key: key.clone() }),
        (VerifyPolicy::Required, SignatureCheck::Unsigned) => {
            Err(refuse("unsigned, and apkovl_verify=required (sign it, or boot with apkovl_verify=optional)".into()))
        }
        (VerifyPolicy::Optional, SignatureCheck::Unsigned) => Ok(Acceptance::UnsignedWarn),
        (VerifyPolicy::Off, SignatureCheck::Unsigned) => Ok(Acceptance::Unsigned),
    }
}

/// Encryption of an overlay from its name: nothing after `.apkovl.tar.gz` → none, `.age` → age,
/// anything else → legacy `openssl enc` with that cipher (upstream's rule: the suffix is the cipher).
pub fn encryption_of(file: &Path) -> Encryption {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let suffix = name.split_once(".apkovl.tar.gz").map(|(_, s)| s).unwrap_or("");
    match suffix.strip_prefix('.') {
        None | Some("") => Encryption::None,
        Some("age") => Encryption::Age,
        Some(cipher) => Encryption::OpensslEnc { cipher: cipher.to_string() },
    }
}

/// The chosen overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayChoice {
    /// The file.
    pub file: PathBuf,
    /// `<file>.sig`, when it exists.
    pub signature: Option<PathBuf>,
    /// From the name.
    pub encryption: Encryption,
}

/// What a path is, for decisions that depend on the filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    File,
    /// Anything else that exists.
    Other,
}

/// Picks the overlay (§3.5, with §8.5/§8.8 fixed): `apkovl=DEV:PATH` → PATH on that medium;
/// `apkovl=PATH` → that path; nothing → the single overlay found on the media, none when there is
/// none, an error when there are several. An explicit overlay that is not a regular file is an
/// error (upstream boots without it, silently).
pub fn choose_overlay(
    spec: Option<&ApkovlSpec>,
    media: &[Medium],
    kind: &dyn Fn(&Path) -> Option<Kind>,
) -> Result<Option<OverlayChoice>, PlanError> {
    let file = match spec {
        Some(ApkovlSpec::Url(u)) => return Err(PlanError::UrlOverlay(u.clone())),
        Some(ApkovlSpec::OnDevice { dev, path, .. }) => {
            let medium = media
                .iter()
                .find(|m| m.matches(dev))
                .ok_or_else(|| PlanError::OverlayDeviceMissing(dev.to_string()))?;
            let rel = Path::new(path.trim_start_matches('/'));
            if rel.components().any(|c| !matches!(c, Component::Normal(_))) || rel.as_os_str().is_empty() {
                return Err(PlanError::OverlayPathEscapes(path.clone()));
            }
            medium.mount_point.join(rel)
        }
        Some(ApkovlSpec::Path(p)) => p.clone(),
        None => {
            let all: Vec<PathBuf> = media.iter().flat_map(|m| m.overlays.iter().cloned()).collect();
            match all.len() {
                0 => return Ok(None),
                1 => all[0].clone(),
                _ => return Err(PlanError::AmbiguousOverlay(all)),
            }
        }
    };
    if kind(&file) != Some(Kind::File) {
        return Err(PlanError::OverlayNotAFile(file));
    }
    let mut sig = file.clone().into_os_string();
    sig.push(".sig");
    let sig = PathBuf::from(sig);
    let signature = (kind(&sig) == Some(Kind::File)).then_some(sig);
    let encryption = encryption_of(&file);
    Ok(Some(OverlayChoice { file, signature, encryption }))
}

/// The boot repositories: `alpine_repo=` paths (each must exist), else every repository found
/// on the media, in media order.
pub fn repositories(cfg: &BootConfig, media: &[Medium], exists: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>, PlanError> {
    if cfg.alpine_repo.is_empty() {
        return Ok(media.iter().flat_map(|m| m.repositories.iter().cloned()).collect());
    }
    cfg.alpine_repo
        .iter()
        .map(PathBuf::from)
        .map(|p| if exists(&p) { Ok(p) } else { Err(PlanError::RepositoryMissing(p)) })
        .collect()
}

/// Whether discovery found something to boot from.
pub fn check_found(cfg: &BootConfig, media: &[Medium], devices_seen: usize) -> Result<(), PlanError> {
    if let Some(sel) = &cfg.alpine_dev {
        if !media.iter().any(|m| m.matches(sel)) {
            return Err(PlanError::SelectedDeviceMissing(sel.to_string()));
        }
    }
    let anything = !cfg.alpine_repo.is_empty()
        || cfg.apkovl.is_some()
        || media.iter().any(|m| !m.repositories.is_empty() || !m.overlays.is_empty());
    if anything {
        Ok(())
    } else {
        Err(PlanError::NoMedium(devices_seen))
    }
}

/// A world or `pkgs=` token that was left out, with where it came from and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadToken {
    /// `etc/apk/world` or `pkgs=`.
    pub source: String,
    /// The token as written.
    pub token: String,
    /// Why it is invalid.
    pub reason: &'static str,
}

impl std::fmt::Display for BadToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: '{}' is not a valid world dependency ({}), format is name(@tag)([<>~=]version); skipped",
            self.source, self.token, self.reason
        )
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+._-,:/[]".contains(c)
}

/// Checks `[!]name[@tag][<op>version]` (apk-format.md §8.1).
pub fn check_world_token(token: &str) -> Result<(), &'static str> {
    let t = token.strip_prefix('!').unwrap_or(token);
    let name_len = t.find(|c: char| !is_name_char(c)).unwrap_or(t.len());
    let (name, mut rest) = t.split_at(name_len);
    if name.is_empty() {
        return Err("missing package name");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '/') {
        return Err("name must start with a letter or digit");
    }
    if let Some(r) = rest.strip_prefix('@') {
        let tag_len = r.find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c))).unwrap_or(r.len());
        if tag_len == 0 {
            return Err("empty @tag");
        }
        rest = &r[tag_len..];
    }
    if rest.is_empty() {
        return Ok(());
    }
    let op_len = rest.find(|c: char| !"<>=~".contains(c)).unwrap_or(rest.len());
    let (op, version) = rest.split_at(op_len);
    if op.is_empty() {
        return Err("unexpected character");
    }
    if !["<", "<=", "=", ">=", ">", "~", "=~", "~=", "><"].contains(&op) {
        return Err("unknown version operator");
    }
    if version.is_empty() {
        return Err("missing version");
    }
    let ok = if op == "><" {
        version.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
    } else {
        version.starts_with(|c: char| c.is_ascii_digit())
            && version.chars().all(|c| c.is_ascii_alphanumeric() || "._-~+".contains(c))
    };
    if ok {
        Ok(())
    } else {
        Err("invalid version")
    }
}

/// Splits world text (space/newline separated) into valid tokens and rejected ones.
pub fn parse_world(text: &str, source: &str) -> (Vec<String>, Vec<BadToken>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for tok in text.split_whitespace() {
        match check_world_token(tok) {
            Ok(()) => good.push(tok.to_string()),
            Err(reason) => bad.push(BadToken { source: source.to_string(), token: tok.to_string(), reason }),
        }
    }
    (good, bad)
}

/// The package list and what was left out of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackagePlan {
    /// In Alpine's order, duplicates removed (first occurrence kept).
    pub packages: Vec<String>,
    /// Invalid tokens, reported loudly by the executor.
    pub rejected: Vec<BadToken>,
}

/// Inputs to the package list besides the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackageInputs<'a> {
    /// The overlay's `etc/apk/world`, if an overlay provided one.
    pub world: Option<&'a str>,
    /// Whether default services apply (§3.7): `openssh` comes with `ssh_key=` only then.
    pub default_services: bool,
    /// Whether modloop verification keys are embedded (§3.9.5): adds `openssl`.
    pub modloop_keys: bool,
}

/// The install list (§3.10): `pkgs=`, the overlay's world, `openssh` (ssh_key, default services),
/// `alpine-base` (always), `openssl` (modloop keys). Bad tokens are left out and reported;
/// one bad token must not leave the machine with an empty root (apk-format.md §4.4).
pub fn package_list(cfg: &BootConfig, inputs: PackageInputs<'_>) -> PackagePlan {
    let mut plan = PackagePlan::default();
    let (pkgs, bad) = parse_world(&cfg.pkgs.join(" "), "pkgs=");
    plan.rejected.extend(bad);
    let mut list = pkgs;
    if let Some(world) = inputs.world {
        let (w, bad) = parse_world(world, "etc/apk/world");
        plan.rejected.extend(bad);
        list.extend(w);
    }
    if cfg.ssh_key.is_some() && inputs.default_services {
        list.push("openssh".into());
    }
    list.push("alpine-base".into());
    if inputs.modloop_keys {
        list.push("openssl".into());
    }
    for p in list {
        if !plan.packages.contains(&p) {
            plan.packages.push(p);
        }
    }
    plan
}

/// Default services apply when there is no overlay or it holds `etc/.default_boot_services` (§3.7).
pub fn default_services_apply(overlay_applied: bool, marker_present: bool) -> bool {
    !overlay_applied || marker_present
}

/// Alpine's default runlevels (§3.7).
pub const DEFAULT_SERVICES: &[(&str, &[&str])] = &[
    ("sysinit", &["devfs", "dmesg", "mdev", "hwdrivers", "modloop"]),
    ("boot", &["modules", "sysctl", "hostname", "bootmisc", "syslog"]),
    ("shutdown", &["mount-ro", "killprocs", "savecache"]),
    ("default", &["firstboot"]),
];

/// `(runlevel, service)` links to create: the defaults (+ `sshd` with `ssh_key=`) when they
/// apply, and always `hwclock` in boot when an RTC exists, else `swclock`.
pub fn service_links(default_services: bool, ssh_key: bool, has_rtc: bool) -> Vec<(&'static str, &'static str)> {
    let mut links = Vec::new();
    if default_services {
        for (level, services) in DEFAULT_SERVICES {
            links.extend(services.iter().map(|s| (*level, *s)));
        }
        if ssh_key {
            links.push(("default", "sshd"));
        }
    }
    links.push(("boot", if has_rtc { "hwclock" } else { "swclock" }));
    links
}

/// Whether `/dev` names hold an RTC (`rtc`, `rtc0`, ...).
pub fn has_rtc<S: AsRef<str>>(dev_names: &[S]) -> bool {
    dev_names.iter().any(|n| {
        let n = n.as_ref();
        n == "rtc" || n.strip_prefix("rtc").is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
    })
}

/// One line of an fstab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FstabEntry {
    /// Device spec (`LABEL=x`, `UUID=x`, `/dev/x`).
    pub spec: String,
    /// Mount point.
    pub file: String,
    /// Filesystem type.
    pub vfstype: String,
    /// Options.
    pub options: String,
}

fn fstab_unescape(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
}

fn fstab_escape(s: &str) -> String {
    s.replace('\\', "\\134").replace(' ', "\\040").replace('\t', "\\011")
}

/// Parses an fstab's entries (comments and short lines skipped).
pub fn parse_fstab(text: &str) -> Vec<FstabEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3).then(|| FstabEntry {
                spec: fstab_unescape(f[0]),
                file: fstab_unescape(f[1]),
                vfstype: f[2].to_string(),
                options: f.get(3).unwrap_or(&"defaults").to_string(),
            })
        })
        .collect()
}

/// The overlay's fstab may size the RAM root: options of its `/` tmpfs line (§3.8).
pub fn root_remount_options(fstab: &str) -> Option<String> {
    parse_fstab(fstab).into_iter().find(|e| e.file == "/" && e.vfstype == "tmpfs").map(|e| e.options)
}

/// Whether an fstab device spec names `m`.
pub fn spec_matches(spec: &str, m: &Medium) -> bool {
    DeviceSpec::parse(spec).is_some_and(|d| m.matches(&d))
}

/// A boot medium's move from its discovery mount point to its final one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaMove {
    /// Kernel name.
    pub name: String,
    /// Current mount point (`/media/vda1`).
    pub from: PathBuf,
    /// Final mount point (`/media/usb`), the same inside the new root.
    pub to: PathBuf,
}

/// Final mount points for the media (§3.8, so `lbu` and the repositories file see stable names):
/// the mount point of a line in the overlay's fstab that names the medium (a single name under
/// `/media`), else `usb` for vfat, `cdrom` for iso9660, else the kernel name; a name already
/// taken falls back to the kernel name.
pub fn media_moves(media: &[Medium], overlay_fstab: Option<&str>) -> Vec<MediaMove> {
    let entries = overlay_fstab.map(parse_fstab).unwrap_or_default();
    let mut taken: Vec<PathBuf> = Vec::new();
    let mut moves = Vec::new();
    for m in media {
        let from_fstab = entries
            .iter()
            .find(|e| spec_matches(&e.spec, m))
            .map(|e| PathBuf::from(&e.file))
            .filter(|p| is_media_dir(p));
        let by_type = match m.fstype.as_str() {
            "vfat" => Some(PathBuf::from("/media/usb")),
            "iso9660" => Some(PathBuf::from("/media/cdrom")),
            _ => None,
        };
        let kernel = PathBuf::from("/media").join(&m.name);
        let to = [from_fstab, by_type]
            .into_iter()
            .flatten()
            .find(|p| !taken.contains(p) && !media.iter().any(|o| o.name != m.name && o.mount_point == *p))
            .unwrap_or(kernel);
        taken.push(to.clone());
        moves.push(MediaMove { name: m.name.clone(), from: m.mount_point.clone(), to });
    }
    moves
}

fn is_media_dir(p: &Path) -> bool {
    let mut c = p.components();
    matches!(
        (c.next(), c.next(), c.next(), c.next()),
        (Some(Component::RootDir), Some(Component::Normal(a)), Some(Component::Normal(_)), None) if a == "media"
    )
}

/// Rewrites `path` after media moves (`/media/vda1/apks` → `/media/usb/apks`).
pub fn relocate(path: &Path, moves: &[MediaMove]) -> PathBuf {
    for mv in moves {
        if let Ok(rest) = path.strip_prefix(&mv.from) {
            return mv.to.join(rest);
        }
    }
    path.to_path_buf()
}

/// The fstab line for a moved medium: `LABEL=X /media/usb vfat noauto,ro 0 0` (UUID= when
/// there is no label, `/dev/name` when neither).
pub fn fstab_line(m: &Medium, mount_point: &Path) -> String {
    let spec = match (&m.label, &m.uuid) {
        (Some(l), _) => format!("LABEL={}", fstab_escape(l)),
        (None, Some(u)) => format!("UUID={u}"),
        (None, None) => format!("/dev/{}", m.name),
    };
    format!("{spec} {} {} noauto,ro 0 0", fstab_escape(&mount_point.to_string_lossy()), m.fstype)
}

/// Updates the new root's fstab for the moved media: a line that already names the medium at its
/// mount point is kept; another line for the same mount point (e.g. alpine-baselayout's
/// `/dev/usbdisk /media/usb vfat noauto`) is commented out and replaced; otherwise a line is
/// appended. Returns the new text, or `None` when nothing changes.
pub fn update_fstab(existing: &str, media: &[(&Medium, &Path)]) -> Option<String> {
    let mut lines: Vec<String> = existing.lines().map(str::to_string).collect();
    let mut changed = false;
    for (m, mp) in media {
        let mp_str = mp.to_string_lossy();
        let mut has_ours = false;
        for line in lines.iter_mut() {
            if line.trim_start().starts_with('#') {
                continue;
            }
            let Some(e) = parse_fstab(line).into_iter().next() else { continue };
            if e.file != mp_str {
                continue;
            }
            if spec_matches(&e.spec, m) {
                has_ours = true;
            } else {
                *line = format!("# {line}  (replaced by the boot medium {})", m.name);
                changed = true;
            }
        }
        if !has_ours {
            lines.push(fstab_line(m, mp));
            changed = true;
        }
    }
    changed.then(|| {
        let mut s = lines.join("\n");
        s.push('\n');
        s
    })
}

/// `/etc/apk/repositories` content for the boot repositories (written when absent, §3.11).
pub fn repositories_file(repos: &[PathBuf]) -> String {
    repos.iter().map(|r| format!("{}\n", r.display())).collect()
}

/// Consoles that need a getty: every `console=` except virtual terminals (`tty`, `ttyN`, which
/// inittab already serves) and `console` itself, deduplicated in order.
pub fn getty_consoles(consoles: &[ConsoleSpec]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in consoles {
        let vt = c.name == "console"
            || c.name == "tty"
            || c.name.strip_prefix("tty").is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
        let sane = c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '_' || ch == '-');
        if !vt && sane && !out.contains(&c.name) {
            out.push(c.name.clone());
        }
    }
    out
}

/// Lines to append to `etc/inittab` for serial consoles without a `^<tty>:` line (§3.11).
pub fn inittab_additions(existing: &str, consoles: &[ConsoleSpec]) -> String {
    let mut out = String::new();
    for tty in getty_consoles(consoles) {
        let prefix = format!("{tty}:");
        if existing.lines().any(|l| l.starts_with(&prefix)) {
            continue;
        }
        out.push_str(&format!("# enable login on alternative console\n{tty}::respawn:/sbin/getty -L 0 {tty} vt100\n"));
    }
    out
}

/// Consoles to add to `etc/securetty` (only when the file exists; the caller checks).
pub fn securetty_additions(existing: &str, consoles: &[ConsoleSpec]) -> Vec<String> {
    getty_consoles(consoles).into_iter().filter(|t| !existing.lines().any(|l| l.trim() == t)).collect()
}

/// `/etc/hostname` to write: the `hostname=` value, unless the overlay provided the file.
pub fn hostname_file(cfg: &BootConfig, overlay_files: Option<&[String]>) -> Option<String> {
    let name = cfg.hostname.as_ref()?;
    let from_overlay = overlay_files.is_some_and(|f| f.iter().any(|p| p.trim_start_matches("./") == "etc/hostname"));
    (!from_overlay).then(|| format!("{name}\n"))
}

/// The literal key for `/root/.ssh/authorized_keys`: `ssh_key=` unless it is a URL (those are
/// fetched by the `firstboot` service once the network is up) or has no key shape.
pub fn authorized_key(cfg: &BootConfig) -> Option<String> {
    let key = cfg.ssh_key.as_deref()?.trim();
    let url = ["http://", "https://", "ftp://", "ftps://"].iter().any(|p| key.starts_with(p));
    let shaped = key.split_whitespace().count() >= 2 && !key.contains('\n');
    (!url && shaped).then(|| format!("{key}\n"))
}

/// Whether an initramfs file name is a modloop verification key (§3.9.5).
pub fn is_modloop_key(name: &str) -> bool {
    crate::modules::fnmatch("*modloop*.SIGN.RSA.*.pub", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn medium(name: &str, fstype: &str, label: Option<&str>, repos: &[&str], ovls: &[&str]) -> Medium {
        let mp = PathBuf::from("/media").join(name);
        Medium {
            name: name.into(),
            fstype: fstype.into(),
            label: label.map(str::to_string),
            uuid: Some("AB12-CD34".into()),
            mount_point: mp.clone(),
            repositories: repos.iter().map(|r| mp.join(r)).collect(),
            overlays: ovls.iter().map(|o| mp.join(o)).collect(),
            cache: None,
        }
    }

    fn files(paths: &'static [&'static str]) -> impl Fn(&Path) -> Option<Kind> {
        move |p: &Path| paths.iter().any(|x| Path::new(x) == p).then_some(Kind::File)
    }

    #[test]
    fn unsupported_modes_are_refused_up_front() {
        assert_eq!(check_supported(&BootConfig::from_cmdline("quiet")), Ok(()));
        assert!(matches!(check_supported(&BootConfig::from_cmdline("root=/dev/sda2")), Err(PlanError::RootMode(_))));
        assert!(matches!(check_supported(&BootConfig::from_cmdline("apkovl=https://x/a.apkovl.tar.gz")), Err(PlanError::UrlOverlay(_))));
        assert!(matches!(
            check_supported(&BootConfig::from_cmdline("alpine_repo=/media/a/apks,http://dl-cdn/x")),
            Err(PlanError::UrlRepository(_))
        ));
        assert!(matches!(check_supported(&BootConfig::from_cmdline("alpine_repo=apks")), Err(PlanError::RelativeRepository(_))));
    }

    #[test]
    fn tmpfs_option_string() {
        assert_eq!(tmpfs_options(&BootConfig::default()), "mode=0755");
        assert_eq!(tmpfs_options(&BootConfig::from_cmdline("root_size=1G")), "mode=0755,size=1G");
        assert_eq!(
            tmpfs_options(&BootConfig::from_cmdline("root_size=1G rootflags=size=2G,nr_inodes=5k")),
            "mode=0755,size=1G,size=2G,nr_inodes=5k"
        );
    }

    #[test]
    fn verify_policy_default_depends_on_embedded_keys() {
        assert_eq!(effective_verify_policy(None, true), VerifyPolicy::Required);
        assert_eq!(effective_verify_policy(None, false), VerifyPolicy::Off);
        assert_eq!(effective_verify_policy(Some(VerifyPolicy::Optional), true), VerifyPolicy::Optional);
        assert_eq!(effective_verify_policy(Some(VerifyPolicy::Required), false), VerifyPolicy::Required);
        assert_eq!(effective_verify_policy(Some(VerifyPolicy::Off), true), VerifyPolicy::Off);
    }

    #[test]
    fn signature_verdict_matrix() {
        let f = Path::new("/media/usb/h.apkovl.tar.gz");
        let verified = SignatureCheck::Verified { key: "admin.pub".into() };
        let bad = SignatureCheck::Bad { reason: "wrong key".into() };
        let unsigned = SignatureCheck::Unsigned;
        for policy in [VerifyPolicy::Required, VerifyPolicy::Optional, VerifyPolicy::Off] {
            assert_eq!(judge_signature(policy, &verified, f), Ok(Acceptance::Verified { key: "admin.pub".into() }));
            let err = judge_signature(policy, &bad, f).unwrap_err();
            assert_eq!(
                err.to_string(),
                "/media/usb/h.apkovl.tar.gz: signature check failed: bad signature: wrong key",
                "{policy}"
            );
        }
        let err = judge_signature(VerifyPolicy::Required, &unsigned, f).unwrap_err();
        assert!(err.to_string().contains("unsigned, and apkovl_verify=required"), "{err}");
        assert_eq!(judge_signature(VerifyPolicy::Optional, &unsigned, f), Ok(Acceptance::UnsignedWarn));
        assert_eq!(judge_signature(VerifyPolicy::Off, &unsigned, f), Ok(Acceptance::Unsigned));
    }

    #[test]
    fn encryption_from_name() {
        assert_eq!(encryption_of(Path::new("/m/h.apkovl.tar.gz")), Encryption::None);
        assert_eq!(encryption_of(Path::new("/m/h.apkovl.tar.gz.age")), Encryption::Age);
        assert_eq!(
            encryption_of(Path::new("/m/h.apkovl.tar.gz.aes-256-cbc")),
            Encryption::OpensslEnc { cipher: "aes-256-cbc".into() }
        );
        assert_eq!(encryption_of(Path::new("/m/odd-name.tgz")), Encryption::None);
    }

    #[test]
    fn overlay_found_on_media() {
        let media = [medium("vda", "vfat", Some("A"), &["apks"], &["h.apkovl.tar.gz"])];
        let kind = files(&["/media/vda/h.apkovl.tar.gz", "/media/vda/h.apkovl.tar.gz.sig"]);
        let c = choose_overlay(None, &media, &kind).unwrap().unwrap();
        assert_eq!(c.file, PathBuf::from("/media/vda/h.apkovl.tar.gz"));
        assert_eq!(c.signature, Some(PathBuf::from("/media/vda/h.apkovl.tar.gz.sig")));
        assert_eq!(c.encryption, Encryption::None);
        let kind = files(&["/media/vda/h.apkovl.tar.gz"]);
        assert_eq!(choose_overlay(None, &media, &kind).unwrap().unwrap().signature, None);
    }

    #[test]
    fn no_overlay_anywhere_is_fine() {
        let media = [medium("vda", "vfat", None, &["apks"], &[])];
        assert_eq!(choose_overlay(None, &media, &files(&[])), Ok(None));
    }

    #[test]
    fn several_overlays_without_selector_are_ambiguous() {
        let media = [
            medium("vda", "vfat", None, &["apks"], &["a.apkovl.tar.gz"]),
            medium("vdb", "ext4", None, &[], &["b.apkovl.tar.gz"]),
        ];
        let err = choose_overlay(None, &media, &files(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ambiguous apkovl: 2 found (/media/vda/a.apkovl.tar.gz, /media/vdb/b.apkovl.tar.gz); select one with apkovl="
        );
        // A selector resolves it.
        let spec = ApkovlSpec::parse("/media/vdb/b.apkovl.tar.gz");
        let c = choose_overlay(Some(&spec), &media, &files(&["/media/vdb/b.apkovl.tar.gz"])).unwrap().unwrap();
        assert_eq!(c.file, PathBuf::from("/media/vdb/b.apkovl.tar.gz"));
    }

    #[test]
    fn overlay_on_named_device() {
        let media = [medium("vda", "vfat", Some("BOOT"), &["apks"], &[]), medium("vdb", "ext4", Some("CFG"), &[], &[])];
        let spec = ApkovlSpec::parse("LABEL=CFG:/cfg/h.apkovl.tar.gz.age");
        let c = choose_overlay(Some(&spec), &media, &files(&["/media/vdb/cfg/h.apkovl.tar.gz.age"])).unwrap().unwrap();
        assert_eq!(c.file, PathBuf::from("/media/vdb/cfg/h.apkovl.tar.gz.age"));
        assert_eq!(c.encryption, Encryption::Age);
        let missing = ApkovlSpec::parse("LABEL=NOPE:h.apkovl.tar.gz");
        assert_eq!(choose_overlay(Some(&missing), &media, &files(&[])), Err(PlanError::OverlayDeviceMissing("LABEL=NOPE".into())));
        let escape = ApkovlSpec::parse("/dev/vdb:../../etc/shadow");
        assert!(matches!(choose_overlay(Some(&escape), &media, &files(&[])), Err(PlanError::OverlayPathEscapes(_))));
    }

    #[test]
    fn explicit_overlay_must_be_a_regular_file() {
        let spec = ApkovlSpec::parse("/media/vda/missing.apkovl.tar.gz");
        assert_eq!(
            choose_overlay(Some(&spec), &[], &files(&[])),
            Err(PlanError::OverlayNotAFile("/media/vda/missing.apkovl.tar.gz".into()))
        );
        let dir = |_: &Path| Some(Kind::Other);
        assert!(matches!(choose_overlay(Some(&spec), &[], &dir), Err(PlanError::OverlayNotAFile(_))));
    }

    #[test]
    fn repositories_from_media_or_alpine_repo() {
        let media = [medium("vda", "vfat", None, &["apks"], &[]), medium("vdb", "vfat", None, &["extra"], &[])];
        let cfg = BootConfig::default();
        assert_eq!(
            repositories(&cfg, &media, &|_| true).unwrap(),
            vec![PathBuf::from("/media/vda/apks"), PathBuf::from("/media/vdb/extra")]
        );
        let cfg = BootConfig::from_cmdline("alpine_repo=/media/vdb/extra");
        assert_eq!(repositories(&cfg, &media, &|_| true).unwrap(), vec![PathBuf::from("/media/vdb/extra")]);
        assert_eq!(
            repositories(&cfg, &media, &|_| false),
            Err(PlanError::RepositoryMissing("/media/vdb/extra".into()))
        );
    }

    #[test]
    fn nothing_found_is_no_medium() {
        let cfg = BootConfig::default();
        assert_eq!(check_found(&cfg, &[], 0), Err(PlanError::NoMedium(0)));
        assert_eq!(
            check_found(&cfg, &[], 3).unwrap_err().to_string(),
            "no boot medium found: no boot repository and no apkovl on 3 block device(s)"
        );
        assert_eq!(check_found(&cfg, &[medium("vda", "vfat", None, &["apks"], &[])], 1), Ok(()));
        assert_eq!(check_found(&cfg, &[medium("vda", "vfat", None, &[], &["h.apkovl.tar.gz"])], 1), Ok(()));
        let sel = BootConfig::from_cmdline("alpine_dev=LABEL=X");
        assert_eq!(check_found(&sel, &[], 2), Err(PlanError::SelectedDeviceMissing("LABEL=X".into())));
    }

    #[test]
    fn world_tokens() {
        for good in [
            "alpine-base",
            "busybox-openrc",
            "!dropbear",
            "openssh>=9.0",
            "vim=9.1.0-r0",
            "linux-lts~6.6",
            "py3-foo@testing",
            "foo@edge<2",
            "so:libc.musl-x86_64.so.1",
            "cmd:apk",
            "/bin/sh",
            "libglvnd><Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8=",
        ] {
            assert_eq!(check_world_token(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("foo=", "missing version"),
            ("=1.0", "missing package name"),
            ("foo$bar", "unexpected character"),
            ("foo@", "empty @tag"),
            ("foo>>1", "unknown version operator"),
            ("foo>=abc", "invalid version"),
            ("-foo", "name must start with a letter or digit"),
            ("!", "missing package name"),
        ] {
            assert_eq!(check_world_token(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn package_order_is_alpines() {
        let cfg = BootConfig::from_cmdline(r#"pkgs=vim,htop ssh_key="ssh-ed25519 AAAA me@x""#);
        let plan = package_list(
            &cfg,
            PackageInputs { world: Some("alpine-base\nchrony iptables\n"), default_services: true, modloop_keys: true },
        );
        assert_eq!(plan.packages, vec!["vim", "htop", "alpine-base", "chrony", "iptables", "openssh", "openssl"]);
        assert!(plan.rejected.is_empty());
    }

    #[test]
    fn no_pkgs_no_overlay_is_alpine_base_only() {
        let plan = package_list(&BootConfig::default(), PackageInputs::default());
        assert_eq!(plan.packages, vec!["alpine-base"]);
        // openssh only with default services.
        let cfg = BootConfig::from_cmdline(r#"ssh_key="ssh-ed25519 AAAA""#);
        assert_eq!(package_list(&cfg, PackageInputs::default()).packages, vec!["alpine-base"]);
    }

    #[test]
    fn world_with_a_bad_token_keeps_the_valid_ones() {
        let cfg = BootConfig::from_cmdline("pkgs=tmux,bad$name");
        let plan = package_list(
            &cfg,
            PackageInputs { world: Some("chrony\nfoo=\nnftables\n"), default_services: false, modloop_keys: false },
        );
        assert_eq!(plan.packages, vec!["tmux", "chrony", "nftables", "alpine-base"]);
        assert_eq!(plan.rejected.len(), 2);
        assert_eq!(
            plan.rejected[1].to_string(),
            "etc/apk/world: 'foo=' is not a valid world dependency (missing version), \
             format is name(@tag)([<>~=]version); skipped"
        );
        assert_eq!(plan.rejected[0].source, "pkgs=");
    }

    #[test]
    fn default_services_rule() {
        assert!(default_services_apply(false, false));
        assert!(default_services_apply(true, true));
        assert!(!default_services_apply(true, false));
    }

    #[test]
    fn service_link_sets() {
        let l = service_links(true, false, true);
        assert_eq!(l.len(), 5 + 5 + 3 + 1 + 1);
        assert!(l.contains(&("sysinit", "modloop")));
        assert!(l.contains(&("shutdown", "savecache")));
        assert_eq!(l.last(), Some(&("boot", "hwclock")));
        assert!(service_links(true, true, false).contains(&("default", "sshd")));
        assert_eq!(service_links(false, true, false), vec![("boot", "swclock")]);
        assert!(has_rtc(&["null", "rtc0"]));
        assert!(has_rtc(&["rtc"]));
        assert!(!has_rtc(&["rtcx", "tty0"]));
    }

    #[test]
    fn media_mount_point_names() {
        let media = [
            medium("sda1", "vfat", Some("ALPINE"), &["apks"], &[]),
            medium("sdb1", "vfat", Some("CFG"), &[], &["h.apkovl.tar.gz"]),
            medium("sr0", "iso9660", Some("alpine-std"), &["apks"], &[]),
            medium("vdc", "ext4", None, &["apks"], &[]),
        ];
        let moves = media_moves(&media, None);
        let to: Vec<_> = moves.iter().map(|m| m.to.to_string_lossy().into_owned()).collect();
        assert_eq!(to, vec!["/media/usb", "/media/sdb1", "/media/cdrom", "/media/vdc"]);
        assert_eq!(moves[0].from, PathBuf::from("/media/sda1"));
    }

    #[test]
    fn overlay_fstab_decides_the_mount_point() {
        let media = [medium("sda1", "vfat", Some("ALPINE"), &["apks"], &[]), medium("sdb1", "vfat", Some("CFG"), &[], &[])];
        let fstab = "LABEL=CFG /media/usb vfat noauto,ro 0 0\nLABEL=ALPINE /media/boot vfat noauto 0 0\nUUID=x / tmpfs size=1G 0 0\n";
        let to: Vec<_> = media_moves(&media, Some(fstab)).into_iter().map(|m| m.to).collect();
        assert_eq!(to, vec![PathBuf::from("/media/boot"), PathBuf::from("/media/usb")]);
        // Mount points outside /media/<name> are not honoured.
        let odd = "LABEL=ALPINE /etc vfat noauto 0 0\n";
        assert_eq!(media_moves(&media[..1], Some(odd))[0].to, PathBuf::from("/media/usb"));
        assert_eq!(root_remount_options(fstab).as_deref(), Some("size=1G"));
        assert_eq!(root_remount_options("tmpfs /tmp tmpfs size=1G 0 0\n"), None);
    }

    #[test]
    fn paths_follow_moves() {
        let moves = vec![MediaMove { name: "sda1".into(), from: "/media/sda1".into(), to: "/media/usb".into() }];
        assert_eq!(relocate(Path::new("/media/sda1/apks"), &moves), PathBuf::from("/media/usb/apks"));
        assert_eq!(relocate(Path::new("/media/sda10/apks"), &moves), PathBuf::from("/media/sda10/apks"));
        assert_eq!(relocate(Path::new("/media/sda1"), &moves), PathBuf::from("/media/usb"));
    }

    #[test]
    fn fstab_lines_and_update() {
        let usb = medium("sda1", "vfat", Some("MY STICK"), &["apks"], &[]);
        let mut nolabel = medium("sr0", "iso9660", None, &["apks"], &[]);
        nolabel.uuid = Some("2024-01-02-03-04-05-00".into());
        assert_eq!(fstab_line(&usb, Path::new("/media/usb")), "LABEL=MY\\040STICK /media/usb vfat noauto,ro 0 0");
        assert_eq!(
            fstab_line(&nolabel, Path::new("/media/cdrom")),
            "UUID=2024-01-02-03-04-05-00 /media/cdrom iso9660 noauto,ro 0 0"
        );
        let baselayout = "/dev/cdrom\t/media/cdrom\tiso9660\tnoauto,ro 0 0\n/dev/usbdisk\t/media/usb\tvfat\tnoauto\t0 0\ntmpfs /tmp tmpfs nosuid,nodev 0 0\n";
        let new = update_fstab(baselayout, &[(&usb, Path::new("/media/usb"))]).unwrap();
        assert_eq!(
            new,
            "/dev/cdrom\t/media/cdrom\tiso9660\tnoauto,ro 0 0\n\
             # /dev/usbdisk\t/media/usb\tvfat\tnoauto\t0 0  (replaced by the boot medium sda1)\n\
             tmpfs /tmp tmpfs nosuid,nodev 0 0\n\
             LABEL=MY\\040STICK /media/usb vfat noauto,ro 0 0\n"
        );
        // Idempotent: a second run changes nothing.
        assert_eq!(update_fstab(&new, &[(&usb, Path::new("/media/usb"))]), None);
        // An overlay line naming the medium by UUID is kept.
        let ovl = "UUID=ab12-cd34 /media/usb vfat noauto,rw 0 0\n";
        assert_eq!(update_fstab(ovl, &[(&usb, Path::new("/media/usb"))]), None);
        assert_eq!(update_fstab("", &[(&nolabel, Path::new("/media/cdrom"))]).unwrap(), format!("{}\n", fstab_line(&nolabel, Path::new("/media/cdrom"))));
    }

    #[test]
    fn inittab_and_securetty() {
        let cfg = BootConfig::from_cmdline("console=tty0 console=ttyS0,115200 console=ttyS0 console=hvc0");
        let inittab = "::sysinit:/sbin/openrc sysinit\ntty1::respawn:/sbin/getty 38400 tty1\nhvc0::respawn:/sbin/getty -L hvc0 115200 vt100\n";
        assert_eq!(
            inittab_additions(inittab, &cfg.consoles),
            "# enable login on alternative console\nttyS0::respawn:/sbin/getty -L 0 ttyS0 vt100\n"
        );
        assert_eq!(inittab_additions("ttyS0::respawn:/x\n", &cfg.consoles[..2]), "");
        assert_eq!(securetty_additions("console\ntty1\nhvc0\n", &cfg.consoles), vec!["ttyS0"]);
        let evil = BootConfig::from_cmdline("console=ttyS0:x");
        assert!(getty_consoles(&evil.consoles).is_empty());
    }

    #[test]
    fn repositories_file_lines() {
        assert_eq!(
            repositories_file(&[PathBuf::from("/media/usb/apks"), PathBuf::from("/media/cdrom/apks")]),
            "/media/usb/apks\n/media/cdrom/apks\n"
        );
    }

    #[test]
    fn hostname_unless_overlay_has_one() {
        let cfg = BootConfig::from_cmdline("hostname=fw1");
        assert_eq!(hostname_file(&cfg, None).as_deref(), Some("fw1\n"));
        let files = vec!["etc/".to_string(), "etc/hostname".to_string()];
        assert_eq!(hostname_file(&cfg, Some(&files)), None);
        assert_eq!(hostname_file(&cfg, Some(&["etc/motd".to_string()])).as_deref(), Some("fw1\n"));
        assert_eq!(hostname_file(&BootConfig::default(), None), None);
    }

    #[test]
    fn ssh_key_literal_only() {
        let k = BootConfig::from_cmdline(r#"ssh_key="ssh-ed25519 AAAAC3Nz me@x""#);
        assert_eq!(authorized_key(&k).as_deref(), Some("ssh-ed25519 AAAAC3Nz me@x\n"));
        assert_eq!(authorized_key(&BootConfig::from_cmdline("ssh_key=https://x/keys")), None);
        assert_eq!(authorized_key(&BootConfig::from_cmdline("ssh_key=AAAA")), None);
    }

    #[test]
    fn modloop_key_names() {
        assert!(is_modloop_key("alpine-devel@lists.alpinelinux.org-modloop.SIGN.RSA.lts.pub"));
        assert!(!is_modloop_key("alpine-devel@lists.alpinelinux.org-4a6a0840.rsa.pub"));
    }
}
