//! Paths inside the initramfs (relative to its root, no leading `/`), written by `mkinitfs` and
//! read by the init.

/// Public keys that verify package indexes (and the modloop, which `mkimage` signs with the
/// medium key): PEM, matched by file name as apk-tools does.
pub const APK_KEYS: &str = "etc/apk/keys";

/// Public ed25519 keys that verify overlay signatures.
pub const APKOVL_KEYS: &str = "etc/apkovl/keys";

/// An age identity that decrypts overlays encrypted to its recipient (`mkinitfs --ovl-identity`).
/// Whoever can read the medium can read such overlays: see the trust model in the README.
pub const APKOVL_IDENTITY: &str = "etc/apkovl/identity";

/// The boot policy ([`crate::policy::BootPolicy`]) the image was built with.
pub const POLICY: &str = "etc/boot-policy";

/// The exact kernel command line a sealed image was signed with (one line of text, no
/// newline): `mkimage --uki` writes it next to a [`POLICY`] that says `sealed=yes`, and the init
/// of a sealed image refuses to boot with any other `/proc/cmdline` (docs/boot.md, "Sealed
/// images").
pub const SIGNED_CMDLINE: &str = "etc/boot-cmdline";

/// Where systemd's EFI stub puts the credentials and system extensions it picks up, unsigned,
/// from the EFI system partition (`/.extra/credentials`, `/.extra/sysext`). A sealed image
/// ignores them: nothing there is covered by the image's signature.
pub const STUB_EXTRA_DIR: &str = ".extra";

/// Modules the init loads before media discovery (Alpine's `/etc/modules`).
pub const MODULES_LIST: &str = "etc/modules";

/// The kernel modules directory (`lib/modules/<kver>`).
pub const MODULES_DIR: &str = "lib/modules";

/// Firmware files for the embedded modules.
pub const FIRMWARE_DIR: &str = "lib/firmware";

/// CA certificates for HTTPS at boot (netboot), in the layout Alpine's `ca-certificates` uses.
pub const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// The rescue shell (busybox, with the `rescue` feature).
pub const SHELL: &str = "bin/sh";

/// The init's absolute path of an initramfs path (`etc/apk/keys` -> `/etc/apk/keys`).
pub fn absolute(path: &str) -> String {
    format!("/{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_and_absolute_adds_one_slash() {
        for p in [
            APK_KEYS,
            APKOVL_KEYS,
            APKOVL_IDENTITY,
            POLICY,
            SIGNED_CMDLINE,
            STUB_EXTRA_DIR,
            MODULES_LIST,
            CA_BUNDLE,
        ] {
            assert!(!p.starts_with('/') && !p.ends_with('/'), "{p}");
        }
        assert_eq!(absolute(APKOVL_KEYS), "/etc/apkovl/keys");
    }
}
