//! What the init writes into the new root after the install: runlevel links, the media's final
//! mount points and fstab lines, repositories, serial gettys, hostname and the `ssh_key`
//! (docs/boot.md, "The new root" and "Media: final mount points"). Pure: file contents in, file
//! contents out.
use std::path::{Component, Path, PathBuf};

use crate::cmdline::{BootConfig, ConsoleSpec, DeviceSpec};
use crate::media::Medium;

/// Default services apply when there is no overlay or it holds `etc/.default_boot_services`.
pub fn default_services_apply(overlay_applied: bool, marker_present: bool) -> bool {
    !overlay_applied || marker_present
}

/// Alpine's default runlevels, without `modloop`: the init mounts the verified modloop itself
/// and OpenRC's service would mount it again without verification (see [`super::modloop`]).
pub const DEFAULT_SERVICES: &[(&str, &[&str])] = &[
    ("sysinit", &["devfs", "dmesg", "mdev", "hwdrivers"]),
    (
        "boot",
        &["modules", "sysctl", "hostname", "bootmisc", "syslog"],
    ),
    ("shutdown", &["mount-ro", "killprocs", "savecache"]),
    ("default", &["firstboot"]),
];

/// `(runlevel, service)` links to create: the defaults (+ `sshd` with `ssh_key=`) when they
/// apply, and always `hwclock` in boot when an RTC exists, else `swclock`.
pub fn service_links(
    default_services: bool,
    ssh_key: bool,
    has_rtc: bool,
) -> Vec<(&'static str, &'static str)> {
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
        n == "rtc"
            || n.strip_prefix("rtc")
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
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
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\134", "\\")
}

fn fstab_escape(s: &str) -> String {
    s.replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
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

/// The overlay's fstab may size the RAM root: options of its `/` tmpfs line.
pub fn root_remount_options(fstab: &str) -> Option<String> {
    parse_fstab(fstab)
        .into_iter()
        .find(|e| e.file == "/" && e.vfstype == "tmpfs")
        .map(|e| e.options)
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

/// The medium the box belongs to: the one holding the chosen overlay, else the first one holding
/// a boot repository. It takes its type's name (`/media/usb`) before any other medium, and its
/// `cache/` is the only one the install reads: a stick plugged in beside it must take over
/// neither where `lbu commit` writes nor what the install trusts (docs/boot.md, "Media: final
/// mount points").
pub fn home_medium<'a>(media: &'a [Medium], overlay: Option<&Path>) -> Option<&'a Medium> {
    overlay
        .and_then(|o| media.iter().find(|m| o.starts_with(&m.mount_point)))
        .or_else(|| media.iter().find(|m| !m.repositories.is_empty()))
}

