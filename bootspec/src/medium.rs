//! Paths on a boot medium, relative to its top level (Alpine's diskless layout).
//!
//! The init examines only the top level of a mounted medium: a directory holding a regular file
//! [`BOOT_REPOSITORY_MARKER`] is a package repository, [`CACHE_DIR`] is the local apk cache, and a
//! non-directory named `HOST.apkovl.tar.gz[...]` is an overlay. `mkimage` writes the same names.

/// The repository directory `mkimage` writes (`apks/`, with the arch below it).
pub const APKS_DIR: &str = "apks";

/// Marker file that makes a top-level directory a boot repository (`apks/.boot_repository`).
pub const BOOT_REPOSITORY_MARKER: &str = ".boot_repository";

/// The marker of the repository `mkimage` writes.
pub const BOOT_REPOSITORY: &str = "apks/.boot_repository";

/// Alpine's local package cache on the medium (`/etc/apk/cache` links here on a booted box).
pub const CACHE_DIR: &str = "cache";

/// Release identification (name and date of the build).
pub const RELEASE_FILE: &str = ".alpine-release";

/// Directory of the kernel, initramfs, modloop and boot loader configurations.
pub const BOOT_DIR: &str = "boot";

/// The kernel.
pub const KERNEL: &str = "boot/vmlinuz";

/// The initramfs.
pub const INITRAMFS: &str = "boot/initramfs";

/// Prefix of the modloop file in [`BOOT_DIR`] (`boot/modloop-<flavor>`, Alpine's name).
pub const MODLOOP_PREFIX: &str = "modloop-";

/// The removable-media EFI boot loader path that UEFI firmware loads without any NVRAM entry.
pub const EFI_BOOT_X64: &str = "EFI/BOOT/BOOTX64.EFI";

/// The certificate (DER) whose key signed the medium's unified kernel image (`mkimage --uki
/// --sb-cert`), for enrolling in the firmware's Secure Boot `db` (KeyTool, the firmware's setup
/// screen, `efi-updatevar`).
pub const SECURE_BOOT_CERT: &str = "EFI/keys/db.der";

/// Suffix of a detached signature file next to the file it signs (`X.sig`).
pub const SIGNATURE_SUFFIX: &str = ".sig";

/// The modloop path for a kernel flavor (`boot/modloop-lts`, `boot/modloop-amd64`, ...).
pub fn modloop(flavor: &str) -> String {
    format!("{BOOT_DIR}/{MODLOOP_PREFIX}{flavor}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modloop_path_is_alpines() {
        assert_eq!(modloop("lts"), "boot/modloop-lts");
        assert!(BOOT_REPOSITORY.starts_with(APKS_DIR));
        assert!(BOOT_REPOSITORY.ends_with(BOOT_REPOSITORY_MARKER));
    }
}
