//! GRUB for UEFI: a standalone `EFI/BOOT/BOOTX64.EFI` made with `grub-mkimage`, with the
//! modules it needs built in (no module directory on the medium, about 650 KB instead of the
//! 10 MB of `grub-mkstandalone`'s all-modules image) and a small embedded configuration that
//! finds the medium by its label and reads `boot/grub/grub.cfg` from it. Searching by label
//! makes the same binary work from the USB image's partition and from the ISO, where the
//! firmware starts GRUB from the El Torito EFI image, not from the ISO 9660 volume.
//! `grub-mkimage` writes the same bytes for the same input, so the medium stays reproducible.

use std::fs;

use super::host::{HostTool, Scratch};
use crate::boot::GRUB_CFG;
use crate::error::{Error, IoResultExt};

/// The image builder (Debian's `grub-common`, with the modules of `grub-efi-amd64-bin`).
pub const GRUB_MKIMAGE: HostTool = HostTool {
    name: "grub-mkimage",
    purpose: "booting on UEFI PCs",
    debian: "grub-common",
    alpine: "grub",
};

/// GRUB's x86_64 EFI modules.
pub const MODULES_DIR: HostTool = HostTool {
    name: "/usr/lib/grub/x86_64-efi/linux.mod",
    purpose: "booting on UEFI PCs",
    debian: "grub-efi-amd64-bin",
    alpine: "grub-efi",
};

/// What the embedded configuration and `grub.cfg` use: partition tables and file systems of
/// the USB image and the ISO, finding by label, the menu, Linux, the serial console and the
/// firmware's framebuffer (for the kernel's console on a screen).
const MODULES: &[&str] = &[
    "part_msdos",
    "part_gpt",
    "fat",
    "iso9660",
    "search",
    "search_label",
    "normal",
    "configfile",
    "linux",
    "echo",
    "test",
    "serial",
    "terminal",
    "sleep",
    "efi_gop",
    "efi_uga",
];

/// The embedded configuration for a medium labelled `label` (letters, digits, `_`, `-`, `.`:
/// nothing GRUB's parser interprets).
pub fn embedded_cfg(label: &str) -> String {
    format!(
        "search --no-floppy --set=root --label {label}\n\
         set prefix=($root)/boot/grub\n\
         configfile ($root)/{GRUB_CFG}\n"
    )
}

/// The EFI binary for a medium labelled `label`.
pub fn efi_binary(label: &str) -> Result<Vec<u8>, Error> {
    let dir =
        std::path::Path::new(MODULES_DIR.file()?.parent().expect("a module path")).to_path_buf();
    let scratch = Scratch::new("grub")?;
    let cfg = scratch.join("embedded.cfg");
    fs::write(&cfg, embedded_cfg(label)).at(&cfg)?;
    let out = scratch.join("BOOTX64.EFI");
    GRUB_MKIMAGE.run(
        GRUB_MKIMAGE
            .command()
            .args(["--format", "x86_64-efi", "--prefix", "/boot/grub"])
            .arg("--directory")
            .arg(&dir)
            .arg("--config")
            .arg(&cfg)
            .arg("--output")
            .arg(&out)
            .args(MODULES),
    )?;
    fs::read(&out).at(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_configuration_finds_the_medium_by_label() {
        assert_eq!(
            embedded_cfg("ALPINE"),
            "search --no-floppy --set=root --label ALPINE\n\
             set prefix=($root)/boot/grub\n\
             configfile ($root)/boot/grub/grub.cfg\n"
        );
    }
}
