//! The modloop decisions (docs/boot.md, "Modloop"): which file, what verification is required,
//! what a failure means for the boot, and what the new root gets linked.
//!
//! Alpine's rules for finding it: `modloop=none` skips; `modloop=PATH` is a path relative to the
//! top of a boot medium (the first medium holding it wins); a URL is downloaded (netboot); without
//! the parameter the files of `/boot/` then `/` of each medium are examined. Alpine's service asks
//! blkid for squashfs images among all of them; the init takes the files named `modloop-*` (what
//! `mkimage` and Alpine's `update-kernel` write) and, when several are found, the one whose signed
//! kernel version is the running kernel's.
//!
//! Trust differs from Alpine on purpose: Alpine's `modloop_verify` only prints an error and mounts
//! the image anyway. Here a modloop is mounted only when a key of the initramfs's
//! `etc/apk/keys` signed exactly its bytes ([`bootspec::modloop`]). The command line can only
//! tighten this: `modloop_verify=required` makes a refused (or missing) modloop stop the boot;
//! `modloop_verify=no` is honoured only by an initramfs that holds no keys at all.
use std::path::{Component, Path, PathBuf};

use crate::cmdline::{ModloopSpec, ModloopVerify};

/// Where to look for the modloop, decided from `modloop=` and the media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// No modloop is wanted (`modloop=none`).
    Skipped,
    /// A URL to download first (netboot).
    Url(String),
    /// Candidate files, best first.
    Files(Vec<PathBuf>),
    /// Nothing found; the text says what was looked for.
    NotFound(String),
}

/// Finds the modloop candidates. `media` are the mount points of the boot media, the home medium
/// first ([`home_first`]), `list` the sorted names of a directory (empty when it does not exist),
/// `is_file` whether a path is a regular file. Every medium's candidates are returned, in media
/// order: the boot tries them in turn and mounts the first that verifies, so a stick plugged in
/// beside the medium cannot displace its modloop with a file that does not verify.
pub fn locate(
    spec: Option<&ModloopSpec>,
    media: &[PathBuf],
    list: &dyn Fn(&Path) -> Vec<String>,
    is_file: &dyn Fn(&Path) -> bool,
) -> Located {
    match spec {
        Some(ModloopSpec::None) => Located::Skipped,
        Some(ModloopSpec::Url(url)) => Located::Url(url.clone()),
        Some(ModloopSpec::Path(path)) => {
            let Some(rel) = relative_on_medium(path) else {
                return Located::NotFound(format!(
                    "modloop={path}: the path must stay on the medium (no ..)"
                ));
            };
            let found: Vec<PathBuf> = media
                .iter()
                .map(|m| m.join(&rel))
                .filter(|p| is_file(p))
                .collect();
            if found.is_empty() {
                Located::NotFound(format!("modloop={path}: not found on the boot media"))
            } else {
                Located::Files(found)
            }
        }
        None => {
            let mut found = Vec::new();
            for m in media {
                for dir in [m.join(bootspec::medium::BOOT_DIR), m.clone()] {
                    found.extend(
                        list(&dir)
                            .into_iter()
                            .filter(|n| is_modloop_name(n))
                            .map(|n| dir.join(n))
                            .filter(|p| is_file(p)),
                    );
                }
            }
            if found.is_empty() {
                Located::NotFound("no modloop-* in /boot/ or / of the boot media".into())
            } else {
                Located::Files(found)
            }
        }
    }
}

/// `modloop-<flavor>`, not its signature.
pub fn is_modloop_name(name: &str) -> bool {
    name.len() > bootspec::medium::MODLOOP_PREFIX.len()
        && name.starts_with(bootspec::medium::MODLOOP_PREFIX)
        && !name.ends_with(bootspec::medium::SIGNATURE_SUFFIX)
}

/// The signature file of a modloop (`X.sig`).
pub fn signature_path(image: &Path) -> PathBuf {
    let mut s = image.as_os_str().to_owned();
    s.push(bootspec::medium::SIGNATURE_SUFFIX);
    PathBuf::from(s)
}

