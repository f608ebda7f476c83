//! Kernel modules: resolution and loading as `modprobe` does it, without modprobe.
//!
//! A request is a module name (`modules=`, `/etc/modules`, a filesystem type) or a device's
//! `MODALIAS` (coldplug from `/sys`, hotplug from uevents). The metadata (`modules.dep`,
//! `modules.alias`, `modules.softdep`, `modules.builtin`), name and alias normalisation and the
//! resolution of a name are the `kmod` crate's, shared with mkinitfs, which wrote that metadata
//! for the modules it embedded: a name that is a module (or built in) is that module, anything
//! else is looked up as an alias and loads every match. This module decides what to load and in
//! which order: each module comes with its `modules.dep` closure (dependencies first) and its
//! softdeps (`pre:` before, `post:` after). `blacklist=` and `blacklist` lines in
//! `/etc/modprobe.d/*.conf` stop alias-driven loads only, as in modprobe: a module asked for by
//! name is still loaded. `options` lines supply parameters. Files may be `.ko` (finit_module),
//! `.ko.gz` or `.ko.zst` (decompressed by `kmod`, bounded, then init_module); `.ko.xz` is
//! reported as unsupported (this init is built without xz). A failure is logged, never fatal.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

pub mod schedule;

use schedule::Schedule;

use kmod::{Index, Resolution, Texts};

use crate::sys;

pub use kmod::modules_list::parse as parse_etc_modules;
pub use kmod::{normalize, normalize_alias};

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
    /// A metadata file has a line that cannot be accepted.
    #[error("{}: line {line}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
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

/// The module metadata of one kernel, parsed, with the modprobe.d settings.
#[derive(Debug, Clone, Default)]
pub struct ModuleDb {
    dir: PathBuf,
    index: Index,
    /// From `/etc/modprobe.d`: module → parameters.
    options: HashMap<String, String>,
    /// From `/etc/modprobe.d` `blacklist` lines.
    blacklist: HashSet<String>,
}

/// The largest metadata file read (a distribution kernel's `modules.alias` is about 1.5 MiB).
const MAX_METADATA: u64 = 64 << 20;

