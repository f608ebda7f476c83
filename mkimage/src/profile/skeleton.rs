//! `mkimage --new-profile DIR`: a commented skeleton to start an appliance from. Every key of
//! `profile.toml` is shown, the optional ones commented out with their defaults, so the file is
//! also the format's reference. Written under `DIR.tmp` and renamed: nothing half-written.

use std::fs;
use std::path::Path;

use crate::error::{Error, IoResultExt};
use crate::output::TempPath;

use super::format::PROFILE_TOML;
use super::rootfs::{OWNERS_FILE, ROOTFS_DIR};

/// The `profile.toml` of a new profile.
pub const PROFILE_SKELETON: &str = r#"# An appliance profile for mkimage (mkimage --profile DIR -o OUT builds it).
# Only `world` is required; every other key shows its default, commented out.

# Packages installed at every boot (apk world syntax: name, name>=1.2, name@tag).
world = ["alpine-base"]

# Where packages come from: directories (DIR/<arch>/APKINDEX.tar.gz, relative to this profile)
# or http(s):// URLs. Default: the --mirror values given on the command line.
#repositories = ["https://dl-cdn.alpinelinux.org/alpine/v3.19/main"]

# Kernel version: /boot/vmlinuz-VER and /lib/modules/VER of the build host. Default: the newest.
#kernel = "6.1.0-28-amd64"

# Host name of the appliance (written to /etc/hostname in the overlay). Default: none (the
# overlay keeps what rootfs/etc/hostname says, else Alpine's "localhost").
#hostname = "appliance"

# Kernel command line of the boot menu (modloop= is added when `modloop` is set).
#cmdline = "quiet"

# mkinitfs features of the initramfs, and more kernel modules for it.
#features = ["base", "virtio", "ata", "scsi", "nvme", "usb", "mmc", "cdrom", "ext4", "vfat", "squashfs", "network"]
#modules = []

# The kernel's modules and firmware as a signed squashfs beside the kernel: true, or a list of
# globs to leave out (relative to lib/modules/VER, e.g. "kernel/sound/*"). Default: false.
#modloop = false

# Formats this profile is built into (the first one is what mkimage builds without --format):
# vfat (a USB image), iso, dir (a tree), netboot (a tree for a web server).
#formats = ["vfat"]

# Volume label (vfat: at most 11 of A-Z a-z 0-9 _ -; iso: 32, dots allowed).
#label = "ALPINE"

# Size of the vfat image (e.g. 256M, 1G). Default: content + 25 % + 8 MiB, at least 64M.
#size = "256M"

# The overlay is signed with --ovl-key and the initramfs refuses any other ("required"), or
# travels unsigned ("none"). Encryption "passphrase" encrypts it to the first line of
# --ovl-passphrase-file FILE, asked on the console at every boot.
#signing = "required"
#encryption = "none"

# netboot: MAC address -> host name, one overlay per machine.
#[hosts]
#"52:54:00:12:34:56" = "gateway1"
"#;

/// `rootfs.owners` of a new profile.
pub const OWNERS_SKELETON: &str = "\
# Owners of rootfs/ files that are not root:root, one per line: PATH USER[:GROUP]
# (names from the installed system's /etc/passwd and /etc/group, or numbers).
#etc/chrony/chrony.keys chrony:chrony
";

/// `rootfs/etc/motd` of a new profile (an example file of the overlay).
pub const MOTD_SKELETON: &str = "Welcome to an alpine-diskless appliance.\n";

/// Writes a new profile at `dir`, which must not exist yet.
pub fn new_profile(dir: &Path) -> Result<(), Error> {
    if fs::symlink_metadata(dir).is_ok() {
        return Err(Error::Input {
            option: "--new-profile",
            path: dir.to_path_buf(),
            reason: "already exists (a new profile is written into a new directory)".into(),
        });
    }
    let tmp = TempPath::beside(dir, ".tmp")?;
    let root = tmp.path();
    fs::create_dir(root).at(root)?;
    let etc = root.join(ROOTFS_DIR).join("etc");
    fs::create_dir_all(&etc).at(&etc)?;
    for (path, text) in [
        (root.join(PROFILE_TOML), PROFILE_SKELETON),
        (root.join(OWNERS_FILE), OWNERS_SKELETON),
        (etc.join("motd"), MOTD_SKELETON),
    ] {
        fs::write(&path, text).at(&path)?;
    }
    tmp.commit(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeleton_is_a_valid_profile_with_every_key() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("fw");
        new_profile(&dir).unwrap();
        let p = super::super::load(&dir).unwrap();
        assert_eq!(p.world.len(), 1);
        assert_eq!(p.world[0].name.as_str(), "alpine-base");
        assert!(p.owners.is_empty());
        assert_eq!(
            fs::read_to_string(dir.join("rootfs/etc/motd")).unwrap(),
            MOTD_SKELETON
        );
        // Every key is documented: uncommenting them all still parses.
        let all: String = PROFILE_SKELETON
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest)
                    if rest.contains(" = ") || rest.starts_with('[') || rest.starts_with('"') =>
                {
                    rest
                }
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let p = super::super::format::parse(&all, Path::new("profile.toml"), &dir).unwrap();
        assert_eq!(p.hostname.as_deref(), Some("appliance"));
        assert_eq!(p.hosts.len(), 1);
        assert_eq!(p.size, Some(256 << 20));
        // The directory exists now: a second run refuses it and changes nothing.
        let err = new_profile(&dir).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
    }
}