/// `modloop=` path as a relative path on a medium: leading `/` dropped, `.` ignored, `..` refused.
fn relative_on_medium(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The mount points of the media, the home medium's first (the one holding the overlay, else
/// the first with a boot repository: `plan::home_medium`), the others in discovery order.
pub fn home_first(media: &[(PathBuf, String)], home: Option<&str>) -> Vec<PathBuf> {
    let (mut first, rest): (Vec<_>, Vec<_>) = media
        .iter()
        .partition(|(_, name)| Some(name.as_str()) == home);
    first.extend(rest);
    first.into_iter().map(|(p, _)| p.clone()).collect()
}

/// The order in which candidates are tried (with the kernel version their signature names, if
/// readable): those built for the running kernel first, then the others, each group in the
/// given order (the home medium's first).
pub fn order(candidates: Vec<(PathBuf, Option<String>)>, running: Option<&str>) -> Vec<PathBuf> {
    let (mut first, rest): (Vec<_>, Vec<_>) = candidates
        .into_iter()
        .partition(|(_, k)| running.is_some() && k.as_deref() == running);
    first.extend(rest);
    first.into_iter().map(|(p, _)| p).collect()
}

/// The effective verification policy of the modloop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModloopPolicy {
    /// A valid signature is needed to mount it.
    pub require_signature: bool,
    /// A modloop that is missing or refused stops the boot (`modloop_verify=required`).
    pub fatal: bool,
    /// What the command line asked for and was not honoured.
    pub warning: Option<String>,
}

/// Combines `modloop_verify=` with whether the initramfs holds keys (`etc/apk/keys`).
pub fn modloop_policy(verify: ModloopVerify, keys_present: bool) -> ModloopPolicy {
    match (verify, keys_present) {
        (ModloopVerify::Required, _) => ModloopPolicy {
            require_signature: true,
            fatal: true,
            warning: None,
        },
        (ModloopVerify::Yes, _) => ModloopPolicy {
            require_signature: true,
            fatal: false,
            warning: None,
        },
        (ModloopVerify::No, true) => ModloopPolicy {
            require_signature: true,
            fatal: false,
            warning: Some(
                "modloop_verify=no ignored: the initramfs holds keys, so the modloop must verify \
                 to be mounted"
                    .into(),
            ),
        },
        (ModloopVerify::No, false) => ModloopPolicy {
            require_signature: false,
            fatal: false,
            warning: None,
        },
    }
}

/// The warning for a modloop built for another kernel (`None` when they match or either is
/// unknown).
pub fn kernel_mismatch(modloop: &str, running: Option<&str>) -> Option<String> {
    let running = running?;
    (modloop != running).then(|| {
        format!(
            "the modloop holds modules for kernel {modloop}, the running kernel is {running}: \
             modprobe will not find its modules"
        )
    })
}

/// What the new root's `/lib/modules` or `/lib/firmware` should become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    /// Create the symbolic link.
    Link,
    /// An empty directory is in the way: remove it, then link.
    ReplaceEmptyDir,
    /// Something with content is there: leave it (and say so).
    Keep,
}

/// `None`: nothing there; `Some(n)`: a directory with `n` entries (anything that is not a
/// directory is passed as one entry, so it is kept).
pub fn link_action(existing_dir_entries: Option<usize>) -> LinkAction {
    match existing_dir_entries {
        None => LinkAction::Link,
        Some(0) => LinkAction::ReplaceEmptyDir,
        Some(_) => LinkAction::Keep,
    }
}

/// The new root's links to the mounted modloop, as Alpine's `modloop` service makes them:
/// `(path in the new root, target)`; firmware only when the modloop carries some.
pub fn new_root_links(has_firmware: bool) -> Vec<(&'static str, String)> {
    let mut v = vec![(
        "lib/modules",
        format!(
            "/{}/{}",
            bootspec::modloop::MOUNT_POINT,
            bootspec::modloop::MODULES_DIR
        ),
    )];
    if has_firmware {
        v.push(("lib/firmware", "/lib/modules/firmware".to_string()));
    }
    v
}

/// OpenRC's own `modloop` service would mount the modloop a second time, unverified (it also
/// mounts an image that fails its check): its runlevel links are removed from the new root,
/// whichever runlevel the defaults or the overlay put it in. `runlevels` maps each runlevel to
/// its service names; the result is the links to remove.
pub fn openrc_modloop_links(runlevels: &[(String, Vec<String>)]) -> Vec<String> {
    runlevels
        .iter()
        .filter(|(_, services)| services.iter().any(|s| s == OPENRC_SERVICE))
        .map(|(level, _)| format!("etc/runlevels/{level}/{OPENRC_SERVICE}"))
        .collect()
}