impl ModuleDb {
    /// Reads `modules.dep` (required), `modules.alias`, `modules.softdep`, `modules.builtin`
    /// (optional) from `dir` (`/lib/modules/<kver>`).
    pub fn load(dir: &Path) -> Result<Self, ModuleError> {
        let read = |name: &str, required: bool| -> Result<String, ModuleError> {
            let path = dir.join(name);
            let read_err = |source| ModuleError::Read {
                path: path.clone(),
                source,
            };
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(String::new())
                }
                Err(e) => return Err(read_err(e)),
            };
            let mut bytes = Vec::new();
            file.take(MAX_METADATA + 1)
                .read_to_end(&mut bytes)
                .map_err(read_err)?;
            if bytes.len() as u64 > MAX_METADATA {
                return Err(read_err(std::io::Error::other("larger than 64 MiB")));
            }
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        let kver = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let mut db = Self::parse(
            Texts {
                dep: &read("modules.dep", true)?,
                alias: &read("modules.alias", false)?,
                softdep: &read("modules.softdep", false)?,
                builtin: &read("modules.builtin", false)?,
            },
            kver.as_deref().unwrap_or(""),
        )
        .map_err(|e| ModuleError::Parse {
            path: dir.join(e.file),
            line: e.error.line,
            reason: e.error.reason,
        })?;
        db.dir = dir.to_path_buf();
        Ok(db)
    }

    /// Builds a database from the texts of the metadata files of kernel `kver`.
    pub fn parse(texts: Texts<'_>, kver: &str) -> Result<Self, kmod::FileError> {
        Ok(Self {
            index: Index::parse(texts, kver)?,
            ..Self::default()
        })
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
        self.index.dep.by_name(name).is_some()
    }

    /// Whether `name` is built into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.index.is_builtin(name)
    }

    /// Whether `name` is blacklisted by modprobe.d.
    pub fn is_blacklisted(&self, name: &str) -> bool {
        self.blacklist.contains(&normalize(name))
    }

    /// Modules whose alias pattern matches `modalias`, in modules.alias order, deduplicated.
    pub fn match_alias(&self, modalias: &str) -> Vec<String> {
        self.index
            .aliases
            .lookup(modalias)
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// What a request resolves to ([`kmod::Index::resolve`]): the module itself if it is one (or
    /// built in), else its alias matches (the bool says whether the blacklist applies, i.e. the
    /// load came via an alias).
    pub fn resolve(&self, request: &str) -> (Vec<String>, bool) {
        match self.index.resolve(request) {
            Resolution::Module(name) | Resolution::Builtin(name) => (vec![name], false),
            Resolution::Aliases(names) => (names, true),
        }
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
        let soft: Vec<&kmod::SoftDep> = self.index.softdeps_of(module).collect();
        for pre in soft.iter().flat_map(|s| &s.pre) {
            for m in self.resolve(pre).0 {
                self.visit(&m, order, seen, depth + 1);
            }
        }
        if let Some(dep) = self.index.dep.by_name(module) {
            for path in &dep.deps {
                if let Some(d) = self.index.dep.by_path(path) {
                    self.visit(&d.name, order, seen, depth + 1);
                }
            }
            order.push(module.to_string());
        }
        for post in soft.iter().flat_map(|s| &s.post) {
            for m in self.resolve(post).0 {
                self.visit(&m, order, seen, depth + 1);
            }
        }
    }

    /// Absolute path of a module's file.
    pub fn path_of(&self, module: &str) -> Option<PathBuf> {
        let rel = &self.index.dep.by_name(module)?.path;
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

/// Reads a module file into memory (at most [`kmod::MAX_MODULE`] bytes), decompressing `.gz` and
/// `.zst` ([`kmod::decompress`], bounded too).
pub fn read_module_image(path: &Path) -> Result<Vec<u8>, ModuleError> {
    let read_err = |source| ModuleError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut raw = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(kmod::MAX_MODULE + 1).read_to_end(&mut raw))
        .map_err(read_err)?;
    if raw.len() as u64 > kmod::MAX_MODULE {
        return Err(ModuleError::Load {
            path: path.to_path_buf(),
            reason: format!("larger than {} MiB", kmod::MAX_MODULE >> 20),
        });
    }
    let compression = kmod::Compression::of(&path.to_string_lossy());
    match kmod::decompress(&raw, compression) {
        Ok(image) => Ok(image.into_owned()),
        Err(e) => Err(ModuleError::Load {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
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
    /// Modules loading ahead in a thread of their own ([`Loader::preload`]).
    preload: Option<Preload>,
}

/// What one insertion gave: the module, its result, how long it took.
type Insertion = (String, Result<(), (bool, String)>, std::time::Duration);

/// Modules [`Loader::preload`] loads in a thread of their own, and that thread.
#[derive(Debug)]
struct Preload {
    /// Every module the thread loads (the closures of the names asked for).
    modules: HashSet<String>,
    thread: std::thread::JoinHandle<Vec<Insertion>>,
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
            preload: None,
        }
    }

    /// Starts loading `names` with their dependencies, quietly (as [`Loader::load_quietly_all`]),
    /// one after the other in a thread of their own: modules the boot will very likely ask for
    /// later, loaded while it does other work. Whatever later asks for one of them first waits
    /// for that thread and records its results ([`Loader::settle_preload`]), so a module is
    /// never used before it is loaded nor loaded twice. Names the initramfs does not carry are
    /// skipped, and so is a name whose closure holds a blacklisted module (`blacklist=` or
    /// modprobe.d): loading ahead must not load what the boot would not have asked for. Without
    /// a thread, nothing loads ahead (the later requests load them).
    pub fn preload(&mut self, names: &[&str]) {
        self.preload_with(names, insert_file);
    }

    /// [`Loader::preload`] with the insertion given (tests load without a kernel).
    fn preload_with(&mut self, names: &[&str], insert: InsertFileFn) {
        self.settle_preload();
        let mut modules = HashSet::new();
        let mut plan = Vec::new();
        for name in names {
            let target = normalize(name);
            if self.is_loaded(&target) || !self.db.has_module(&target) {
                continue;
            }
            let order = self.db.load_order(&target);
            if order
                .iter()
                .any(|m| self.blacklist.contains(m) || self.db.is_blacklisted(m))
            {
                log::debug!("module {target}: blacklisted, not loaded ahead");
                continue;
            }
            for m in order {
                if self.is_loaded(&m)
                    || self.failures.contains_key(&m)
                    || !modules.insert(m.clone())
                {
                    continue;
                }
                plan.push((
                    m.clone(),
                    self.db.path_of(&m),
                    self.db.options_for(&m).to_string(),
                ));
            }
        }
        if plan.is_empty() {
            return;
        }
        let thread = std::thread::Builder::new()
            .name("preload".into())
            .spawn(move || {
                plan.into_iter()
                    .map(|(m, path, params)| {
                        let started = sys::boottime();
                        let result = insert(path.as_deref(), &params);
                        (m, result, sys::boottime().saturating_sub(started))
                    })
                    .collect()
            });
        match thread {
            Ok(thread) => self.preload = Some(Preload { modules, thread }),
            Err(e) => log::debug!("modules: no thread to load ahead ({e})"),
        }
    }

    /// Waits for the modules [`Loader::preload`] started, if any, and records their results as
    /// a quiet load would. (A thread that panicked records nothing: a later request loads its
    /// modules again, and one already in the kernel is success.)
    pub fn settle_preload(&mut self) {
        let Some(p) = self.preload.take() else {
            return;
        };
        let results = p.thread.join().unwrap_or_default();
        let mut newly = Vec::new();
        for (m, result, took) in results {
            self.record(m, result, took, true, true, &mut newly);
        }
    }

    /// [`Loader::settle_preload`] if a module of these targets' closures is loading ahead.
    fn settle_preload_of(&mut self, targets: &[String]) {
        let Some(p) = &self.preload else {
            return;
        };
        let needed = targets
            .iter()
            .any(|t| self.db.load_order(t).iter().any(|m| p.modules.contains(m)));
        if needed {
            self.settle_preload();
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

    /// Loads `targets` with their closures. Logging: a module file the initramfs builder left out,
    /// or a driver that finds no device, is normal for alias matches (modules.alias lists every
    /// module of the kernel) and for the dependencies and softdeps of a target, and logged at
    /// debug level ([`failure_is_debug`]); other failures are warnings unless `quiet`.
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
        self.settle_preload_of(targets);
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
                let started = sys::boottime();
                let result = self.insert(&m, &params);
                let took = sys::boottime().saturating_sub(started);
                // A dependency or softdep (crc-t10dif's crct10dif_pclmul under sd_mod) is
                // reported like an alias match: ENODEV or an absent file is normal there.
                let part = via_alias || m != *target;
                self.record(m, result, took, part, quiet, &mut newly);
            }
        }
        Loaded::Modules(newly)
    }

    /// Records one load's result: loaded (added to `newly`), or failed (logged as
    /// [`Loader::load_targets`] says, and not tried again).
    fn record(
        &mut self,
        m: String,
        result: Result<(), (bool, String)>,
        took: std::time::Duration,
        incidental: bool,
        quiet: bool,
        newly: &mut Vec<String>,
    ) {
        match result {
            Ok(()) => {
                log::debug!("module {m}: loaded ({} ms)", took.as_millis());
                self.loaded.insert(m.clone());
                newly.push(m);
            }
            Err((expected, reason)) => {
                if failure_is_debug(expected, incidental, quiet) {
                    log::debug!("module {m}: {reason}");
                } else {
                    log::warn!("module {m}: {reason}");
                }
                self.failures.insert(m, reason);
            }
        }
    }

    /// Inserts one module (see the free [`insert`]).
    fn insert(&self, module: &str, params: &str) -> Result<(), (bool, String)> {
        insert(&self.db, module, params)
    }

    /// Loads every module matching these devices' `MODALIAS`es (each distinct modalias once) and
    /// their closures, as [`Loader::load_alias`] one by one would, through one [`schedule`] (run
    /// by [`workers`] threads). Returns the modules newly loaded.
    pub fn load_aliases(&mut self, modaliases: &[String]) -> Vec<String> {
        let mut requests = Vec::new();
        for a in modaliases {
            if self.seen_aliases.insert(a.clone()) {
                requests.push(Request {
                    targets: self.db.match_alias(a),
                    via_alias: true,
                    quiet: false,
                });
            }
        }
        self.load_parallel(&requests)
    }

    /// [`Loader::load_quietly`] for several modules, through one [`schedule`].
    pub fn load_quietly_all(&mut self, names: &[&str]) -> Vec<String> {
        let requests: Vec<Request> = names
            .iter()
            .map(|n| normalize(n))
            .filter(|m| !self.is_loaded(m) && self.db.has_module(m))
            .map(|m| Request {
                targets: vec![m],
                via_alias: false,
                quiet: true,
            })
            .collect();
        self.load_parallel(&requests)
    }

    /// The chains of `requests` (what is already loaded or failed left out), loaded by up to
    /// [`workers`] threads in [`Schedule`] order; results are logged and recorded afterwards,
    /// in schedule order, as the sequential loader would.
    fn load_parallel(&mut self, requests: &[Request]) -> Vec<String> {
        self.load_parallel_with(requests, &insert)
    }

    /// [`Loader::load_parallel`] with the insertion given (tests load without a kernel).
    fn load_parallel_with(&mut self, requests: &[Request], insert: &InsertFn<'_>) -> Vec<String> {
        if self.preload.is_some() {
            let targets: Vec<String> = requests.iter().flat_map(|r| r.targets.clone()).collect();
            self.settle_preload_of(&targets);
        }
        let mut chains: Vec<Vec<String>> = Vec::new();
        // Per module: (parameters, via an alias, quiet), from the first request naming it.
        let mut how: HashMap<String, (String, bool, bool)> = HashMap::new();
        for r in requests {
            for target in &r.targets {
                if r.via_alias
                    && (self.blacklist.contains(target) || self.db.is_blacklisted(target))
                {
                    log::debug!("module {target}: blacklisted, not loaded");
                    continue;
                }
                let chain: Vec<String> = self
                    .db
                    .load_order(target)
                    .into_iter()
                    .filter(|m| !self.is_loaded(m) && !self.failures.contains_key(m))
                    .collect();
                for m in &chain {
                    how.entry(m.clone()).or_insert_with(|| {
                        (self.db.options_for(m).to_string(), r.via_alias, r.quiet)
                    });
                }
                if !chain.is_empty() {
                    chains.push(chain);
                }
            }
        }
        let schedule = Schedule::new(&chains);
        if schedule.is_empty() {
            return Vec::new();
        }
        let threads = workers().min(schedule.len());
        let state = Mutex::new((schedule, Vec::new()));
        let wake = Condvar::new();
        let db = &self.db;
        let how = &how;
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let mut g = state.lock().unwrap_or_else(|e| e.into_inner());
                    let module = loop {
                        if g.0.is_done() {
                            return;
                        }
                        match g.0.start_next() {
                            Some(m) => break m,
                            None => g = wake.wait(g).unwrap_or_else(|e| e.into_inner()),
                        }
                    };
                    drop(g);
                    let params = how.get(&module).map_or("", |h| h.0.as_str());
                    let started = sys::boottime();
                    let result = insert(db, &module, params);
                    let took = sys::boottime().saturating_sub(started);
                    let mut g = state.lock().unwrap_or_else(|e| e.into_inner());
                    g.0.settle(&module);
                    g.1.push((module, result, took));
                    drop(g);
                    wake.notify_all();
                });
            }
        });
        let (_, results) = state.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut newly = Vec::new();
        for (m, result, took) in results {
            let (_, via_alias, quiet) = how.get(&m).cloned().unwrap_or_default();
            self.record(m, result, took, via_alias, quiet, &mut newly);
        }
        newly
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

