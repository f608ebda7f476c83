//! Kernel modules: `modules.dep`/`modules.alias`/`modules.softdep`/`modules.builtin` resolution and
//! loading, as `modprobe` does it, without modprobe.
//!
//! A request is a module name (`modules=`, `/etc/modules`, a filesystem type) or a device's
//! `MODALIAS` (coldplug from `/sys`, hotplug from uevents). Names are normalised (`-` → `_`);
//! a name that is not a module is looked up as an alias; an alias matches `modules.alias`
//! patterns fnmatch-style and loads every match. Each module comes with its `modules.dep`
//! closure (dependencies first) and its softdeps (`pre:` before, `post:` after). `blacklist=`
//! and `blacklist` lines in `/etc/modprobe.d/*.conf` stop alias-driven loads only, as in
//! modprobe: a module asked for by name is still loaded. `options` lines supply parameters.
//! Files may be `.ko` (finit_module), `.ko.gz` or `.ko.zst` (decompressed here, then
//! init_module); `.ko.xz` is reported as unsupported. A failure is logged, never fatal.
use apk::fnmatch::fnmatch_noflags;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::sys;

/// Why the module metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// A metadata file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A module could not be loaded.
    #[error("{}: {reason}", path.display())]
    Load {
        /// The module file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// `modprobe`'s name normalisation: dashes and underscores are the same in module names.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// kmod's `alias_normalize`: dashes become underscores, except inside `[...]` classes. kmod
/// applies it to the aliases it indexes and to every lookup, so `crypto-crc32c` (a softdep in
/// Debian's modules.softdep) and `crypto_crc32c` name the same alias.
pub fn normalize_alias(alias: &str) -> String {
    let mut out = String::with_capacity(alias.len());
    let mut in_class = false;
    for c in alias.chars() {
        match c {
            '[' => {
                in_class = true;
                out.push(c);
            }
            ']' => {
                in_class = false;
                out.push(c);
            }
            '-' if !in_class => out.push('_'),
            c => out.push(c),
        }
    }
    out
}

/// The module name of a `modules.dep` path (`kernel/fs/fat/vfat.ko.zst` → `vfat`).
pub fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split(".ko").next().unwrap_or(base);
    normalize(stem)
}

/// Softdeps of one module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftDep {
    /// Loaded before the module.
    pub pre: Vec<String>,
    /// Loaded after the module.
    pub post: Vec<String>,
}

/// The module metadata of one kernel, parsed.
#[derive(Debug, Clone, Default)]
pub struct ModuleDb {
    dir: PathBuf,
    /// name → (path relative to `dir`, dependency names in modules.dep order)
    deps: HashMap<String, (String, Vec<String>)>,
    /// (pattern, module name) in modules.alias order
    aliases: Vec<(String, String)>,
    softdeps: HashMap<String, SoftDep>,
    builtin: HashSet<String>,
    /// From `/etc/modprobe.d`: module → parameters.
    options: HashMap<String, String>,
    /// From `/etc/modprobe.d` `blacklist` lines.
    blacklist: HashSet<String>,
}