/// Alpine's OpenRC service that this phase replaces.
pub const OPENRC_SERVICE: &str = "modloop";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn tree(files: &[&str]) -> (BTreeMap<PathBuf, Vec<String>>, Vec<PathBuf>) {
        let mut dirs: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
        let mut all = Vec::new();
        for f in files {
            let p = PathBuf::from(f);
            dirs.entry(p.parent().unwrap().to_path_buf())
                .or_default()
                .push(p.file_name().unwrap().to_string_lossy().into_owned());
            all.push(p);
        }
        for v in dirs.values_mut() {
            v.sort();
        }
        (dirs, all)
    }

    fn locate_in(spec: Option<&ModloopSpec>, media: &[&str], files: &[&str]) -> Located {
        let (dirs, all) = tree(files);
        let media: Vec<PathBuf> = media.iter().map(PathBuf::from).collect();
        locate(
            spec,
            &media,
            &|d| dirs.get(d).cloned().unwrap_or_default(),
            &|p| all.iter().any(|f| f == p),
        )
    }

    #[test]
    fn none_skips_and_url_is_left_to_the_network() {
        assert_eq!(
            locate_in(
                Some(&ModloopSpec::None),
                &["/media/vda1"],
                &["/media/vda1/boot/modloop-lts"]
            ),
            Located::Skipped
        );
        let url = ModloopSpec::Url("http://10.0.2.2/modloop-lts".into());
        assert_eq!(
            locate_in(Some(&url), &["/media/vda1"], &[]),
            Located::Url("http://10.0.2.2/modloop-lts".into())
        );
    }

    #[test]
    fn a_path_is_relative_to_each_medium_in_turn() {
        let spec = ModloopSpec::Path("/boot/modloop-lts".into());
        assert_eq!(
            locate_in(
                Some(&spec),
                &["/media/sr0", "/media/vda1"],
                &["/media/vda1/boot/modloop-lts"]
            ),
            Located::Files(vec!["/media/vda1/boot/modloop-lts".into()])
        );
        assert!(matches!(
            locate_in(Some(&spec), &["/media/sr0"], &[]),
            Located::NotFound(m) if m == "modloop=/boot/modloop-lts: not found on the boot media"
        ));
        let escape = ModloopSpec::Path("/boot/../../etc/modloop".into());
        assert!(matches!(
            locate_in(Some(&escape), &["/media/vda1"], &["/etc/modloop"]),
            Located::NotFound(m) if m.contains("must stay on the medium")
        ));
    }

    #[test]
    fn without_the_parameter_boot_then_top_level_of_each_medium() {
        let found = locate_in(
            None,
            &["/media/vda1", "/media/sr0"],
            &[
                "/media/vda1/modloop-virt",
                "/media/vda1/boot/modloop-lts",
                "/media/vda1/boot/modloop-lts.sig",
                "/media/vda1/boot/vmlinuz",
                "/media/sr0/boot/modloop-",
                "/media/sr0/boot/modloop-edge",
            ],
        );
        assert_eq!(
            found,
            Located::Files(vec![
                "/media/vda1/boot/modloop-lts".into(),
                "/media/vda1/modloop-virt".into(),
                "/media/sr0/boot/modloop-edge".into(),
            ])
        );
        assert!(matches!(
            locate_in(None, &["/media/vda1"], &["/media/vda1/boot/vmlinuz"]),
            Located::NotFound(_)
        ));
    }

    #[test]
    fn the_running_kernels_modloop_wins() {
        let c = vec![
            ("/a".into(), Some("6.1.0-9-amd64".to_string())),
            ("/b".into(), None),
            ("/c".into(), Some("6.1.0-13-amd64".to_string())),
        ];
        let paths = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(
            order(c.clone(), Some("6.1.0-13-amd64")),
            paths(&["/c", "/a", "/b"])
        );
        assert_eq!(order(c.clone(), Some("6.6.0")), paths(&["/a", "/b", "/c"]));
        assert_eq!(order(c, None), paths(&["/a", "/b", "/c"]));
        assert!(order(Vec::new(), None).is_empty());
    }

    /// Review finding: the first medium in device order holding `modloop=PATH` won, and only
    /// that one was verified: a stick enumerated before the medium, with a junk modloop, left
    /// the box without its modules. The home medium comes first and every copy is a candidate.
    #[test]
    fn the_home_mediums_modloop_comes_first_and_every_copy_is_a_candidate() {
        let media = [
            (PathBuf::from("/media/sda"), "sda".to_string()),
            (PathBuf::from("/media/usb"), "vda1".to_string()),
        ];
        let ordered = home_first(&media, Some("vda1"));
        assert_eq!(
            ordered,
            [PathBuf::from("/media/usb"), PathBuf::from("/media/sda")]
        );
        assert_eq!(home_first(&media, None)[0], PathBuf::from("/media/sda"));
        let spec = ModloopSpec::Path("/boot/modloop-lts".into());
        let ordered: Vec<&str> = ordered.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(
            locate_in(
                Some(&spec),
                &ordered,
                &["/media/sda/boot/modloop-lts", "/media/usb/boot/modloop-lts"]
            ),
            Located::Files(vec![
                "/media/usb/boot/modloop-lts".into(),
                "/media/sda/boot/modloop-lts".into()
            ])
        );
    }

    #[test]
    fn the_command_line_only_tightens() {
        let p = modloop_policy(ModloopVerify::Yes, true);
        assert!(p.require_signature && !p.fatal && p.warning.is_none());
        let p = modloop_policy(ModloopVerify::Required, true);
        assert!(p.require_signature && p.fatal);
        let p = modloop_policy(ModloopVerify::Required, false);
        assert!(p.require_signature && p.fatal);
        // `no` never mounts an unverified modloop when the image holds keys.
        let p = modloop_policy(ModloopVerify::No, true);
        assert!(p.require_signature && !p.fatal);
        assert!(p.warning.unwrap().contains("ignored"));
        // Without keys the default still refuses; only `no` mounts unsigned.
        assert!(modloop_policy(ModloopVerify::Yes, false).require_signature);
        assert!(!modloop_policy(ModloopVerify::No, false).require_signature);
    }

    #[test]
    fn kernel_mismatch_warns() {
        assert_eq!(
            kernel_mismatch("6.1.0-13-amd64", Some("6.1.0-13-amd64")),
            None
        );
        assert_eq!(kernel_mismatch("6.1.0-13-amd64", None), None);
        let w = kernel_mismatch("6.1.0-9-amd64", Some("6.1.0-13-amd64")).unwrap();
        assert!(w.contains("6.1.0-9-amd64") && w.contains("running kernel is 6.1.0-13-amd64"));
    }

    #[test]
    fn links_like_alpines_service() {
        assert_eq!(
            new_root_links(true),
            vec![
                ("lib/modules", "/.modloop/modules".to_string()),
                ("lib/firmware", "/lib/modules/firmware".to_string())
            ]
        );
        assert_eq!(new_root_links(false).len(), 1);
        assert_eq!(link_action(None), LinkAction::Link);
        assert_eq!(link_action(Some(0)), LinkAction::ReplaceEmptyDir);
        assert_eq!(link_action(Some(3)), LinkAction::Keep);
    }

    #[test]
    fn openrc_service_links_are_found_in_any_runlevel() {
        let levels = vec![
            (
                "sysinit".to_string(),
                vec!["devfs".to_string(), "modloop".to_string()],
            ),
            ("boot".to_string(), vec!["modules".to_string()]),
            ("default".to_string(), vec!["modloop".to_string()]),
        ];
        assert_eq!(
            openrc_modloop_links(&levels),
            vec![
                "etc/runlevels/sysinit/modloop",
                "etc/runlevels/default/modloop"
            ]
        );
        assert!(openrc_modloop_links(&[]).is_empty());
    }

    #[test]
    fn signature_is_beside_the_file() {
        assert_eq!(
            signature_path(Path::new("/media/vda1/boot/modloop-lts")),
            PathBuf::from("/media/vda1/boot/modloop-lts.sig")
        );
        assert!(is_modloop_name("modloop-lts"));
        assert!(!is_modloop_name("modloop-lts.sig"));
        assert!(!is_modloop_name("modloop-"));
    }
}
