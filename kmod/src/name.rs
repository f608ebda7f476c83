//! Module names and aliases, compared as kmod compares them.

/// Module file suffixes, longest first: plain, and compressed as depmod lists them.
pub const SUFFIXES: &[&str] = &[".ko.zst", ".ko.gz", ".ko.xz", ".ko"];

/// The file name without its module suffix (`kernel/fs/fat/vfat.ko.zst` -> `vfat`), or `None`
/// when the path does not name a module file.
pub fn module_stem(path: &str) -> Option<&str> {
    let base = path.rsplit('/').next()?;
    SUFFIXES
        .iter()
        .find_map(|s| base.strip_suffix(s))
        .filter(|stem| !stem.is_empty())
}

/// The module name of a path (`kernel/drivers/usb/storage/usb-storage.ko.gz` -> `usb_storage`):
/// the file name without a module suffix, normalised. `None` when the path does not end in
/// `.ko`, `.ko.gz`, `.ko.xz` or `.ko.zst`.
pub fn module_name(path: &str) -> Option<String> {
    module_stem(path).map(normalize)
}

/// Folds `-` into `_`: the kernel and kmod treat both as the same character in module names.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// kmod's `alias_normalize`: `-` becomes `_` except inside `[...]` classes, where it is a range.
/// Applied to every pattern of `modules.alias` and to every lookup, so `crypto-crc32c` (a
/// softdep in Debian's `modules.softdep`) and `crypto_crc32c` name the same alias.
pub fn normalize_alias(alias: &str) -> String {
    let mut out = String::with_capacity(alias.len());
    let mut in_class = false;
    for c in alias.chars() {
        match c {
            '[' => in_class = true,
            ']' => in_class = false,
            _ => {}
        }
        out.push(if c == '-' && !in_class { '_' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_dashes_and_need_a_module_suffix() {
        assert_eq!(
            module_name("kernel/arch/x86/crypto/crc32c-intel.ko").unwrap(),
            "crc32c_intel"
        );
        for suffix in [".ko", ".ko.gz", ".ko.xz", ".ko.zst"] {
            assert_eq!(
                module_name(&format!("a/usb-storage{suffix}")).unwrap(),
                "usb_storage"
            );
        }
        assert_eq!(module_name("vfat.ko").unwrap(), "vfat");
        assert_eq!(module_stem("kernel/fs/fat/vfat.ko.zst"), Some("vfat"));
    }

    /// Regression: the init's copy cut the name at the first `.ko` and accepted any suffix,
    /// mkinitfs's required a module suffix, so the two read one modules.dep differently (a
    /// `foo.ko.bz2` line was module `foo` at boot and an error at build time).
    #[test]
    fn the_case_init_and_mkinitfs_disagreed_on() {
        assert_eq!(module_name("kernel/x/foo.ko.bz2"), None);
        assert_eq!(module_name("kernel/x/foo.kobj.ko").unwrap(), "foo.kobj");
        assert_eq!(module_name("kernel/x/.ko"), None);
        assert_eq!(module_name("kernel/x/foo.o"), None);
        assert_eq!(module_name("8250"), None);
    }

    #[test]
    fn alias_normalisation_keeps_class_ranges() {
        assert_eq!(normalize_alias("a-b[x-z]-c"), "a_b[x-z]_c");
        assert_eq!(normalize_alias("crypto-crc32c"), "crypto_crc32c");
        assert_eq!(
            normalize_alias("pci:v00008086d*sv*sd*bc0Csc03i30*"),
            "pci:v00008086d*sv*sd*bc0Csc03i30*"
        );
        assert_eq!(normalize("usb-storage"), "usb_storage");
    }
}
