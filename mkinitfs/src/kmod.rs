//! Kernel module metadata: `modules.dep`, `modules.softdep`, `modules.builtin`, `modules.alias`,
//! `modules.order` of one kernel, the dependency closure of a module selection, and the metadata
//! files regenerated for the selected subset.
//!
//! Alpine's mkinitfs follows `modules.dep` only, so its features list crc modules by hand. We also
//! follow `softdep` lines (`pre:` and `post:`, names resolved as module names or through
//! `modules.alias`, like kmod does), and skip what `modules.builtin` says is built in. Module files
//! are stored as they are (`.ko`, `.ko.gz`, `.ko.xz`, `.ko.zst`): the init decompresses. The
//! init resolves aliases from the text `modules.alias` with fnmatch globs and dependencies from
//! `modules.dep`, so those are the files we regenerate; the `.bin` indexes are left out (they would
//! describe modules that are not in the image).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::root::Root;
use apk::fnmatch::fnmatch_noflags as fnmatch;

/// Module file suffixes we accept, longest first.
const SUFFIXES: &[&str] = &[".ko.zst", ".ko.gz", ".ko.xz", ".ko"];

/// The module name of a path (`kernel/fs/fat/vfat.ko.zst` -> `vfat`), with `-` folded to `_`
/// as the kernel and kmod do.
pub fn module_name(path: &str) -> Option<String> {
    let base = path.rsplit('/').next()?;
    let stem = SUFFIXES.iter().find_map(|s| base.strip_suffix(s))?;
    if stem.is_empty() {
        return None;
    }
    Some(normalize(stem))
}

/// Folds `-` into `_` (module names are compared this way everywhere in kmod).
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// Byte ranges of an alias line's pattern and module name in the `modules.alias` text.
pub type AliasSpan = (Range<usize>, Range<usize>);

/// One `softdep` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftDep {
    /// The module the line is about (normalized).
    pub module: String,
    /// Names to load before it (module names or aliases).
    pub pre: Vec<String>,
    /// Names to load after it.
    pub post: Vec<String>,
}

/// The module metadata of one kernel under a base directory.
#[derive(Debug, Clone, Default)]
pub struct ModuleDb {
    /// `BASEDIR/lib/modules/<kver>`.
    pub dir: PathBuf,
    /// Modules in `modules.dep` order: relative path -> dependencies (relative paths).
    deps: Vec<(String, Vec<String>)>,
    index: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
    builtin: HashSet<String>,
    builtin_text: Option<String>,
    builtin_modinfo: Option<Vec<u8>>,
    softdeps: Vec<SoftDep>,
    /// `modules.alias` text and, per line, the byte ranges of pattern and module name: kept as
    /// spans into one string because the file has ~30k lines and only a few are ever used.
    alias_text: String,
    aliases: Vec<AliasSpan>,
    order: Vec<String>,
}

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

