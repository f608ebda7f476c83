//! The kernel modules of an image: the metadata of one kernel under the base directory, the
//! modules the features and boot modules select, their closure, and the metadata files
//! regenerated for that subset.
//!
//! Parsing, names, aliases and the resolution of a name are the `kmod` crate's, shared with the
//! init that loads these modules at boot, so both read the metadata the same way. Alpine's
//! mkinitfs follows `modules.dep` only, so its features list crc modules by hand; we also follow
//! `softdep` lines (`pre:` and `post:`, names resolved as module names or through
//! `modules.alias`, as kmod does), and skip what `modules.builtin` says is built in. Module files
//! are stored as they are (`.ko`, `.ko.gz`, `.ko.xz`, `.ko.zst`): the init decompresses. The
//! init reads the text `modules.dep`, `modules.alias` and `modules.softdep`, so those are the
//! files we regenerate; the `.bin` indexes are left out (they would describe modules that are
//! not in the image).

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use apk::fnmatch::fnmatch;
use kmod::{Index, SoftDep, Texts};

use crate::error::Error;
use crate::root::Root;

/// Reads `path` if it exists.
fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::Parse {
                path: path.to_path_buf(),
                line: 0,
                reason: "not UTF-8 text".into(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// The module metadata of one kernel under a base directory.
#[derive(Debug, Clone, Default)]
pub struct ModuleDb {
    /// `BASEDIR/lib/modules/<kver>`.
    pub dir: PathBuf,
    index: Index,
    builtin_text: Option<String>,
    builtin_modinfo: Option<Vec<u8>>,
    order: Vec<String>,
}

impl ModuleDb {
    /// Loads the metadata of kernel `kver` under `basedir`. `modules.dep` is required (we do not run
    /// depmod); the others are optional.
    pub fn load(basedir: &Path, kver: &str) -> Result<Self, Error> {
        let missing = || Error::NoKernel {
            path: basedir.join(bootspec::initramfs::MODULES_DIR).join(kver),
        };
        // Resolve inside the base directory: an absolute `lib -> /usr/lib` link in a foreign root
        // must not lead to the build host's modules.
        let root = Root::new(basedir)?;
        let wanted = format!("{}/{kver}", bootspec::initramfs::MODULES_DIR);
        let dir = match root.resolve(&wanted)? {
            Some((real, meta)) if meta.is_dir() && !kver.is_empty() && !kver.contains('/') => {
                root.host(&real)
            }
            _ => return Err(missing()),
        };
        let dep_path = dir.join("modules.dep");
        let dep = read_optional(&dep_path)?.ok_or_else(|| Error::BadInput {
            path: dep_path.clone(),
            reason: "missing (run depmod for this kernel)".into(),
        })?;
        let alias = read_optional(&dir.join("modules.alias"))?.unwrap_or_default();
        let softdep = read_optional(&dir.join("modules.softdep"))?.unwrap_or_default();
        let builtin_text = read_optional(&dir.join("modules.builtin"))?;
        let texts = Texts {
            dep: &dep,
            alias: &alias,
            softdep: &softdep,
            builtin: builtin_text.as_deref().unwrap_or(""),
        };
        let index = Index::parse(texts, kver).map_err(|e| Error::Parse {
            path: dir.join(e.file),
            line: e.error.line,
            reason: e.error.reason,
        })?;
        let modinfo_path = dir.join("modules.builtin.modinfo");
        let builtin_modinfo = match fs::read(&modinfo_path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Error::Io {
                    path: modinfo_path,
                    source: e,
                })
            }
        };
        let order = read_optional(&dir.join("modules.order"))?
            .map(|text| kmod::order::parse(&text, kver))
            .unwrap_or_default();
        Ok(ModuleDb {
            dir,
            index,
            builtin_text,
            builtin_modinfo,
            order,
        })
    }

    /// All module paths (relative to the modules directory) in `modules.dep` order.
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.index.dep.iter().map(|d| d.path.as_str())
    }

    /// True when `modules.builtin` lists `name`.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.index.is_builtin(name)
    }

    /// Path of the loadable module called `name`, if any.
    pub fn path_of(&self, name: &str) -> Option<&str> {
        self.index.dep.by_name(name).map(|d| d.path.as_str())
    }

    /// Modules matching `.modules` lines: each line is a glob matched against module paths
    /// (`*` and `?` do not cross `/`), and a match on a directory selects every module below it.
    /// Returns the matches and the lines that matched nothing (kernel-config dependent, reported
    /// in debug output).
    pub fn select(&self, lines: &[String]) -> (BTreeSet<String>, Vec<String>) {
        let mut out = BTreeSet::new();
        let mut unmatched = Vec::new();
        for line in lines {
            let line = line.trim_start_matches("./").trim_end_matches('/');
            // Literal prefix up to the first glob character: a cheap filter before matching.
            let literal_end = line.find(['*', '?', '[', '\\']).unwrap_or(line.len());
            let prefix = &line[..literal_end];
            let mut hit = false;
            for module in self.modules().filter(|m| m.starts_with(prefix)) {
                // The module itself or one of its parent directories must match.
                let mut candidate = module;
                loop {
                    if fnmatch(line, candidate) {
                        out.insert(module.to_string());
                        hit = true;
                        break;
                    }
                    match candidate.rfind('/') {
                        Some(i) => candidate = &candidate[..i],
                        None => break,
                    }
                }
            }
            if !hit {
                unmatched.push(line.to_string());
            }
        }
        (out, unmatched)
    }

    /// Module paths a name stands for ([`kmod::Index::resolve`]: the module of that name, or
    /// every loadable module with a matching `modules.alias` pattern). Built-in names resolve to
    /// nothing.
    pub fn resolve_name(&self, name: &str) -> Vec<String> {
        self.index
            .modules_for(name)
            .into_iter()
            .map(|d| d.path.clone())
            .collect()
    }

    /// The closure of `roots` over `modules.dep` and softdeps. Errors when a module has no
    /// `modules.dep` line or its file is missing.
    pub fn closure(
        &self,
        roots: &BTreeSet<String>,
        extra_softdeps: &[SoftDep],
    ) -> Result<BTreeSet<String>, Error> {
        let mut out = BTreeSet::new();
        let mut queue: Vec<String> = roots.iter().cloned().collect();
        while let Some(module) = queue.pop() {
            if out.contains(&module) {
                continue;
            }
            let Some(dep) = self.index.dep.by_path(&module) else {
                return Err(Error::MissingModule {
                    name: module,
                    reason: format!("not listed in {}", self.dir.join("modules.dep").display()),
                });
            };
            let file = self.dir.join(&module);
            if !file.is_file() {
                return Err(Error::MissingModule {
                    name: module,
                    reason: format!("listed in modules.dep but {} is missing", file.display()),
                });
            }
            queue.extend(dep.deps.iter().cloned());
            let softdeps = self
                .index
                .softdeps_of(&dep.name)
                .chain(extra_softdeps.iter().filter(|s| s.module == dep.name));
            for sd in softdeps {
                for name in sd.pre.iter().chain(&sd.post) {
                    queue.extend(self.resolve_name(name));
                }
            }
            out.insert(module);
        }
        Ok(out)
    }

    /// The names of the modules of a subset.
    fn names(&self, set: &BTreeSet<String>) -> HashSet<String> {
        set.iter().filter_map(|m| kmod::module_name(m)).collect()
    }

    /// `modules.dep` for the subset, in the original order.
    pub fn render_dep(&self, set: &BTreeSet<String>) -> String {
        self.index.dep.render(|d| set.contains(&d.path))
    }

    /// `modules.alias` lines whose module is in the subset.
    pub fn render_alias(&self, set: &BTreeSet<String>) -> String {
        let names = self.names(set);
        self.index.aliases.render(|module| names.contains(module))
    }

    /// `modules.softdep` lines of modules in the subset, plus `extra` lines.
    pub fn render_softdep(&self, set: &BTreeSet<String>, extra: &[SoftDep]) -> String {
        let names = self.names(set);
        kmod::softdep::render(
            self.index
                .softdeps
                .iter()
                .chain(extra)
                .filter(|s| names.contains(&s.module)),
        )
    }

    /// `modules.order` restricted to the subset (modules missing from the original order are
    /// appended in path order so every module keeps a place).
    pub fn render_order(&self, set: &BTreeSet<String>) -> String {
        kmod::order::render(&self.order, set)
    }

    /// The original `modules.builtin`, copied as is (the init skips built-in names).
    pub fn builtin_text(&self) -> Option<&str> {
        self.builtin_text.as_deref()
    }

    /// The original `modules.builtin.modinfo`, if present.
    pub fn builtin_modinfo(&self) -> Option<&[u8]> {
        self.builtin_modinfo.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str =
        "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n\
kernel/lib/crc16.ko:\n\
kernel/fs/mbcache.ko:\n\
kernel/fs/jbd2/jbd2.ko:\n\
kernel/fs/ext2/ext2.ko: kernel/fs/mbcache.ko\n\
kernel/arch/x86/crypto/crc32c-intel.ko:\n\
kernel/crypto/crc32c_generic.ko.zst:\n\
kernel/fs/fat/fat.ko:\n\
kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\n\
kernel/drivers/virtio/virtio_pci.ko:\n";

    fn db_in(dir: &Path) -> ModuleDb {
        let kdir = dir.join("lib/modules/1.0-test");
        fs::create_dir_all(&kdir).unwrap();
        fs::write(kdir.join("modules.dep"), DEP).unwrap();
        for line in DEP.lines() {
            let m = line.split(':').next().unwrap();
            let p = kdir.join(m);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, b"x").unwrap();
        }
        fs::write(
            kdir.join("modules.softdep"),
            "softdep ext4 pre: crypto-crc32c\nsoftdep cifs gcm\n",
        )
        .unwrap();
        fs::write(
            kdir.join("modules.alias"),
            "# c\nalias crypto-crc32c crc32c_intel\nalias crypto-crc32c crc32c_generic\nalias fs-vfat vfat\nalias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n",
        )
        .unwrap();
        fs::write(
            kdir.join("modules.builtin"),
            "kernel/fs/squashfs/squashfs.ko\n",
        )
        .unwrap();
        fs::write(
            kdir.join("modules.order"),
            "kernel/fs/fat/fat.ko\nkernel/fs/fat/vfat.ko\nkernel/fs/ext4/ext4.ko\n",
        )
        .unwrap();
        ModuleDb::load(dir, "1.0-test").unwrap()
    }

    #[test]
    fn closure_follows_dep_and_softdep_through_aliases() {
        let tmp = tempfile::tempdir().unwrap();
        let db = db_in(tmp.path());
        let (roots, unmatched) = db.select(&["kernel/fs/ext4".into(), "kernel/fs/squashfs".into()]);
        assert_eq!(unmatched, vec!["kernel/fs/squashfs"]);
        let set = db.closure(&roots, &[]).unwrap();
        let want: BTreeSet<String> = [
            "kernel/fs/ext4/ext4.ko",
            "kernel/lib/crc16.ko",
            "kernel/fs/mbcache.ko",
            "kernel/fs/jbd2/jbd2.ko",
            "kernel/arch/x86/crypto/crc32c-intel.ko",
            "kernel/crypto/crc32c_generic.ko.zst",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(set, want);
        assert!(db.is_builtin("squashfs"));
        assert!(db.resolve_name("squashfs").is_empty());
    }

    #[test]
    fn select_globs_do_not_cross_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let db = db_in(tmp.path());
        let (set, _) = db.select(&["kernel/fs/*.ko*".into()]);
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            vec!["kernel/fs/mbcache.ko"]
        );
        let (set, _) = db.select(&["kernel/fs/fat/v*".into(), "kernel/drivers/".into()]);
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            vec![
                "kernel/drivers/virtio/virtio_pci.ko",
                "kernel/fs/fat/vfat.ko"
            ]
        );
    }

    #[test]
    fn extra_softdeps_pull_modules() {
        let tmp = tempfile::tempdir().unwrap();
        let db = db_in(tmp.path());
        let extra = vec![SoftDep {
            module: "vfat".into(),
            pre: vec!["ext2".into()],
            post: vec![],
        }];
        let (roots, _) = db.select(&["kernel/fs/fat/vfat.ko".into()]);
        let set = db.closure(&roots, &extra).unwrap();
        assert!(set.contains("kernel/fs/ext2/ext2.ko"));
        assert!(set.contains("kernel/fs/fat/fat.ko"));
        assert!(set.contains("kernel/fs/mbcache.ko"));
        let soft = db.render_softdep(&set, &extra);
        assert!(soft.contains("softdep vfat pre: ext2\n"), "{soft}");
        assert!(!soft.contains("ext4"));
    }

    #[test]
    fn renders_filtered_metadata() {
        let tmp = tempfile::tempdir().unwrap();
        let db = db_in(tmp.path());
        let (roots, _) = db.select(&["kernel/fs/fat/vfat.ko".into()]);
        let set = db.closure(&roots, &[]).unwrap();
        assert_eq!(
            db.render_dep(&set),
            "kernel/fs/fat/fat.ko:\nkernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\n"
        );
        assert_eq!(
            db.render_alias(&set),
            "# Aliases extracted from modules themselves.\nalias fs-vfat vfat\n"
        );
        assert_eq!(
            db.render_order(&set),
            "kernel/fs/fat/fat.ko\nkernel/fs/fat/vfat.ko\n"
        );
        assert_eq!(db.builtin_text(), Some("kernel/fs/squashfs/squashfs.ko\n"));
    }

    #[test]
    fn missing_module_file_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let db = db_in(tmp.path());
        fs::remove_file(db.dir.join("kernel/lib/crc16.ko")).unwrap();
        let (roots, _) = db.select(&["kernel/fs/ext4".into()]);
        let err = db.closure(&roots, &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("kernel/lib/crc16.ko: listed in modules.dep but"),
            "{err}"
        );
    }

    #[test]
    fn absolute_links_in_the_base_resolve_inside_it() {
        // base/lib -> /usr/lib (absolute, as in some roots): must mean base/usr/lib.
        let tmp = tempfile::tempdir().unwrap();
        let kdir = tmp.path().join("usr/lib/modules/1.0-test");
        fs::create_dir_all(&kdir).unwrap();
        fs::write(kdir.join("modules.dep"), "kernel/a.ko:\n").unwrap();
        std::os::unix::fs::symlink("/usr/lib", tmp.path().join("lib")).unwrap();
        let db = ModuleDb::load(tmp.path(), "1.0-test").unwrap();
        assert_eq!(db.dir, kdir);
        assert!(ModuleDb::load(tmp.path(), "../1.0-test").is_err());
    }

    #[test]
    fn corrupt_metadata_names_the_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let db = db_in(tmp.path());
        fs::write(
            db.dir.join("modules.alias"),
            "alias ok vfat\nalias broken\n",
        )
        .unwrap();
        let err = ModuleDb::load(tmp.path(), "1.0-test")
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(
                "lib/modules/1.0-test/modules.alias: line 2: expected \"alias PATTERN MODULE\""
            ),
            "{err}"
        );
    }

    /// Regression: softdep names were matched against alias patterns as written, so an
    /// underscored name missed a dashed alias and the module was left out of the image.
    #[test]
    fn softdep_names_match_aliases_dashes_or_not() {
        let tmp = tempfile::tempdir().unwrap();
        let db = db_in(tmp.path());
        fs::write(
            db.dir.join("modules.softdep"),
            "softdep ext2 pre: crypto_crc32c\n",
        )
        .unwrap();
        let db = ModuleDb::load(tmp.path(), "1.0-test").unwrap();
        let (roots, _) = db.select(&["kernel/fs/ext2".into()]);
        let set = db.closure(&roots, &[]).unwrap();
        assert!(
            set.contains("kernel/arch/x86/crypto/crc32c-intel.ko"),
            "{set:?}"
        );
        assert!(
            set.contains("kernel/crypto/crc32c_generic.ko.zst"),
            "{set:?}"
        );
    }

    #[test]
    fn missing_kernel_dir_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = ModuleDb::load(tmp.path(), "9.9").unwrap_err().to_string();
        assert!(
            err.ends_with("lib/modules/9.9: does not exist or is not a directory"),
            "{err}"
        );
    }
}
