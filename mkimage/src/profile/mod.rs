//! Appliance profiles: one directory, one command, one bootable medium (`mkimage --profile DIR`).
//!
//! ```text
//! DIR/profile.toml     the settings (format::Profile; only `world` is required)
//! DIR/rootfs/          files of the appliance as they will be in / (modes kept, owners root)
//! DIR/rootfs.owners    PATH USER[:GROUP] lines for files that are not root's
//! ```
//!
//! [`build`] does every step in-process through the workspace's libraries: the apk core installs
//! the world into a scratch root, the profile's files go over it, lbu's selection (the overlays
//! crate, without lbu's own secrets) packages what differs from the packages as the overlay, the
//! mkinitfs library makes the initramfs holding the index and overlay keys and the boot policy,
//! the modloop is built when asked, and [`crate::build`] writes the medium. See mkimage's README,
//! "Profiles".

mod build;
mod format;
mod keys;
mod rootfs;
mod skeleton;

use std::io::Read;
use std::path::Path;

use crate::error::{Error, IoResultExt};

pub use crate::netboot::{check_hostname, normalize_mac};
pub use build::{build, BuildRequest, BuildSummary};
pub use format::{Encryption, Modloop, Profile as Settings, Signing, PROFILE_TOML};
pub use keys::{generate_keys, Keys, MEDIUM_KEY, OVERLAY_KEY};
pub use rootfs::{Owner, OWNERS_FILE, ROOTFS_DIR};
pub use skeleton::{new_profile, OWNERS_SKELETON, PROFILE_SKELETON};

/// The largest `profile.toml` read (a profile is a page of settings).
const MAX_PROFILE: u64 = 1 << 20;

/// A loaded profile: its settings and the owners of its files.
#[derive(Clone, Debug)]
pub struct Profile {
    /// `profile.toml`.
    pub settings: Settings,
    /// `rootfs.owners`.
    pub owners: Vec<Owner>,
}

impl std::ops::Deref for Profile {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

/// Reads and checks the profile in `dir`.
pub fn load(dir: &Path) -> Result<Profile, Error> {
    if !dir.is_dir() {
        return Err(Error::Profile {
            at: dir.display().to_string(),
            reason: "not a profile directory (mkimage --new-profile DIR makes one)".into(),
        });
    }
    let file = dir.join(PROFILE_TOML);
    let text =
        match read_bounded(&file, MAX_PROFILE) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::Profile {
                at: file.display().to_string(),
                reason:
                    "missing (every profile has one; mkimage --new-profile DIR writes a skeleton)"
                        .into(),
            }),
            Err(e) => return Err(e).at(&file),
        };
    let settings = format::parse(&text, &file, dir)?;
    let owners = rootfs::load_owners(dir)?;
    Ok(Profile { settings, owners })
}