/// Whether a failed load is logged at debug level rather than as a warning: always when `quiet`,
/// and when the failure is normal (`expected`: the file is not in the initramfs, or the driver
/// found no device) for a module asked for through an alias or as part of another's load order
/// (`incidental`: a dependency or softdep of the module requested).
fn failure_is_debug(expected: bool, incidental: bool, quiet: bool) -> bool {
    quiet || (expected && incidental)
}

/// How a module gets into the kernel: `(metadata, module, parameters)`, the error saying whether
/// the file is simply absent.
type InsertFn<'a> = dyn Fn(&ModuleDb, &str, &str) -> Result<(), (bool, String)> + Sync + 'a;

/// How [`Loader::preload`]'s thread gets a module file into the kernel ([`insert_file`]).
type InsertFileFn = fn(Option<&Path>, &str) -> Result<(), (bool, String)>;

/// One request of a parallel load: its modules, and how failures are reported.
struct Request {
    targets: Vec<String>,
    /// The blacklist applies, and a module file the initramfs left out is normal.
    via_alias: bool,
    /// Every failure at debug level.
    quiet: bool,
}

/// Threads of a load: one. The schedule lets modules of different devices load side by side, and
/// with one emulated CPU that shortened media discovery (1.31 -> 1.15 s), but with two it cost more
/// than it overlapped (boot drivers 0.12 -> 0.42 s, media discovery 1.60 -> 2.54 s; `make bench`,
/// qemu TCG, paired boots): concurrent `init_module` calls on a loaded two-CPU guest contend. One
/// worker loads in schedule order (each module after what precedes it), until that is understood.
fn workers() -> usize {
    1
}