impl ModuleDb {
    /// Loads the metadata of kernel `kver` under `basedir`. `modules.dep` is required (we do not run
    /// depmod); the others are optional.
    pub fn load(basedir: &Path, kver: &str) -> Result<Self, Error> {
        let missing = || Error::NoKernel {
            path: basedir.join("lib/modules").join(kver),
        };
        // Resolve inside the base directory: an absolute `lib -> /usr/lib` link in a foreign root
        // must not lead to the build host's modules.
        let root = Root::new(basedir)?;
        let dir = match root.resolve(&format!("lib/modules/{kver}"))? {
            Some((real, meta)) if meta.is_dir() && !kver.is_empty() && !kver.contains('/') => {
                root.host(&real)
            }
            _ => return Err(missing()),
        };
        let dep_path = dir.join("modules.dep");
        let dep_text = read_optional(&dep_path)?.ok_or_else(|| Error::BadInput {
            path: dep_path.clone(),
            reason: "missing (run depmod for this kernel)".into(),
        })?;
        let mut db = ModuleDb {
            dir: dir.clone(),
            ..Default::default()
        };
        db.parse_dep(&dep_text, &dep_path, kver)?;
        let builtin_path = dir.join("modules.builtin");
        if let Some(text) = read_optional(&builtin_path)? {
            db.builtin = parse_builtin(&text);
            db.builtin_text = Some(text);
        }
        let modinfo_path = dir.join("modules.builtin.modinfo");
        db.builtin_modinfo = match fs::read(&modinfo_path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Error::Io {
                    path: modinfo_path,
                    source: e,
                })
            }
        };
        let softdep_path = dir.join("modules.softdep");
        if let Some(text) = read_optional(&softdep_path)? {
            db.softdeps = parse_softdep(&text, &softdep_path)?;
        }
        let alias_path = dir.join("modules.alias");
        if let Some(text) = read_optional(&alias_path)? {
            db.aliases = parse_alias(&text, &alias_path)?;
            db.alias_text = text;
        }
        if let Some(text) = read_optional(&dir.join("modules.order"))? {
            db.order = text
                .lines()
                .map(|l| strip_kver_prefix(l.trim(), kver))
                .filter(|l| !l.is_empty())
                .collect();
        }
        Ok(db)
    }

    /// Parses `modules.dep` text into this database (`kver` strips absolute path prefixes).
    pub fn parse_dep(&mut self, text: &str, path: &Path, kver: &str) -> Result<(), Error> {
        let mut line_of = Vec::new();
        for (idx, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| Error::parse(path, idx + 1, reason);
            let Some((module, deps)) = line.split_once(':') else {
                return Err(bad("expected \"module.ko: dependencies\"".into()));
            };
            let module = strip_kver_prefix(module.trim(), kver);
            let name = module_name(&module)
                .ok_or_else(|| bad(format!("{module}: not a kernel module file name")))?;
            let mut list = Vec::new();
            for dep in deps.split_whitespace() {
                let dep = strip_kver_prefix(dep, kver);
                if module_name(&dep).is_none() {
                    return Err(bad(format!("{dep}: not a kernel module file name")));
                }
                list.push(dep);
            }
            if self.index.contains_key(&module) {
                return Err(bad(format!("{module}: listed twice")));
            }
            self.index.insert(module.clone(), self.deps.len());
            self.by_name.entry(name).or_insert(self.deps.len());
            self.deps.push((module, list));
            line_of.push(idx + 1);
        }
        // Every dependency must have its own line: a truncated or edited modules.dep would
        // otherwise yield an image whose modules fail to load at boot.
        for ((module, list), line) in self.deps.iter().zip(line_of) {
            for dep in list {
                if !self.index.contains_key(dep) {
                    return Err(Error::parse(
                        path,
                        line,
                        format!("{module}: dependency {dep} has no line of its own"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// All module paths (relative to the modules directory) in `modules.dep` order.
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.deps.iter().map(|(m, _)| m.as_str())
    }

    /// True when `modules.builtin` lists `name` (normalized).
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&normalize(name))
    }

    /// Path of the loadable module called `name`, if any.
    pub fn path_of(&self, name: &str) -> Option<&str> {
        self.by_name
            .get(&normalize(name))
            .map(|&i| self.deps[i].0.as_str())
    }

    /// Modules matching `.modules` lines: each line is a glob matched against module paths, and
    /// a match on a directory selects every module below it. Returns the matches and the lines
    /// that matched nothing (kernel-config dependent, reported in debug output).
    pub fn select(&self, lines: &[String]) -> (BTreeSet<String>, Vec<String>) {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let mut out = BTreeSet::new();
        let mut unmatched = Vec::new();
        for line in lines {
            let line = line.trim_start_matches("./").trim_end_matches('/');
            let Ok(pattern) = glob::Pattern::new(line) else {
                unmatched.push(line.to_string());
                continue;
            };
            // Literal prefix up to the first glob character: a cheap filter before matching.
            let literal_end = line.find(['*', '?', '[']).unwrap_or(line.len());
            let prefix = &line[..literal_end];
            let mut hit = false;
            for (module, _) in &self.deps {
                if !module.starts_with(prefix) {
                    continue;
                }
                // The module itself or one of its parent directories must match.
                let mut candidate = module.as_str();
                loop {
                    if pattern.matches_with(candidate, opts) {
                        out.insert(module.clone());
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

    /// Modules a name stands for: the module of that name, or every module with a matching
    /// `modules.alias` pattern (softdeps name aliases such as `crypto-crc32c`). Built-in names
    /// resolve to nothing.
    pub fn resolve_name(&self, name: &str) -> Vec<String> {
        let norm = normalize(name);
        if let Some(path) = self.path_of(&norm) {
            return vec![path.to_string()];
        }
        if self.builtin.contains(&norm) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (p, m) in &self.aliases {
            let (pattern, module) = (&self.alias_text[p.clone()], &self.alias_text[m.clone()]);
            if fnmatch(pattern, name) {
                if let Some(path) = self.path_of(module) {
                    if !out.iter().any(|p| p == path) {
                        out.push(path.to_string());
                    }
                }
            }
        }
        out
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
            let Some(&i) = self.index.get(&module) else {
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
            out.insert(module.clone());
            queue.extend(self.deps[i].1.iter().cloned());
            let name = module_name(&module).unwrap_or_default();
            for sd in self
                .softdeps
                .iter()
                .chain(extra_softdeps)
                .filter(|s| s.module == name)
            {
                for dep in sd.pre.iter().chain(&sd.post) {
                    queue.extend(self.resolve_name(dep));
                }
            }
        }
        Ok(out)
    }

    /// `modules.dep` for the subset, in the original order.
    pub fn render_dep(&self, set: &BTreeSet<String>) -> String {
        let mut out = String::new();
        for (module, deps) in self.deps.iter().filter(|(m, _)| set.contains(m)) {
            out.push_str(module);
            out.push(':');
            for d in deps {
                out.push(' ');
                out.push_str(d);
            }
            out.push('\n');
        }
        out
    }

    /// `modules.alias` lines whose module is in the subset.
    pub fn render_alias(&self, set: &BTreeSet<String>) -> String {
        let names: HashSet<String> = set.iter().filter_map(|m| module_name(m)).collect();
        let mut out = String::from("# Aliases extracted from modules themselves.\n");
        for (p, m) in &self.aliases {
            let module = &self.alias_text[m.clone()];
            if names.contains(module)
                || (module.contains('-') && names.contains(&normalize(module)))
            {
                out.push_str("alias ");
                out.push_str(&self.alias_text[p.clone()]);
                out.push(' ');
                out.push_str(module);
                out.push('\n');
            }
        }
        out
    }

    /// `modules.softdep` lines of modules in the subset, plus `extra` lines.
    pub fn render_softdep(&self, set: &BTreeSet<String>, extra: &[SoftDep]) -> String {
        let names: HashSet<String> = set.iter().filter_map(|m| module_name(m)).collect();
        let mut out = String::from("# Soft dependencies extracted from modules themselves.\n");
        for sd in self
            .softdeps
            .iter()
            .chain(extra)
            .filter(|s| names.contains(&s.module))
        {
            out.push_str("softdep ");
            out.push_str(&sd.module);
            for (tag, list) in [("pre:", &sd.pre), ("post:", &sd.post)] {
                if !list.is_empty() {
                    out.push(' ');
                    out.push_str(tag);
                    for n in list.iter() {
                        out.push(' ');
                        out.push_str(n);
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    /// `modules.order` restricted to the subset (modules missing from the original order are
    /// appended in path order so every module keeps a place).
    pub fn render_order(&self, set: &BTreeSet<String>) -> String {
        let mut seen = HashSet::new();
        let mut out = String::new();
        for line in &self.order {
            // modules.order names `.ko` even when the files are compressed.
            let hit = if set.contains(line) {
                Some(line.clone())
            } else {
                line.strip_suffix(".ko").and_then(|stem| {
                    SUFFIXES
                        .iter()
                        .map(|s| format!("{stem}{s}"))
                        .find(|p| set.contains(p))
                })
            };
            if let Some(path) = hit {
                if seen.insert(path) {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        for module in set {
            if !seen.contains(module) {
                out.push_str(module);
                out.push('\n');
            }
        }
        out
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

/// depmod writes absolute paths when the modules live outside the standard tree; keep the part
/// after `/<kver>/` so every path is relative to the modules directory.
fn strip_kver_prefix(path: &str, kver: &str) -> String {
    if path.starts_with('/') {
        let marker = format!("/{kver}/");
        if let Some(i) = path.find(&marker) {
            return path[i + marker.len()..].to_string();
        }
    }
    path.to_string()
}

/// Names in `modules.builtin` (`kernel/fs/ext4/ext4.ko` -> `ext4`).
pub fn parse_builtin(text: &str) -> HashSet<String> {
    text.lines().filter_map(|l| module_name(l.trim())).collect()
}

/// Parses `modules.softdep` / modprobe.d `softdep` lines. Words before any `pre:`/`post:` tag are
/// ignored, as kmod ignores them (Debian's file has such lines, e.g. `softdep cifs gcm`).
pub fn parse_softdep(text: &str, path: &Path) -> Result<Vec<SoftDep>, Error> {
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        if words.next() != Some("softdep") {
            return Err(Error::parse(
                path,
                idx + 1,
                "expected \"softdep MODULE pre: ... post: ...\"",
            ));
        }
        let Some(module) = words.next() else {
            return Err(Error::parse(path, idx + 1, "softdep without a module name"));
        };
        let mut sd = SoftDep {
            module: normalize(module),
            pre: Vec::new(),
            post: Vec::new(),
        };
        let mut mode = 0;
        for w in words {
            match w {
                "pre:" => mode = 1,
                "post:" => mode = 2,
                _ if mode == 1 => sd.pre.push(w.to_string()),
                _ if mode == 2 => sd.post.push(w.to_string()),
                _ => {}
            }
        }
        out.push(sd);
    }
    Ok(out)
}

/// Parses `modules.alias` (`alias PATTERN MODULE`) into byte ranges of `text`.
pub fn parse_alias(text: &str, path: &Path) -> Result<Vec<AliasSpan>, Error> {
    let base = text.as_ptr() as usize;
    let span = |s: &str| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("alias"), Some(pattern), Some(module), None) => {
                out.push((span(pattern), span(module)))
            }
            _ => {
                return Err(Error::parse(
                    path,
                    idx + 1,
                    "expected \"alias PATTERN MODULE\"",
                ))
            }
        }
    }
    Ok(out)
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
    fn names_fold_dashes_and_suffixes() {
        assert_eq!(
            module_name("kernel/arch/x86/crypto/crc32c-intel.ko").unwrap(),
            "crc32c_intel"
        );
        assert_eq!(module_name("a/b.ko.zst").unwrap(), "b");
        assert_eq!(module_name("a/b.ko.xz").unwrap(), "b");
        assert_eq!(module_name("a/b.ko.gz").unwrap(), "b");
        assert!(module_name("a/b.o").is_none());
        assert!(module_name("a/.ko").is_none());
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
    fn corrupted_modules_dep_is_an_error() {
        let p = Path::new("modules.dep");
        for (text, want) in [
            ("kernel/a.ko kernel/b.ko\n", "modules.dep: line 1: expected"),
            (
                "kernel/c.ko:\nkernel/a.ko: kernel/b.ko\n",
                "line 2: kernel/a.ko: dependency kernel/b.ko has no line",
            ),
            (
                "kernel/a.txt:\n",
                "line 1: kernel/a.txt: not a kernel module",
            ),
            (
                "kernel/a.ko:\nkernel/a.ko:\n",
                "line 2: kernel/a.ko: listed twice",
            ),
            ("kernel/a.ko: garbage\n", "garbage: not a kernel module"),
        ] {
            let err = ModuleDb::default()
                .parse_dep(text, p, "1")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn absolute_dep_paths_become_relative() {
        let mut db = ModuleDb::default();
        db.parse_dep("/lib/modules/1.2/kernel/a.ko: /lib/modules/1.2/kernel/b.ko\n/lib/modules/1.2/kernel/b.ko:\n", Path::new("d"), "1.2").unwrap();
        assert_eq!(
            db.modules().collect::<Vec<_>>(),
            vec!["kernel/a.ko", "kernel/b.ko"]
        );
        assert_eq!(db.path_of("a"), Some("kernel/a.ko"));
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
    fn missing_kernel_dir_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = ModuleDb::load(tmp.path(), "9.9").unwrap_err().to_string();
        assert!(
            err.ends_with("lib/modules/9.9: does not exist or is not a directory"),
            "{err}"
        );
    }

    #[test]
    fn parses_softdep_like_kmod() {
        let sd = parse_softdep(
            "softdep cifs gcm\nsoftdep a-b pre: x y post: z\n",
            Path::new("s"),
        )
        .unwrap();
        assert_eq!(
            sd[0],
            SoftDep {
                module: "cifs".into(),
                pre: vec![],
                post: vec![]
            }
        );
        assert_eq!(
            sd[1],
            SoftDep {
                module: "a_b".into(),
                pre: vec!["x".into(), "y".into()],
                post: vec!["z".into()]
            }
        );
        assert!(parse_softdep("options x y\n", Path::new("s")).is_err());
        assert!(parse_alias("alias onlyone\n", Path::new("a")).is_err());
    }
}