impl ModuleDb {
    /// Reads `modules.dep` (required), `modules.alias`, `modules.softdep`, `modules.builtin`
    /// (optional) from `dir` (`/lib/modules/<kver>`).
    pub fn load(dir: &Path) -> Result<Self, ModuleError> {
        let read = |name: &str, required: bool| -> Result<String, ModuleError> {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                    Ok(String::new())
                }
                Err(source) => Err(ModuleError::Read { path, source }),
            }
        };
        let mut db = Self::parse(
            &read("modules.dep", true)?,
            &read("modules.alias", false)?,
            &read("modules.softdep", false)?,
            &read("modules.builtin", false)?,
        );
        db.dir = dir.to_path_buf();
        Ok(db)
    }

    /// Builds a database from the texts of the four metadata files.
    pub fn parse(dep: &str, alias: &str, softdep: &str, builtin: &str) -> Self {
        let mut db = Self::default();
        for line in dep.lines() {
            let Some((path, rest)) = line.split_once(':') else {
                continue;
            };
            let path = path.trim();
            if path.is_empty() {
                continue;
            }
            let deps = rest.split_whitespace().map(module_name).collect();
            db.deps.insert(module_name(path), (path.to_string(), deps));
        }
        for line in alias.lines() {
            let mut w = line.split_whitespace();
            if let (Some("alias"), Some(pattern), Some(module)) = (w.next(), w.next(), w.next()) {
                db.aliases
                    .push((normalize_alias(pattern), normalize(module)));
            }
        }
        for line in softdep.lines() {
            let mut w = line.split_whitespace();
            if w.next() != Some("softdep") {
                continue;
            }
            let Some(module) = w.next() else { continue };
            let entry = db.softdeps.entry(normalize(module)).or_default();
            // Words before any `pre:`/`post:` are ignored, as kmod does (Debian ships such lines).
            let mut post: Option<bool> = None;
            for word in w {
                match (word, post) {
                    ("pre:", _) => post = Some(false),
                    ("post:", _) => post = Some(true),
                    // Kept as written: these may be aliases (`crypto-crc32c`), resolved later.
                    (m, Some(true)) => entry.post.push(m.to_string()),
                    (m, Some(false)) => entry.pre.push(m.to_string()),
                    (_, None) => {}
                }
            }
        }
        for line in builtin.lines() {
            let line = line.trim();
            if !line.is_empty() {
                db.builtin.insert(module_name(line));
            }
        }
        db
    }

    /// Adds `blacklist` and `options` lines from modprobe.d-style text.
    pub fn add_modprobe_conf(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut w = line.split_whitespace();
            match (w.next(), w.next()) {
                (Some("blacklist"), Some(m)) => {
                    self.blacklist.insert(normalize(m));
                }
                (Some("options"), Some(m)) => {
                    let params: Vec<&str> = w.collect();
                    let entry = self.options.entry(normalize(m)).or_default();
                    if !entry.is_empty() && !params.is_empty() {
                        entry.push(' ');
                    }
                    entry.push_str(&params.join(" "));
                }
                _ => {}
            }
        }
    }

    /// Reads every `*.conf` in `dir` (`/etc/modprobe.d`), in name order; a missing dir is fine.
    pub fn add_modprobe_dir(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        files.sort();
        for f in files {
            if let Ok(text) = std::fs::read_to_string(&f) {
                self.add_modprobe_conf(&text);
            }
        }
    }

    /// Whether `name` is a module in `modules.dep`.
    pub fn has_module(&self, name: &str) -> bool {
        self.deps.contains_key(&normalize(name))
    }

    /// Whether `name` is built into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&normalize(name))
    }

    /// Whether `name` is blacklisted by modprobe.d.
    pub fn is_blacklisted(&self, name: &str) -> bool {
        self.blacklist.contains(&normalize(name))
    }

    /// Modules whose alias pattern matches `modalias`, in modules.alias order, deduplicated.
    pub fn match_alias(&self, modalias: &str) -> Vec<String> {
        let mut seen = HashSet::new();
        let query = normalize_alias(modalias);
        self.aliases
            .iter()
            .filter(|(pattern, _)| fnmatch_noflags(pattern, &query))
            .filter(|(_, m)| seen.insert(m.clone()))
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// What a request resolves to: the module itself if it is one (or built in), else its alias
    /// matches (the bool says whether the blacklist applies, i.e. the load came via an alias).
    pub fn resolve(&self, request: &str) -> (Vec<String>, bool) {
        let name = normalize(request);
        if self.deps.contains_key(&name) || self.builtin.contains(&name) {
            return (vec![name], false);
        }
        (self.match_alias(request), true)
    }

    /// The load order for `module`: softdep `pre:` modules, the `modules.dep` closure
    /// (dependencies before dependants), the module, then `post:` softdeps. Built-in modules are
    /// left out (nothing to load); unknown ones too.
    pub fn load_order(&self, module: &str) -> Vec<String> {
        let mut order = Vec::new();
        let mut visiting = HashSet::new();
        self.visit(&normalize(module), &mut order, &mut visiting, 0);
        order
    }

    fn visit(
        &self,
        module: &str,
        order: &mut Vec<String>,
        seen: &mut HashSet<String>,
        depth: usize,
    ) {
        if depth > 32 || !seen.insert(module.to_string()) {
            return; // cycles in corrupt metadata end here
        }
        let soft = self.softdeps.get(module).cloned().unwrap_or_default();
        for pre in &soft.pre {
            for m in self.resolve(pre).0 {
                self.visit(&m, order, seen, depth + 1);
            }
        }
        if let Some((_, deps)) = self.deps.get(module) {
            for d in deps {
                self.visit(d, order, seen, depth + 1);
            }
            order.push(module.to_string());
        }
        for post in &soft.post {
            for m in self.resolve(post).0 {
                self.visit(&m, order, seen, depth + 1);
            }
        }
    }

    /// Absolute path of a module's file.
    pub fn path_of(&self, module: &str) -> Option<PathBuf> {
        let (rel, _) = self.deps.get(&normalize(module))?;
        Some(if rel.starts_with('/') {
            PathBuf::from(rel)
        } else {
            self.dir.join(rel)
        })
    }

    /// Parameters from modprobe.d `options` lines.
    pub fn options_for(&self, module: &str) -> &str {
        self.options
            .get(&normalize(module))
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// The set of modules already in the kernel, from `/proc/modules` text.
pub fn parse_proc_modules(text: &str) -> HashSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(normalize)
        .collect()
}

/// Reads a module file into memory, decompressing `.gz` and `.zst`.
pub fn read_module_image(path: &Path) -> Result<Vec<u8>, ModuleError> {
    let load_err = |reason: String| ModuleError::Load {
        path: path.to_path_buf(),
        reason,
    };
    let raw = std::fs::read(path).map_err(|source| ModuleError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.to_string_lossy();
    if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| load_err(format!("gzip: {e}")))?;
        Ok(out)
    } else if name.ends_with(".zst") {
        zstd::stream::decode_all(&raw[..]).map_err(|e| load_err(format!("zstd: {e}")))
    } else if name.ends_with(".xz") {
        Err(load_err(
            "xz-compressed modules are not supported by this init (use gzip or zstd)".into(),
        ))
    } else {
        Ok(raw)
    }
}