/// Final mount points for the media (so `lbu` and the repositories file see stable names).
/// First the overlay's fstab: each line that names a medium and a single name under `/media`
/// gives that medium its mount point, in fstab order. Then the home medium (kernel name `home`),
/// then the others in discovery order: `usb` for vfat, `cdrom` for iso9660, else (or when that
/// name is taken) the kernel name.
pub fn media_moves(
    media: &[Medium],
    overlay_fstab: Option<&str>,
    home: Option<&str>,
) -> Vec<MediaMove> {
    let entries = overlay_fstab.map(parse_fstab).unwrap_or_default();
    let mut to: Vec<Option<PathBuf>> = vec![None; media.len()];
    let free = |p: &Path, i: usize, to: &[Option<PathBuf>]| {
        !to.iter().flatten().any(|t| t == p)
            && !media
                .iter()
                .enumerate()
                .any(|(j, o)| j != i && o.mount_point == p)
    };
    for e in &entries {
        let file = PathBuf::from(&e.file);
        if !is_media_dir(&file) {
            continue;
        }
        let claimant = (0..media.len())
            .find(|&i| to[i].is_none() && spec_matches(&e.spec, &media[i]) && free(&file, i, &to));
        if let Some(i) = claimant {
            to[i] = Some(file);
        }
    }
    let home_first = media
        .iter()
        .position(|m| Some(m.name.as_str()) == home)
        .into_iter()
        .chain((0..media.len()).filter(|&i| Some(media[i].name.as_str()) != home));
    for i in home_first.collect::<Vec<_>>() {
        if to[i].is_some() {
            continue;
        }
        let m = &media[i];
        let by_type = match m.fstype.as_str() {
            "vfat" => Some(PathBuf::from("/media/usb")),
            "iso9660" => Some(PathBuf::from("/media/cdrom")),
            _ => None,
        };
        to[i] = Some(
            by_type
                .filter(|p| free(p, i, &to))
                .unwrap_or_else(|| PathBuf::from("/media").join(&m.name)),
        );
    }
    media
        .iter()
        .zip(to)
        .map(|(m, to)| MediaMove {
            name: m.name.clone(),
            from: m.mount_point.clone(),
            to: to.unwrap_or_else(|| PathBuf::from("/media").join(&m.name)),
        })
        .collect()
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
            // join("") would add a trailing slash, which ends up in fstab lines.
            return if rest.as_os_str().is_empty() {
                mv.to.clone()
            } else {
                mv.to.join(rest)
            };
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
    format!(
        "{spec} {} {} noauto,ro 0 0",
        fstab_escape(&mount_point.to_string_lossy()),
        m.fstype
    )
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
            let Some(e) = parse_fstab(line).into_iter().next() else {
                continue;
            };
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

/// `/etc/apk/repositories` content for the boot repositories (written when absent).
pub fn repositories_file(repos: &[PathBuf]) -> String {
    repos.iter().map(|r| format!("{}\n", r.display())).collect()
}

/// The mode of that file: 0600 when a repository URL carries credentials
/// (`https://user:password@host/...`, or a token as the user name), so only root reads them;
/// else 0644, as Alpine has it.
pub fn repositories_mode(repos: &[PathBuf]) -> u32 {
    let secret = repos.iter().any(|r| {
        let r = r.to_string_lossy();
        apk::http::url::display(&r) != r
    });
    if secret {
        0o600
    } else {
        0o644
    }
}

/// Consoles that need a getty: every `console=` except virtual terminals (`tty`, `ttyN`, which
/// inittab already serves) and `console` itself, deduplicated in order.
pub fn getty_consoles(consoles: &[ConsoleSpec]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in consoles {
        let vt = c.name == "console"
            || c.name == "tty"
            || c.name
                .strip_prefix("tty")
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
        let sane = c
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '_' || ch == '-');
        if !vt && sane && !out.contains(&c.name) {
            out.push(c.name.clone());
        }
    }
    out
}

/// Lines to append to `etc/inittab` for serial consoles without a `^<tty>:` line.
pub fn inittab_additions(existing: &str, consoles: &[ConsoleSpec]) -> String {
    let mut out = String::new();
    for tty in getty_consoles(consoles) {
        let prefix = format!("{tty}:");
        if existing.lines().any(|l| l.starts_with(&prefix)) {
            continue;
        }
        out.push_str(&format!(
            "# enable login on alternative console\n{tty}::respawn:/sbin/getty -L 0 {tty} vt100\n"
        ));
    }
    out
}

/// Consoles to add to `etc/securetty` (only when the file exists; the caller checks).
pub fn securetty_additions(existing: &str, consoles: &[ConsoleSpec]) -> Vec<String> {
    getty_consoles(consoles)
        .into_iter()
        .filter(|t| !existing.lines().any(|l| l.trim() == t))
        .collect()
}

/// `/etc/hostname` to write: the `hostname=` value, unless the overlay provided the file.
pub fn hostname_file(cfg: &BootConfig, overlay_files: Option<&[String]>) -> Option<String> {
    let name = cfg.hostname.as_ref()?;
    let from_overlay = overlay_files.is_some_and(|f| {
        f.iter()
            .any(|p| p.trim_start_matches("./") == "etc/hostname")
    });
    (!from_overlay).then(|| format!("{name}\n"))
}

