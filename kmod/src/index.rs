//! The metadata of one kernel together, and the one rule both sides use to turn a name into
//! modules ([`Index::resolve`]): mkinitfs to decide what a softdep or a boot module pulls into
//! the image, the init to decide what to load for it.

use std::collections::HashSet;

use crate::alias::Aliases;
use crate::dep::{Dep, ModulesDep};
use crate::error::FileError;
use crate::name::normalize;
use crate::softdep::{self, SoftDep};

/// The texts of the metadata files (an absent optional file is the empty string).
#[derive(Debug, Clone, Copy, Default)]
pub struct Texts<'a> {
    /// `modules.dep` (required by its users: without it nothing can be loaded).
    pub dep: &'a str,
    /// `modules.alias`.
    pub alias: &'a str,
    /// `modules.softdep`.
    pub softdep: &'a str,
    /// `modules.builtin`.
    pub builtin: &'a str,
}

/// What a name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A loadable module (its normalised name).
    Module(String),
    /// A module built into the kernel: nothing to load or embed.
    Builtin(String),
    /// Not a module name: the modules whose alias pattern matches it, in `modules.alias` order
    /// (possibly none; possibly built-in or absent from `modules.dep`).
    Aliases(Vec<String>),
}

/// The parsed metadata of one kernel.
#[derive(Debug, Clone, Default)]
pub struct Index {
    /// `modules.dep`.
    pub dep: ModulesDep,
    /// `modules.alias`.
    pub aliases: Aliases,
    /// `modules.softdep` lines, in file order.
    pub softdeps: Vec<SoftDep>,
    /// Names of built-in modules.
    pub builtin: HashSet<String>,
}

impl Index {
    /// Parses the texts of kernel `kver`'s metadata; the error names the file and the line.
    pub fn parse(texts: Texts<'_>, kver: &str) -> Result<Self, FileError> {
        let at = |file| move |error| FileError { file, error };
        Ok(Index {
            dep: ModulesDep::parse(texts.dep, kver).map_err(at("modules.dep"))?,
            aliases: Aliases::parse(texts.alias).map_err(at("modules.alias"))?,
            softdeps: softdep::parse(texts.softdep).map_err(at("modules.softdep"))?,
            builtin: crate::builtin::parse(texts.builtin),
        })
    }

    /// What `request` (a module name, an alias or a device's modalias) stands for. A name that is
    /// a module, or built in, is that module and never an alias (as modprobe does); anything else
    /// is looked up in `modules.alias`.
    pub fn resolve(&self, request: &str) -> Resolution {
        let name = normalize(request);
        if self.dep.by_name(&name).is_some() {
            Resolution::Module(name)
        } else if self.builtin.contains(&name) {
            Resolution::Builtin(name)
        } else {
            Resolution::Aliases(
                self.aliases
                    .lookup(request)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            )
        }
    }

    /// The loadable modules `request` stands for (built-in and unknown ones left out).
    pub fn modules_for(&self, request: &str) -> Vec<&Dep> {
        match self.resolve(request) {
            Resolution::Module(name) => self.dep.by_name(&name).into_iter().collect(),
            Resolution::Builtin(_) => Vec::new(),
            Resolution::Aliases(names) => {
                names.iter().filter_map(|n| self.dep.by_name(n)).collect()
            }
        }
    }

    /// Whether `name` is built into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&normalize(name))
    }

    /// The softdep lines about module `name`.
    pub fn softdeps_of<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a SoftDep> + 'a {
        let name = normalize(name);
        self.softdeps.iter().filter(move |s| s.module == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko
kernel/lib/crc16.ko:
kernel/crypto/crc32c_generic.ko:
kernel/arch/x86/crypto/crc32c-intel.ko.zst:
kernel/drivers/usb/storage/usb-storage.ko:
";
    const ALIAS: &str = "\
alias crypto-crc32c crc32c_generic
alias crypto-crc32c crc32c-intel
alias crypto-crc32c crc32c_builtin
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage
alias usb-storage some_other_module
";

    fn index() -> Index {
        Index::parse(
            Texts {
                dep: DEP,
                alias: ALIAS,
                softdep: "softdep ext4 pre: crypto-crc32c\nsoftdep ext4 post: crc16\n",
                builtin: "kernel/fs/squashfs/squashfs.ko\nkernel/crypto/crc32c_builtin.ko\n",
            },
            "1",
        )
        .unwrap()
    }

    #[test]
    fn a_module_name_is_never_an_alias() {
        let i = index();
        assert_eq!(
            i.resolve("usb-storage"),
            Resolution::Module("usb_storage".into())
        );
        assert_eq!(
            i.resolve("squashfs"),
            Resolution::Builtin("squashfs".into())
        );
        assert_eq!(
            i.resolve("crypto_crc32c"),
            Resolution::Aliases(vec![
                "crc32c_generic".into(),
                "crc32c_intel".into(),
                "crc32c_builtin".into()
            ])
        );
        let paths: Vec<&str> = i
            .modules_for("crypto-crc32c")
            .iter()
            .map(|d| d.path.as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "kernel/crypto/crc32c_generic.ko",
                "kernel/arch/x86/crypto/crc32c-intel.ko.zst"
            ]
        );
        assert!(i.modules_for("squashfs").is_empty());
        assert!(i.modules_for("nothing").is_empty());
    }

    #[test]
    fn softdeps_by_module() {
        let i = index();
        let lines: Vec<&SoftDep> = i.softdeps_of("ext4").collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].pre, ["crypto-crc32c"]);
        assert!(i.is_builtin("crc32c-builtin"));
    }

    #[test]
    fn errors_name_the_file() {
        let err = Index::parse(
            Texts {
                dep: "kernel/a.ko:\n",
                softdep: "options a b\n",
                ..Texts::default()
            },
            "1",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "modules.softdep: line 1: expected \"softdep MODULE pre: ... post: ...\""
        );
    }
}
