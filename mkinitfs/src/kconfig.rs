//! The few kernel config values the image depends on, read from the kernel's config file.
//!
//! A vfat mount without `codepage=`/`iocharset=` options makes the kernel load the NLS tables named
//! by `CONFIG_FAT_DEFAULT_CODEPAGE` and `CONFIG_FAT_DEFAULT_IOCHARSET` (Debian: `nls_cp437` and
//! `nls_ascii`, both modules); without them the mount fails. We look for the
//! config at `boot/config-<kver>`, then `lib/modules/<kver>/config`, then
//! `lib/modules/<kver>/build/.config` under the base directory.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoResultExt};
use crate::root::Root;

/// The kernel's FAT defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatDefaults {
    /// `CONFIG_FAT_DEFAULT_CODEPAGE` (437 unless configured).
    pub codepage: u32,
    /// `CONFIG_FAT_DEFAULT_IOCHARSET` (`iso8859-1` unless configured).
    pub iocharset: String,
    /// The config file the values came from, or None if no config was found (kernel defaults).
    pub source: Option<PathBuf>,
}

impl FatDefaults {
    /// The NLS module names a default vfat mount needs (`nls_cp437`, `nls_ascii`); `utf8` maps to
    /// `nls_utf8`, and dashes become underscores as in module names.
    pub fn nls_modules(&self) -> Vec<String> {
        vec![
            format!("nls_cp{}", self.codepage),
            format!("nls_{}", self.iocharset.replace('-', "_")),
        ]
    }
}

/// Candidate config paths for `kver` relative to the base directory, in search order.
pub fn config_paths(kver: &str) -> Vec<String> {
    vec![
        format!("boot/config-{kver}"),
        format!("lib/modules/{kver}/config"),
        format!("lib/modules/{kver}/build/.config"),
    ]
}

/// Reads the FAT defaults of kernel `kver`; the kernel's built-in defaults when no config exists.
/// Paths resolve inside the base directory (`build` is usually a link to the kernel headers).
pub fn fat_defaults(basedir: &Path, kver: &str) -> Result<FatDefaults, Error> {
    let root = Root::new(basedir)?;
    for rel in config_paths(kver) {
        let Some((real, meta)) = root.resolve(&rel)? else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let path = root.host(&real);
        let bytes = fs::read(&path).at(&path)?;
        let text = String::from_utf8_lossy(&bytes);
        return Ok(parse_fat_defaults(&text, Some(path)));
    }
    Ok(parse_fat_defaults("", None))
}

/// Parses the FAT defaults out of kernel config text.
pub fn parse_fat_defaults(text: &str, source: Option<PathBuf>) -> FatDefaults {
    let mut out = FatDefaults {
        codepage: 437,
        iocharset: "iso8859-1".into(),
        source,
    };
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("CONFIG_FAT_DEFAULT_CODEPAGE=") {
            if let Ok(n) = v.trim().parse() {
                out.codepage = n;
            }
        } else if let Some(v) = line.strip_prefix("CONFIG_FAT_DEFAULT_IOCHARSET=") {
            let v = v.trim().trim_matches('"');
            // Only plain charset names: the value becomes a module name.
            if !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                out.iocharset = v.to_string();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_values() {
        let d = parse_fat_defaults(
            "# c\nCONFIG_FAT_DEFAULT_CODEPAGE=437\nCONFIG_FAT_DEFAULT_IOCHARSET=\"ascii\"\n",
            None,
        );
        assert_eq!(d.nls_modules(), vec!["nls_cp437", "nls_ascii"]);
        let d = parse_fat_defaults(
            "CONFIG_FAT_DEFAULT_CODEPAGE=850\nCONFIG_FAT_DEFAULT_IOCHARSET=\"iso8859-15\"\n",
            None,
        );
        assert_eq!(d.nls_modules(), vec!["nls_cp850", "nls_iso8859_15"]);
    }

    #[test]
    fn kernel_defaults_without_config() {
        let tmp = tempfile::tempdir().unwrap();
        let d = fat_defaults(tmp.path(), "1.0").unwrap();
        assert_eq!(d.nls_modules(), vec!["nls_cp437", "nls_iso8859_1"]);
        assert!(d.source.is_none());
    }

    #[test]
    fn search_order_prefers_boot_config() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path();
        fs::create_dir_all(b.join("boot")).unwrap();
        fs::create_dir_all(b.join("lib/modules/1.0")).unwrap();
        fs::write(
            b.join("lib/modules/1.0/config"),
            "CONFIG_FAT_DEFAULT_CODEPAGE=850\n",
        )
        .unwrap();
        assert_eq!(fat_defaults(b, "1.0").unwrap().codepage, 850);
        fs::write(
            b.join("boot/config-1.0"),
            "CONFIG_FAT_DEFAULT_CODEPAGE=852\n",
        )
        .unwrap();
        assert_eq!(fat_defaults(b, "1.0").unwrap().codepage, 852);
    }
}