/// Inserts one module of `db`; the error says whether that is normal for an alias match (the
/// file is absent, or the driver found no device: [`no_such_device`]).
fn insert(db: &ModuleDb, module: &str, params: &str) -> Result<(), (bool, String)> {
    insert_file(db.path_of(module).as_deref(), params)
}

/// [`insert`] of the file `modules.dep` names (`None`: it names none).
fn insert_file(path: Option<&Path>, params: &str) -> Result<(), (bool, String)> {
    let path = path.ok_or_else(|| (true, "not in modules.dep".to_string()))?;
    if !path.exists() {
        return Err((true, format!("{}: not in this initramfs", path.display())));
    }
    let name = path.to_string_lossy();
    let failed = |e: sys::SysError| (no_such_device(&e), e.to_string());
    if name.ends_with(".ko") {
        sys::load_module_file(path, params).map_err(failed)
    } else {
        let image = read_module_image(path).map_err(|e| (false, e.to_string()))?;
        sys::load_module_image(path, &image, params).map_err(failed)
    }
}

/// Whether the kernel refused a module because it found nothing to drive (`ENODEV`: a
/// CPU-feature module such as crct10dif_pclmul on a CPU without the feature). Like a module file
/// the initramfs left out, that is normal for an alias match and logged at debug level only, as
/// `modprobe -q` keeps it quiet.
fn no_such_device(e: &sys::SysError) -> bool {
    matches!(
        e,
        sys::SysError::LoadModule {
            errno: nix::errno::Errno::ENODEV,
            ..
        }
    )
}