/// Outcome of one load request, for the log and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// Newly loaded modules, in order.
    Modules(Vec<String>),
    /// Nothing matched the request.
    NoMatch,
}

/// Loads modules through a [`ModuleDb`], remembering what is already in the kernel.
#[derive(Debug)]
pub struct Loader {
    db: ModuleDb,
    loaded: HashSet<String>,
    /// `blacklist=` from the command line.
    blacklist: HashSet<String>,
    /// Modalias strings already handled (coldplug and hotplug see the same devices).
    seen_aliases: HashSet<String>,
    /// Failures, kept for the report (module → reason).
    pub failures: BTreeMap<String, String>,
}

impl Loader {
    /// A loader over `db` that skips modules in `/proc/modules` and never loads `blacklist`
    /// through an alias.
    pub fn new(db: ModuleDb, blacklist: &[String]) -> Self {
        let loaded = std::fs::read_to_string("/proc/modules")
            .map(|t| parse_proc_modules(&t))
            .unwrap_or_default();
        Self::with_loaded(db, blacklist, loaded)
    }

    /// Like [`Loader::new`] with an explicit set of modules already in the kernel.
    pub fn with_loaded(db: ModuleDb, blacklist: &[String], loaded: HashSet<String>) -> Self {
        Self {
            db,
            loaded,
            blacklist: blacklist.iter().map(|b| normalize(b)).collect(),
            seen_aliases: HashSet::new(),
            failures: BTreeMap::new(),
        }
    }