/// A regular file's text, at most `max` bytes (a profile could point it at /dev/zero).
pub(crate) fn read_bounded(path: &Path, max: u64) -> std::io::Result<String> {
    let f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    let mut text = String::new();
    f.take(max).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn err(toml: &str) -> String {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join(PROFILE_TOML), toml).unwrap();
        let e = load(t.path()).unwrap_err().to_string();
        let prefix = format!("{}/profile.toml", t.path().display());
        e.strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{e}"))
            .to_string()
    }

    #[test]
    fn every_key_is_read() {
        let t = tempfile::tempdir().unwrap();
        fs::write(
            t.path().join(PROFILE_TOML),
            r#"world = ["alpine-base", "chrony>=4"]
repositories = ["apks", "https://example.org/alpine/v3.19/main"]
kernel = "6.1.0-28-amd64"
hostname = "fw1"
cmdline = "quiet"
features = ["base", "virtio"]
modules = ["e1000e"]
modloop = ["kernel/sound/*"]
formats = ["iso", "vfat"]
label = "FW1"
size = "128M"
signing = "required"
encryption = "none"
[hosts]
"52-54-00-AB-CD-EF" = "fw2"
"#,
        )
        .unwrap();
        let p = load(t.path()).unwrap();
        assert_eq!(p.world.len(), 2);
        let repos = p.repositories.as_ref().unwrap();
        assert_eq!(repos.len(), 2);
        assert!(!repos[0].is_remote());
        assert!(repos[1].is_remote());
        assert_eq!(p.kernel.as_deref(), Some("6.1.0-28-amd64"));
        assert_eq!(p.hostname.as_deref(), Some("fw1"));
        assert_eq!(p.cmdline.as_deref(), Some("quiet"));
        assert_eq!(
            p.features.as_deref(),
            Some(&["base".to_string(), "virtio".into()][..])
        );
        assert_eq!(p.modules, ["e1000e"]);
        assert_eq!(p.modloop, Modloop::Excluding(vec!["kernel/sound/*".into()]));
        assert_eq!(p.formats, [crate::Format::Iso, crate::Format::Vfat]);
        assert_eq!(p.label.as_deref(), Some("FW1"));
        assert_eq!(p.size, Some(128 << 20));
        assert_eq!(p.signing, Signing::Required);
        assert_eq!(p.encryption, Encryption::None);
        assert_eq!(
            p.hosts.get("52:54:00:ab:cd:ef").map(String::as_str),
            Some("fw2")
        );

        fs::write(
            t.path().join(PROFILE_TOML),
            "world = [\"alpine-base\"]\nmodloop = true\n",
        )
        .unwrap();
        let p = load(t.path()).unwrap();
        assert_eq!(p.modloop, Modloop::Excluding(vec![]));
        assert_eq!(p.signing, Signing::Required);
        assert_eq!(p.encryption, Encryption::None);
        assert_eq!(p.formats, [crate::Format::Vfat]);
        assert!(p.repositories.is_none());

        fs::write(
            t.path().join(PROFILE_TOML),
            "world = [\"alpine-base\"]\nsigning = \"none\"\n",
        )
        .unwrap();
        assert_eq!(load(t.path()).unwrap().signing, Signing::None);
    }

    #[test]
    fn bad_profiles_name_the_key_and_line() {
        assert_eq!(
            err("world = [\"alpine-base\"]\n\nwrold = 1\n"),
            ":3: unknown key `wrold`, expected one of `world`, `repositories`, `kernel`, `hostname`, `cmdline`, `features`, `modules`, `modloop`, `formats`, `label`, `size`, `signing`, `encryption`, `hosts`"
        );
        assert_eq!(err("hostname = \"a\"\n"), ": missing key `world`");
        assert_eq!(
            err("world = []\n"),
            ":1: world: must name at least one package"
        );
        assert_eq!(
            err("world = [\"alpine-base\"]\nlabel = \"MY LABEL\"\n"),
            ":2: label: \"MY LABEL\": use letters, digits, '_' and '-' only for vfat"
        );
        assert_eq!(
            err("world = [\"alpine-base\"]\nlabel = \"JUMPHOST-2026\"\n"),
            ":2: label: \"JUMPHOST-2026\" is 13 characters; vfat labels hold at most 11"
        );
        // An ISO label may be longer, unless the profile is also built as vfat.
        let t = tempfile::tempdir().unwrap();
        fs::write(
            t.path().join(PROFILE_TOML),
            "world = [\"alpine-base\"]\nformats = [\"iso\"]\nlabel = \"JUMPHOST-2026.1\"\n",
        )
        .unwrap();
        assert_eq!(
            load(t.path()).unwrap().label.as_deref(),
            Some("JUMPHOST-2026.1")
        );
        assert_eq!(
            err("world = [\"alpine-base\"]\nformats = [\"iso\", \"vfat\"]\nlabel = \"JUMPHOST-2026.1\"\n"),
            ":3: label: \"JUMPHOST-2026.1\": use letters, digits, '_' and '-' only for vfat"
        );
        assert_eq!(
            err("world = [\"alpine-base\"]\nformats = [\"usb\"]\n"),
            ":2: formats: \"usb\": expected vfat, iso, dir or netboot"
        );
        assert_eq!(
            err("world = [\"alpine-base\"]\nhostname = \"fw_1\"\n"),
            ":2: hostname \"fw_1\": use letters, digits, '-' and '.' only"
        );
        assert_eq!(
            err("world = [\"alpine-base\"]\nsize = \"10M\"\n"),
            ":2: size \"10M\": out of range, from 64M to 2T for FAT32"
        );
        assert_eq!(
            err("world = [\"alpine-base\"]\nsigning = \"maybe\"\n"),
            ":2: signing \"maybe\": expected \"required\" (the default) or \"none\""
        );
        assert_eq!(
            err("world = [\"alpine-base\"]\nencryption = \"age\"\n"),
            ":2: encryption \"age\": expected \"none\" (the default) or \"passphrase\" (typed at boot; mkimage --ovl-passphrase-file FILE)"
        );
        // Per-MAC overlays are signed for their MAC, or the binding means nothing.
        assert_eq!(
            err("world = [\"alpine-base\"]\nsigning = \"none\"\n[hosts]\n\"52:54:00:ab:cd:ef\" = \"fw2\"\n"),
            ":3: hosts: needs signing = \"required\": each machine's overlay is signed for its MAC, unsigned ones would boot on any machine"
        );
        assert_eq!(
            err("world = [\"alpine-base\"]\n[hosts]\n\"52:54:00\" = \"a\"\n"),
            ":2: hosts: \"52:54:00\" is not a MAC address (aa:bb:cc:dd:ee:ff)"
        );
        assert!(err("world = [\"alpine-base\", \"!!\"]\n").starts_with(":1: world: "));
        assert!(err("world = [\"a\"]\ncmdline = \"quiet\\nsingle\"\n")
            .starts_with(":2: cmdline: contains the control character"));
        assert!(err("world = \"alpine-base\"\n")
            .starts_with(":1: invalid type: string \"alpine-base\", expected a sequence"));
        assert!(err("world = [\n").starts_with(":"));
    }

    #[test]
    fn missing_or_odd_profile_files_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let e = load(&t.path().join("nope")).unwrap_err().to_string();
        assert!(
            e.ends_with("nope: not a profile directory (mkimage --new-profile DIR makes one)"),
            "{e}"
        );
        let e = load(t.path()).unwrap_err().to_string();
        assert!(e.ends_with("profile.toml: missing (every profile has one; mkimage --new-profile DIR writes a skeleton)"), "{e}");
        fs::create_dir(t.path().join(PROFILE_TOML)).unwrap();
        assert!(load(t.path()).is_err());
    }

    #[test]
    fn hostnames_and_macs() {
        assert!(check_hostname("jumphost").is_ok());
        assert!(check_hostname("fw-1.example.org").is_ok());
        for bad in ["", "-a", "a-", "a..b", "a b", &"x".repeat(64)] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
        assert_eq!(
            normalize_mac("52:54:00:AB:cd:EF").as_deref(),
            Some("52:54:00:ab:cd:ef")
        );
        assert_eq!(
            normalize_mac("52-54-00-ab-cd-ef").as_deref(),
            Some("52:54:00:ab:cd:ef")
        );
        assert_eq!(normalize_mac("52:54:00:ab:cd"), None);
        assert_eq!(normalize_mac("52:54:00:ab:cd:eg"), None);
    }
}