/// Every device `modalias` of a sysfs tree mounted at `sys` (coldplug), sorted and deduplicated.
///
/// A device has a `modalias` when its bus or its class gives it one, so the devices are taken
/// from `bus/*/devices/` and `class/*/` (links to the devices) instead of walking all of
/// `devices/`: under qemu TCG the walk of `/sys/devices` (every `power/` directory, every
/// attribute) took 120 to 170 ms, and media discovery waits for it. The processor's feature
/// alias (`cpu:type:...`, on the root of the `cpu` subsystem, which is on neither list) is read
/// too. A test checks that this finds what the whole walk finds on the host's `/sys`.
pub fn collect_modaliases(sys: &Path) -> Vec<String> {
    collect_modaliases_except(sys, &[])
}

/// What [`collect_modaliases`] reads, but the devices of `buses` (read before them with
/// [`collect_bus_modaliases`]: coldplug's walk reads the [`FIRST_BUSES`] once).
pub fn collect_modaliases_except(sys: &Path, buses: &[&str]) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    read_modalias(&sys.join("devices/system/cpu"), &mut out);
    let mut seen = 0usize;
    let groups = [("bus", "devices"), ("class", "")];
    for (top, sub) in groups {
        let Ok(kinds) = std::fs::read_dir(sys.join(top)) else {
            continue;
        };
        for kind in kinds.flatten() {
            if top == "bus" && buses.iter().any(|b| kind.file_name() == *b) {
                continue;
            }
            if !read_modaliases_in(&kind.path().join(sub), &mut seen, &mut out) {
                return out.into_iter().collect(); // a pathological /sys; coldplug is best effort
            }
        }
    }
    out.into_iter().collect()
}

/// The buses whose devices coldplug reads before all the others ([`collect_bus_modaliases`]):
/// on PCs the controllers of boot media (USB, SATA, NVMe, most SD readers, virtio) are on PCI,
/// and media discovery starts loading their drivers while the rest of `/sys` is read (some 30 ms
/// under qemu TCG, beside the boot's other threads). A controller enumerated otherwise (the
/// ACPI-enumerated SD/eMMC of Atom boards, `acpi:80860F14`) gets its driver after the PCI ones.
pub const FIRST_BUSES: [&str; 1] = ["pci"];

/// The `modalias` of every device on `bus` (`bus/BUS/devices/*` of the sysfs tree at `sys`),
/// sorted and deduplicated: a part of what [`collect_modaliases`] reads.
pub fn collect_bus_modaliases(sys: &Path, bus: &str) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    read_modaliases_in(&sys.join("bus").join(bus).join("devices"), &mut 0, &mut out);
    out.into_iter().collect()
}

/// Reads the `modalias` of every device (entry) of `dir` into `out`, counting them in `seen`;
/// false once more than [`MAX_COLDPLUG_DEVICES`] were seen.
fn read_modaliases_in(
    dir: &Path,
    seen: &mut usize,
    out: &mut std::collections::BTreeSet<String>,
) -> bool {
    let Ok(devices) = std::fs::read_dir(dir) else {
        return true;
    };
    for device in devices.flatten() {
        *seen += 1;
        if *seen > MAX_COLDPLUG_DEVICES {
            return false;
        }
        read_modalias(&device.path(), out);
    }
    true
}

/// Adds the device's `modalias`, if it has a non-empty one, to `out`.
fn read_modalias(device: &Path, out: &mut std::collections::BTreeSet<String>) {
    if let Ok(text) = std::fs::read_to_string(device.join("modalias")) {
        let t = text.trim();
        if !t.is_empty() {
            out.insert(t.to_string());
        }
    }
}