/// The literal key for `/root/.ssh/authorized_keys`: `ssh_key=` unless it is a URL (those are
/// fetched by the `firstboot` service once the network is up) or has no key shape.
pub fn authorized_key(cfg: &BootConfig) -> Option<String> {
    let key = cfg.ssh_key.as_deref()?.trim();
    let url = ["http://", "https://", "ftp://", "ftps://"]
        .iter()
        .any(|p| key.starts_with(p));
    let shaped = key.split_whitespace().count() >= 2 && !key.contains('\n');
    (!url && shaped).then(|| format!("{key}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::media::sample_medium as medium;

    #[test]
    fn default_services_rule() {
        assert!(default_services_apply(false, false));
        assert!(default_services_apply(true, true));
        assert!(!default_services_apply(true, false));
    }

    #[test]
    fn service_link_sets() {
        let l = service_links(true, false, true);
        assert_eq!(l.len(), 4 + 5 + 3 + 1 + 1);
        assert!(l.contains(&("sysinit", "hwdrivers")));
        assert!(!l.iter().any(|(_, s)| *s == "modloop"));
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
        let moves = media_moves(&media, None, None);
        let to: Vec<_> = moves
            .iter()
            .map(|m| m.to.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            to,
            vec!["/media/usb", "/media/sdb1", "/media/cdrom", "/media/vdc"]
        );
        assert_eq!(moves[0].from, PathBuf::from("/media/sda1"));
    }

    #[test]
    fn overlay_fstab_decides_the_mount_point() {
        let media = [
            medium("sda1", "vfat", Some("ALPINE"), &["apks"], &[]),
            medium("sdb1", "vfat", Some("CFG"), &[], &[]),
        ];
        let fstab = "LABEL=CFG /media/usb vfat noauto,ro 0 0\nLABEL=ALPINE /media/boot vfat noauto 0 0\nUUID=x / tmpfs size=1G 0 0\n";
        let to: Vec<_> = media_moves(&media, Some(fstab), None)
            .into_iter()
            .map(|m| m.to)
            .collect();
        assert_eq!(
            to,
            vec![PathBuf::from("/media/boot"), PathBuf::from("/media/usb")]
        );
        // Mount points outside /media/<name> are not honoured.
        let odd = "LABEL=ALPINE /etc vfat noauto 0 0\n";
        assert_eq!(
            media_moves(&media[..1], Some(odd), None)[0].to,
            PathBuf::from("/media/usb")
        );
        assert_eq!(root_remount_options(fstab).as_deref(), Some("size=1G"));
        assert_eq!(root_remount_options("tmpfs /tmp tmpfs size=1G 0 0\n"), None);
    }

    /// Review finding: a stick that enumerates before the box's own medium took `/media/usb`
    /// (and with it `lbu commit`'s writes), even when the overlay's fstab named the real medium.
    #[test]
    fn a_foreign_stick_takes_neither_the_fstab_mount_point_nor_the_home_name() {
        let media = [
            medium("sda1", "vfat", Some("EVIL"), &["apks"], &[]),
            medium(
                "sdb1",
                "vfat",
                Some("JUMPHOST"),
                &["apks"],
                &["h.apkovl.tar.gz"],
            ),
        ];
        let fstab = "LABEL=JUMPHOST /media/usb vfat noauto,ro 0 0\n";
        let to = |fstab, home| -> Vec<String> {
            media_moves(&media, fstab, home)
                .into_iter()
                .map(|m| m.to.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(to(Some(fstab), None), ["/media/sda1", "/media/usb"]);
        let home = home_medium(&media, Some(Path::new("/media/sdb1/h.apkovl.tar.gz")));
        assert_eq!(home.map(|m| m.name.as_str()), Some("sdb1"));
        assert_eq!(to(None, Some("sdb1")), ["/media/sda1", "/media/usb"]);
        // Without an overlay, the first medium with a boot repository is home.
        assert_eq!(
            home_medium(&media, None).map(|m| m.name.as_str()),
            Some("sda1")
        );
        assert_eq!(home_medium(&media[..0], None), None);
    }

    #[test]
    fn paths_follow_moves() {
        let moves = vec![MediaMove {
            name: "sda1".into(),
            from: "/media/sda1".into(),
            to: "/media/usb".into(),
        }];
        assert_eq!(
            relocate(Path::new("/media/sda1/apks"), &moves),
            PathBuf::from("/media/usb/apks")
        );
        assert_eq!(
            relocate(Path::new("/media/sda10/apks"), &moves),
            PathBuf::from("/media/sda10/apks")
        );
        assert_eq!(
            relocate(Path::new("/media/sda1"), &moves),
            PathBuf::from("/media/usb")
        );
        // Regression: an unmoved medium got "/media/vda/" (trailing slash) in its fstab line.
        let same = vec![MediaMove {
            name: "vda".into(),
            from: "/media/vda".into(),
            to: "/media/vda".into(),
        }];
        assert_eq!(
            relocate(Path::new("/media/vda"), &same).to_str(),
            Some("/media/vda")
        );
    }

    #[test]
    fn fstab_lines_and_update() {
        let usb = medium("sda1", "vfat", Some("MY STICK"), &["apks"], &[]);
        let mut nolabel = medium("sr0", "iso9660", None, &["apks"], &[]);
        nolabel.uuid = Some("2024-01-02-03-04-05-00".into());
        assert_eq!(
            fstab_line(&usb, Path::new("/media/usb")),
            "LABEL=MY\\040STICK /media/usb vfat noauto,ro 0 0"
        );
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
        assert_eq!(
            update_fstab("", &[(&nolabel, Path::new("/media/cdrom"))]).unwrap(),
            format!("{}\n", fstab_line(&nolabel, Path::new("/media/cdrom")))
        );
    }

    #[test]
    fn inittab_and_securetty() {
        let cfg = BootConfig::from_cmdline(
            "console=tty0 console=ttyS0,115200 console=ttyS0 console=hvc0",
        );
        let inittab = "::sysinit:/sbin/openrc sysinit\ntty1::respawn:/sbin/getty 38400 tty1\nhvc0::respawn:/sbin/getty -L hvc0 115200 vt100\n";
        assert_eq!(
            inittab_additions(inittab, &cfg.consoles),
            "# enable login on alternative console\nttyS0::respawn:/sbin/getty -L 0 ttyS0 vt100\n"
        );
        assert_eq!(
            inittab_additions("ttyS0::respawn:/x\n", &cfg.consoles[..2]),
            ""
        );
        assert_eq!(
            securetty_additions("console\ntty1\nhvc0\n", &cfg.consoles),
            vec!["ttyS0"]
        );
        let evil = BootConfig::from_cmdline("console=ttyS0:x");
        assert!(getty_consoles(&evil.consoles).is_empty());
    }

    #[test]
    fn repositories_file_lines() {
        assert_eq!(
            repositories_file(&[
                PathBuf::from("/media/usb/apks"),
                PathBuf::from("/media/cdrom/apks")
            ]),
            "/media/usb/apks\n/media/cdrom/apks\n"
        );
    }

    #[test]
    fn repositories_with_credentials_are_for_root_only() {
        let mode = |r: &[&str]| repositories_mode(&r.iter().map(PathBuf::from).collect::<Vec<_>>());
        assert_eq!(
            mode(&["/media/usb/apks", "http://10.0.2.2/alpine/main"]),
            0o644
        );
        assert_eq!(mode(&[]), 0o644);
        assert_eq!(
            mode(&["/media/usb/apks", "https://fleet:s3cret@10.0.2.2/main"]),
            0o600
        );
        assert_eq!(mode(&["https://TOKEN@10.0.2.2/main"]), 0o600);
        // An `@` in a path is no credential.
        assert_eq!(mode(&["http://10.0.2.2/~user/@repo"]), 0o644);
    }

    #[test]
    fn hostname_unless_overlay_has_one() {
        let cfg = BootConfig::from_cmdline("hostname=fw1");
        assert_eq!(hostname_file(&cfg, None).as_deref(), Some("fw1\n"));
        let files = vec!["etc/".to_string(), "etc/hostname".to_string()];
        assert_eq!(hostname_file(&cfg, Some(&files)), None);
        assert_eq!(
            hostname_file(&cfg, Some(&["etc/motd".to_string()])).as_deref(),
            Some("fw1\n")
        );
        assert_eq!(hostname_file(&BootConfig::default(), None), None);
    }

    #[test]
    fn ssh_key_literal_only() {
        let k = BootConfig::from_cmdline(r#"ssh_key="ssh-ed25519 AAAAC3Nz me@x""#);
        assert_eq!(
            authorized_key(&k).as_deref(),
            Some("ssh-ed25519 AAAAC3Nz me@x\n")
        );
        assert_eq!(
            authorized_key(&BootConfig::from_cmdline("ssh_key=https://x/keys")),
            None
        );
        assert_eq!(
            authorized_key(&BootConfig::from_cmdline("ssh_key=AAAA")),
            None
        );
    }
}