    /// The metadata.
    pub fn db(&self) -> &ModuleDb {
        &self.db
    }

    /// Whether `module` is loaded (or was loaded by us, or is built in).
    pub fn is_loaded(&self, module: &str) -> bool {
        let m = normalize(module);
        self.loaded.contains(&m) || self.db.is_builtin(&m)
    }

    /// Loads a module by name (or alias) with its dependencies; `params` apply to it only.
    pub fn load_name(&mut self, request: &str, params: &str) -> Loaded {
        let (targets, via_alias) = self.db.resolve(request);
        self.load_targets(&targets, via_alias, Some((request, params)), false)
    }

    /// Loads every module matching a device's `MODALIAS` (once per distinct modalias).
    pub fn load_alias(&mut self, modalias: &str) -> Loaded {
        if !self.seen_aliases.insert(modalias.to_string()) {
            return Loaded::Modules(Vec::new());
        }
        let targets = self.db.match_alias(modalias);
        self.load_targets(&targets, true, None, false)
    }

    /// Loads `targets` with their closures. Logging: a module file the initramfs builder left out
    /// is normal for alias matches (modules.alias lists every module of the kernel) and logged at
    /// debug level; other failures are warnings unless `quiet`.
    fn load_targets(
        &mut self,
        targets: &[String],
        via_alias: bool,
        explicit: Option<(&str, &str)>,
        quiet: bool,
    ) -> Loaded {
        if targets.is_empty() {
            return Loaded::NoMatch;
        }
        let mut newly = Vec::new();
        for target in targets {
            if via_alias && (self.blacklist.contains(target) || self.db.is_blacklisted(target)) {
                log::debug!("module {target}: blacklisted, not loaded");
                continue;
            }
            for m in self.db.load_order(target) {
                if self.is_loaded(&m) || self.failures.contains_key(&m) {
                    continue;
                }
                let mut params = self.db.options_for(&m).to_string();
                if let Some((req, extra)) = explicit {
                    if normalize(req) == m && !extra.is_empty() {
                        if !params.is_empty() {
                            params.push(' ');
                        }
                        params.push_str(extra);
                    }
                }
                match self.insert(&m, &params) {
                    Ok(()) => {
                        log::debug!("module {m}: loaded");
                        self.loaded.insert(m.clone());
                        newly.push(m);
                    }
                    Err((missing, reason)) => {
                        if quiet || (missing && via_alias) {
                            log::debug!("module {m}: {reason}");
                        } else {
                            log::warn!("module {m}: {reason}");
                        }
                        self.failures.insert(m, reason);
                    }
                }
            }
        }
        Loaded::Modules(newly)
    }

    /// Inserts one module; the error says whether the file is simply absent.
    fn insert(&self, module: &str, params: &str) -> Result<(), (bool, String)> {
        let path = self
            .db
            .path_of(module)
            .ok_or_else(|| (true, "not in modules.dep".to_string()))?;
        if !path.exists() {
            return Err((true, format!("{}: not in this initramfs", path.display())));
        }
        let name = path.to_string_lossy();
        if name.ends_with(".ko") {
            sys::load_module_file(&path, params).map_err(|e| (false, e.to_string()))
        } else {
            let image = read_module_image(&path).map_err(|e| (false, e.to_string()))?;
            sys::load_module_image(&path, &image, params).map_err(|e| (false, e.to_string()))
        }
    }

    /// Loads a module quietly: used for filesystem and NLS modules "errors ignored" (a module
    /// that is absent from the initramfs may well be built in under another name).
    pub fn load_quietly(&mut self, name: &str) {
        let m = normalize(name);
        if self.is_loaded(&m) || !self.db.has_module(&m) {
            return;
        }
        self.load_targets(&[m], false, None, true);
    }

    /// Whether a module was loaded by this loader or found in the kernel.
    pub fn loaded(&self) -> &HashSet<String> {
        &self.loaded
    }
}