/// Most device entries one pass of coldplug over `/sys` reads ([`collect_modaliases`],
/// [`collect_bus_modaliases`]).
const MAX_COLDPLUG_DEVICES: usize = 200_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_failures_of_incidental_modules_are_debug() {
        // sd_mod named on the command line, crct10dif_pclmul (a softdep of its crc-t10dif)
        // answering ENODEV on a CPU without PCLMULQDQ: debug.
        assert!(failure_is_debug(true, true, false));
        // The module named itself, absent or without a device: a warning.
        assert!(!failure_is_debug(true, false, false));
        // Any other failure is a warning, unless quiet.
        assert!(!failure_is_debug(false, true, false));
        assert!(failure_is_debug(false, false, true));
    }

    #[test]
    fn a_driver_without_a_device_is_not_a_warning() {
        let err = |errno| sys::SysError::LoadModule {
            path: "/lib/modules/k/crct10dif-pclmul.ko".into(),
            errno,
        };
        assert!(no_such_device(&err(nix::errno::Errno::ENODEV)));
        assert!(!no_such_device(&err(nix::errno::Errno::EINVAL)));
        assert!(!no_such_device(&err(nix::errno::Errno::ENOEXEC)));
    }

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

    fn texts<'a>(dep: &'a str, alias: &'a str, softdep: &'a str, builtin: &'a str) -> Texts<'a> {
        Texts {
            dep,
            alias,
            softdep,
            builtin,
        }
    }

    fn db() -> ModuleDb {
        ModuleDb::parse(texts(DEP, ALIAS, SOFTDEP, BUILTIN), "1").unwrap()
    }

    #[test]
    fn names_are_normalised() {
        assert!(db().has_module("usb-storage"));
        assert!(db().has_module("nls-cp437"));
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
            texts(
                "kernel/fs/ext4/ext4.ko:\nkernel/crypto/crc32c_generic.ko:\n",
                "alias crypto-crc32c crc32c_generic\n",
                "softdep ext4 pre: crypto-crc32c\n",
                "",
            ),
            "1",
        )
        .unwrap();
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

    /// What the fake insertions of the preload tests did.
    static PRELOADED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    /// Whether the blocking fake may go on.
    static RELEASE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Succeeds once [`RELEASE`] is set (at most 10 s), recording the file.
    fn blocked_insert(path: Option<&Path>, _: &str) -> Result<(), (bool, String)> {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !RELEASE.load(std::sync::atomic::Ordering::SeqCst)
            && std::time::Instant::now() < until
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let name = path.map(|p| p.display().to_string()).unwrap_or_default();
        PRELOADED.lock().unwrap().push(name);
        Ok(())
    }

    /// Modules loading ahead delay only the loads that need one of them, and are then known as
    /// loaded: never loaded a second time, never used before they are in.
    #[test]
    fn preloaded_modules_are_waited_for_by_what_needs_them_only() {
        let mut l = Loader::with_loaded(db(), &[], HashSet::new());
        l.preload_with(&["vfat", "not_a_module"], blocked_insert);
        assert!(!l.is_loaded("vfat"));
        // virtio_blk needs nothing of vfat's closure: it loads while the preload is blocked.
        let other = |_: &ModuleDb, _: &str, _: &str| Ok(());
        let requests = [Request {
            targets: vec!["virtio_blk".to_string()],
            via_alias: false,
            quiet: false,
        }];
        assert_eq!(
            l.load_parallel_with(&requests, &other),
            vec!["virtio", "virtio_ring", "virtio_blk"]
        );
        assert!(PRELOADED.lock().unwrap().is_empty());
        // fat is in vfat's closure: its load waits for the preload, then has nothing to do.
        RELEASE.store(true, std::sync::atomic::Ordering::SeqCst);
        let twice = |_: &ModuleDb, m: &str, _: &str| Err((false, format!("{m} loaded twice")));
        let requests = [Request {
            targets: vec!["fat".to_string()],
            via_alias: false,
            quiet: false,
        }];
        assert!(l.load_parallel_with(&requests, &twice).is_empty());
        assert!(l.failures.is_empty(), "{:?}", l.failures);
        for m in ["fat", "vfat", "nls_cp437"] {
            assert!(l.is_loaded(m), "{m}");
        }
        // In load order, each module once.
        let files = PRELOADED.lock().unwrap().clone();
        let names: Vec<&str> = files
            .iter()
            .map(|f| f.rsplit('/').next().unwrap().split('.').next().unwrap())
            .collect();
        assert_eq!(names, l.db().load_order("vfat"));
    }

    /// A name whose closure holds a blacklisted module is not loaded ahead.
    #[test]
    fn blacklisted_modules_are_not_loaded_ahead() {
        let mut db = db();
        db.add_modprobe_conf("blacklist nls_cp437\n");
        let mut l = Loader::with_loaded(db, &["virtio".to_string()], HashSet::new());
        l.preload(&["vfat", "virtio_blk", "fat"]);
        let p = l.preload.as_ref().expect("fat is not blacklisted");
        assert_eq!(p.modules, HashSet::from(["fat".to_string()]));
        l.settle_preload();
    }

    /// A preload whose files are not in the initramfs records failures (quietly) that later
    /// requests do not retry, as a quiet load would.
    #[test]
    fn preload_failures_are_recorded_as_a_quiet_load_would() {
        let mut l = Loader::with_loaded(db(), &[], HashSet::new());
        l.preload(&["ext4"]);
        l.settle_preload();
        let mut q = Loader::with_loaded(db(), &[], HashSet::new());
        q.load_quietly_all(&["ext4"]);
        assert!(!l.failures.is_empty());
        assert_eq!(l.failures, q.failures);
        assert!(l.load_quietly_all(&["ext4"]).is_empty());
    }

    #[test]
    fn parallel_load_fails_as_the_sequential_one_does() {
        let aliases = vec![
            "virtio:d00000002v1".to_string(),
            "pci:v00001234d00001111sv0sd0bc03sc00i00".to_string(),
            "usb:v1p1d1dc0dsc0dp0ic08isc06ip50in0".to_string(),
            "pci:unknown".to_string(),
        ];
        let mut seq = Loader::with_loaded(db(), &["bochs".to_string()], HashSet::new());
        for a in &aliases {
            seq.load_alias(a);
        }
        let mut par = Loader::with_loaded(db(), &["bochs".to_string()], HashSet::new());
        assert!(par.load_aliases(&aliases).is_empty());
        assert!(!par.failures.is_empty());
        assert_eq!(par.failures, seq.failures);
        // Each modalias once, failures not retried.
        let before = par.failures.clone();
        assert!(par.load_aliases(&aliases).is_empty());
        assert_eq!(par.failures, before);
    }

    #[test]
    fn parallel_load_keeps_dependencies_first_and_goes_on_after_a_failure() {
        for _ in 0..20 {
            let done: Mutex<Vec<String>> = Mutex::new(Vec::new());
            // Violations are collected, not asserted in the workers (a panicking worker would
            // leave the others waiting for a module that never settles).
            let early: Mutex<Vec<String>> = Mutex::new(Vec::new());
            let fake = |db: &ModuleDb, m: &str, _: &str| -> Result<(), (bool, String)> {
                let order = db.load_order(m);
                {
                    let d = done.lock().unwrap();
                    for dep in order.iter().take_while(|x| x.as_str() != m) {
                        if dep != "jbd2" && !d.contains(dep) {
                            early.lock().unwrap().push(format!("{m} before {dep}"));
                        }
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
                done.lock().unwrap().push(m.to_string());
                if m == "virtio" {
                    Err((false, "refused".into()))
                } else {
                    Ok(())
                }
            };
            let mut l = Loader::with_loaded(db(), &[], HashSet::from(["jbd2".to_string()]));
            let requests: Vec<Request> = ["virtio_blk", "usb_storage", "ext4", "vfat"]
                .iter()
                .map(|m| Request {
                    targets: vec![m.to_string()],
                    via_alias: false,
                    quiet: false,
                })
                .collect();
            let mut newly = l.load_parallel_with(&requests, &fake);
            newly.sort();
            assert_eq!(
                newly,
                [
                    "crc16",
                    "crc32c_generic",
                    "ext4",
                    "fat",
                    "mbcache",
                    "nls_cp437",
                    "usb_storage",
                    "usbcore",
                    "vfat",
                    "virtio_blk",
                    "virtio_ring"
                ]
            );
            assert_eq!(*early.lock().unwrap(), Vec::<String>::new());
            // Already loaded: not inserted again; each module once.
            let d = done.lock().unwrap();
            assert!(!d.contains(&"jbd2".to_string()));
            assert_eq!(d.len(), 12, "{d:?}");
            assert_eq!(l.failures.keys().collect::<Vec<_>>(), ["virtio"]);
            assert!(l.is_loaded("virtio_blk") && !l.is_loaded("virtio"));
        }
    }

    #[test]
    fn corrupt_metadata_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("modules.dep"), "kernel/a.ko: kernel/b.ko\n").unwrap();
        let err = ModuleDb::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "modules.dep: line 1: kernel/a.ko: dependency kernel/b.ko has no line of its own"
            ),
            "{err}"
        );
        std::fs::remove_file(dir.path().join("modules.dep")).unwrap();
        assert!(matches!(
            ModuleDb::load(dir.path()),
            Err(ModuleError::Read { .. })
        ));
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

    /// A sysfs-like tree: devices under `devices/`, linked from `bus/*/devices/` and `class/*/`.
    #[test]
    fn modaliases_are_collected_from_buses_classes_and_the_cpu() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let pci = d.join("devices/pci0000:00/0000:00:01.0");
        let virtio = pci.join("virtio0");
        let input = d.join("devices/platform/i8042/serio0/input/input0");
        let cpu = d.join("devices/system/cpu");
        for p in [&virtio, &input, &cpu] {
            std::fs::create_dir_all(p).unwrap();
        }
        std::fs::write(pci.join("modalias"), "pci:v00001AF4d00001001\n").unwrap();
        std::fs::write(virtio.join("modalias"), "virtio:d00000002v00001AF4\n").unwrap();
        std::fs::write(input.join("modalias"), "input:b0011v0001p0001\n").unwrap();
        std::fs::write(cpu.join("modalias"), "cpu:type:x86,ven0000\n").unwrap();
        // A device on no bus nor class: not a coldplug device.
        std::fs::write(d.join("devices/pci0000:00/modalias"), "\n").unwrap();
        for (link, target) in [
            ("bus/pci/devices/0000:00:01.0", &pci),
            ("bus/virtio/devices/virtio0", &virtio),
            ("class/input/input0", &input),
        ] {
            std::fs::create_dir_all(d.join(link).parent().unwrap()).unwrap();
            symlink(target, d.join(link)).unwrap();
        }
        // A bus without devices, a class without a modalias.
        std::fs::create_dir_all(d.join("bus/usb/devices")).unwrap();
        std::fs::create_dir_all(d.join("class/block/vda")).unwrap();
        assert_eq!(
            collect_modaliases(d),
            vec![
                "cpu:type:x86,ven0000".to_string(),
                "input:b0011v0001p0001".to_string(),
                "pci:v00001AF4d00001001".to_string(),
                "virtio:d00000002v00001AF4".to_string(),
            ]
        );
        assert!(collect_modaliases(&d.join("missing")).is_empty());
        // The walk's second part: everything but the first buses' devices.
        assert_eq!(
            collect_modaliases_except(d, &FIRST_BUSES),
            vec![
                "cpu:type:x86,ven0000".to_string(),
                "input:b0011v0001p0001".to_string(),
                "virtio:d00000002v00001AF4".to_string(),
            ]
        );
        assert_eq!(
            collect_bus_modaliases(d, "pci"),
            vec!["pci:v00001AF4d00001001".to_string()]
        );
        assert!(collect_bus_modaliases(d, "usb").is_empty());
        assert!(collect_bus_modaliases(d, "nosuchbus").is_empty());
    }

    /// Every `modalias` under a `devices` tree, by walking all of it: what coldplug read before.
    fn walk_modaliases(sys_devices: &Path) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let mut stack = vec![sys_devices.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(e.path());
                } else if ft.is_file() && e.file_name() == "modalias" {
                    if let Ok(text) = std::fs::read_to_string(e.path()) {
                        if !text.trim().is_empty() {
                            out.insert(text.trim().to_string());
                        }
                    }
                }
            }
        }
        out
    }

    /// On the host's real `/sys`, the buses and classes hold every modalias the whole walk finds.
    #[test]
    fn buses_and_classes_find_what_the_whole_walk_finds_on_this_host() {
        let sys = Path::new("/sys");
        if !sys.join("bus").is_dir() {
            panic!("/sys is not mounted on this host: coldplug cannot be compared");
        }
        let walked = walk_modaliases(&sys.join("devices"));
        let fast: std::collections::BTreeSet<String> =
            collect_modaliases(sys).into_iter().collect();
        assert!(!walked.is_empty(), "no modalias under /sys/devices");
        let missed: Vec<&String> = walked.difference(&fast).collect();
        assert!(missed.is_empty(), "coldplug misses {missed:?}");
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
        let db = ModuleDb::parse(texts("", "", &text, ""), "1").unwrap();
        // Each "softdep X pre: A" line must end up as a pre entry of X.
        for line in text.lines().filter(|l| {
            l.starts_with("softdep ") && (l.contains(" pre: ") || l.contains(" post: "))
        }) {
            let mut w = line.split_whitespace().skip(1);
            let module = normalize(w.next().unwrap());
            let found = db
                .index
                .softdeps_of(&module)
                .any(|sd| !sd.pre.is_empty() || !sd.post.is_empty());
            assert!(found, "{line}");
        }
    }
}