/// Every `modalias` file content under a sysfs `devices` tree (coldplug), sorted and deduplicated,
/// without following symlinks.
pub fn collect_modaliases(sys_devices: &Path) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut stack = vec![sys_devices.to_path_buf()];
    let mut visited = 0usize;
    while let Some(dir) = stack.pop() {
        visited += 1;
        if visited > 200_000 {
            break; // a pathological /sys; coldplug is best effort
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() && e.file_name() == "modalias" {
                if let Ok(text) = std::fs::read_to_string(e.path()) {
                    let t = text.trim();
                    if !t.is_empty() {
                        out.insert(t.to_string());
                    }
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Parses `/etc/modules`: one module per line with optional parameters; `#` starts a comment.
pub fn parse_etc_modules(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((m, p)) => (m.to_string(), p.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/fs/fat/fat.ko:
kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko
kernel/fs/nls/nls_cp437.ko.zst:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/usb/storage/usb-storage.ko: kernel/drivers/usb/core/usbcore.ko
kernel/drivers/usb/core/usbcore.ko:
kernel/crypto/crc32c_generic.ko:
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/drivers/gpu/drm/bochs.ko:
";
    const ALIAS: &str = "\
# Aliases extracted from modules themselves.
alias fs-vfat vfat
alias virtio:d00000002v* virtio_blk
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage
alias pci:v00001234d00001111sv*sd*bc03sc00i00* bochs
alias pci:v00001234d00001111sv*sd*bc03sc*i* bochs
alias crc32c crc32c_generic
";
    const SOFTDEP: &str =
        "softdep ext4 pre: crc32c\nsoftdep vfat post: nls_cp437\nsoftdep fat nls_cp437\n";
    const BUILTIN: &str = "kernel/drivers/tty/serial/8250/8250.ko\n";

    fn db() -> ModuleDb {
        ModuleDb::parse(DEP, ALIAS, SOFTDEP, BUILTIN)
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(
            module_name("kernel/drivers/usb/storage/usb-storage.ko.gz"),
            "usb_storage"
        );
        assert_eq!(module_name("nls_cp437.ko.zst"), "nls_cp437");
        assert!(db().has_module("usb-storage"));
        assert!(db().is_builtin("8250"));
    }

    #[test]
    fn dependencies_come_first() {
        assert_eq!(
            db().load_order("virtio_blk"),
            vec!["virtio", "virtio_ring", "virtio_blk"]
        );
        assert_eq!(
            db().load_order("ext4"),
            vec!["crc32c_generic", "crc16", "mbcache", "jbd2", "ext4"]
        );
    }

    #[test]
    fn softdep_names_may_be_dashed_aliases() {
        // Debian: `softdep ext4 pre: crypto-crc32c` with `alias crypto-crc32c crc32c_generic`.
        let d = ModuleDb::parse(
            "kernel/fs/ext4/ext4.ko:\nkernel/crypto/crc32c_generic.ko:\n",
            "alias crypto-crc32c crc32c_generic\n",
            "softdep ext4 pre: crypto-crc32c\n",
            "",
        );
        assert_eq!(d.load_order("ext4"), vec!["crc32c_generic", "ext4"]);
        assert_eq!(d.match_alias("crypto_crc32c"), vec!["crc32c_generic"]);
        assert_eq!(normalize_alias("a-b[x-z]-c"), "a_b[x-z]_c");
    }

    #[test]
    fn softdep_post_after_module() {
        assert_eq!(db().load_order("vfat"), vec!["fat", "vfat", "nls_cp437"]);
    }

    #[test]
    fn unknown_and_builtin_have_nothing_to_load() {
        assert!(db().load_order("nope").is_empty());
        assert!(db().load_order("8250").is_empty());
        assert_eq!(db().resolve("8250"), (vec!["8250".to_string()], false));
    }

    #[test]
    fn alias_resolution() {
        assert_eq!(
            db().match_alias("virtio:d00000002v00001AF4"),
            vec!["virtio_blk"]
        );
        assert_eq!(
            db().match_alias("usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00"),
            vec!["usb_storage"]
        );
        // Two patterns, one module: listed once.
        assert_eq!(
            db().match_alias("pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00"),
            vec!["bochs"]
        );
        assert!(db().match_alias("pci:v0000DEADd0000BEEF").is_empty());
        assert_eq!(db().resolve("fs-vfat"), (vec!["vfat".to_string()], true));
        assert_eq!(
            db().resolve("usb-storage"),
            (vec!["usb_storage".to_string()], false)
        );
    }

    #[test]
    fn modprobe_conf_blacklist_and_options() {
        let mut d = db();
        d.add_modprobe_conf(
            "# comment\nblacklist bochs\noptions usb-storage quirks=1 delay_use=0 # x\n",
        );
        assert!(d.is_blacklisted("bochs"));
        assert_eq!(d.options_for("usb_storage"), "quirks=1 delay_use=0");
        assert_eq!(d.options_for("vfat"), "");
    }

    #[test]
    fn loader_honours_blacklist_for_aliases_only() {
        let mut l = Loader::with_loaded(
            db(),
            &["bochs".to_string(), "vfat".to_string()],
            HashSet::new(),
        );
        // Blacklisted through an alias: nothing attempted, no failure recorded.
        assert_eq!(
            l.load_alias("pci:v00001234d00001111sv0sd0bc03sc00i00"),
            Loaded::Modules(vec![])
        );
        assert!(l.failures.is_empty());
        // By name it is attempted (and fails here: the files are not on this machine).
        l.load_name("bochs", "");
        assert!(l.failures.contains_key("bochs"), "{:?}", l.failures);
        assert_eq!(l.load_alias("pci:unknown"), Loaded::NoMatch);
    }

    #[test]
    fn loader_does_not_retry_failures_or_repeat_modaliases() {
        let mut l = Loader::with_loaded(db(), &[], HashSet::new());
        l.load_name("virtio_blk", "");
        let n = l.failures.len();
        assert!(n >= 1);
        l.load_name("virtio_blk", "");
        assert_eq!(l.failures.len(), n);
        assert_eq!(l.load_alias("virtio:d00000002v1"), Loaded::Modules(vec![]));
        assert_eq!(l.load_alias("virtio:d00000002v1"), Loaded::Modules(vec![]));
    }

    #[test]
    fn etc_modules_parsing() {
        assert_eq!(
            parse_etc_modules("# boot\naf_packet\nipv6 # net\n  loop max_loop=8 \n\n"),
            vec![
                ("af_packet".to_string(), String::new()),
                ("ipv6".to_string(), String::new()),
                ("loop".to_string(), "max_loop=8".to_string())
            ]
        );
    }

    #[test]
    fn proc_modules_parsing() {
        let s = parse_proc_modules("virtio_blk 20480 0 - Live 0x0\nusb-storage 1 0 - Live 0x0\n");
        assert!(s.contains("virtio_blk") && s.contains("usb_storage"));
    }

    #[test]
    fn compressed_images_are_decompressed() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let body = b"\x7fELF fake module".repeat(100);
        let gz = dir.path().join("m.ko.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&body).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_module_image(&gz).unwrap(), body);
        let zst = dir.path().join("m.ko.zst");
        std::fs::write(&zst, zstd::stream::encode_all(&body[..], 3).unwrap()).unwrap();
        assert_eq!(read_module_image(&zst).unwrap(), body);
        let xz = dir.path().join("m.ko.xz");
        std::fs::write(&xz, b"\xfd7zXZ").unwrap();
        assert!(read_module_image(&xz)
            .unwrap_err()
            .to_string()
            .contains("xz"));
        let bad = dir.path().join("bad.ko.gz");
        std::fs::write(&bad, b"not gzip").unwrap();
        assert!(read_module_image(&bad)
            .unwrap_err()
            .to_string()
            .contains("gzip"));
    }

    #[test]
    fn modaliases_are_collected_from_a_sysfs_like_tree() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("pci0000:00/0000:00:01.0/virtio0")).unwrap();
        std::fs::write(
            d.join("pci0000:00/0000:00:01.0/modalias"),
            "pci:v00001AF4d00001001\n",
        )
        .unwrap();
        std::fs::write(
            d.join("pci0000:00/0000:00:01.0/virtio0/modalias"),
            "virtio:d00000002v00001AF4\n",
        )
        .unwrap();
        std::fs::write(d.join("pci0000:00/modalias"), "\n").unwrap();
        // A symlink loop must not be followed.
        std::os::unix::fs::symlink(d, d.join("pci0000:00/loop")).unwrap();
        assert_eq!(
            collect_modaliases(d),
            vec![
                "pci:v00001AF4d00001001".to_string(),
                "virtio:d00000002v00001AF4".to_string()
            ]
        );
    }

    /// The host's real metadata directory (CI installs a Debian kernel in /lib/modules).
    fn host_dir() -> PathBuf {
        std::fs::read_dir("/lib/modules")
            .expect("/lib/modules (a Debian kernel is part of the test environment)")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("modules.dep").exists())
            .expect("a /lib/modules/<kver>/modules.dep")
    }

    #[test]
    fn host_metadata_resolves_virtio_and_vfat() {
        let db = ModuleDb::load(&host_dir()).unwrap();
        // virtio-blk's device id 2, any vendor.
        let m = db.match_alias("virtio:d00000002v00001AF4");
        assert!(
            m.contains(&"virtio_blk".to_string()) || db.is_builtin("virtio_blk"),
            "{m:?}"
        );
        if db.has_module("virtio_blk") {
            let order = db.load_order("virtio_blk");
            assert_eq!(order.last().map(String::as_str), Some("virtio_blk"));
            let pos = |n: &str| order.iter().position(|x| x == n);
            if let (Some(v), Some(b)) = (pos("virtio"), pos("virtio_blk")) {
                assert!(v < b);
            }
        }
        if db.has_module("vfat") {
            let order = db.load_order("vfat");
            let fat = order.iter().position(|x| x == "fat").unwrap();
            let vfat = order.iter().position(|x| x == "vfat").unwrap();
            assert!(fat < vfat, "{order:?}");
            assert_eq!(db.resolve("fs-vfat").0, vec!["vfat".to_string()]);
        }
        // Regression: `softdep ext4 pre: crypto-crc32c` was normalised to `crypto_crc32c` and
        // matched no alias, so ext4 mounts failed with "Cannot load crc32c driver".
        let ext4 = db.load_order("ext4");
        assert!(ext4.iter().any(|m| m.starts_with("crc32c")), "{ext4:?}");
        // Every module's closure only names modules that exist in modules.dep.
        for name in ["ext4", "isofs", "squashfs", "usb_storage", "sd_mod"] {
            for m in db.load_order(name) {
                assert!(db.has_module(&m), "{name}: {m}");
            }
        }
    }

    #[test]
    fn host_softdeps_are_parsed() {
        let text = std::fs::read_to_string(host_dir().join("modules.softdep")).unwrap();
        assert!(
            text.lines().any(|l| l.starts_with("softdep ")),
            "host modules.softdep has entries"
        );
        let db = ModuleDb::parse("", "", &text, "");
        // Each "softdep X pre: A" line must end up as a pre entry of X.
        for line in text.lines().filter(|l| {
            l.starts_with("softdep ") && (l.contains(" pre: ") || l.contains(" post: "))
        }) {
            let mut w = line.split_whitespace().skip(1);
            let module = normalize(w.next().unwrap());
            let sd = db.softdeps.get(&module).unwrap();
            assert!(!sd.pre.is_empty() || !sd.post.is_empty(), "{line}");
        }
    }
}
