//! The solver: (world, installed, available packages) -> the package set and the ordered
//! [`Change`]s that get there. No I/O: it works on a [`Pool`].
//!
//! apk-tools v3 semantics, approximated by a deterministic search: world dependencies are resolved
//! depth-first, each name picking the preferred provider (apk-format.md §8.6: pinning, keeping what
//! is installed unless upgrading, highest provided version, provider priority, repository order);
//! when a later constraint or conflict invalidates an earlier choice the constraint is learned and
//! the search restarts; `install_if` packages are added once their conditions hold. The changes are
//! ordered as apk orders them (§8.7). What cannot be satisfied is reported in apk's error format.

use crate::dep::Dependency;
use crate::pool::{PkgId, Pool, Provider};
use crate::version;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// Solver flags.
#[derive(Clone, Debug, Default)]
pub struct SolverOptions {
    /// `apk upgrade`: prefer the newest version of every name.
    pub upgrade_all: bool,
    /// Names to upgrade (`apk add -u NAME`, `apk upgrade NAME`).
    pub upgrade: HashSet<String>,
    /// Names to reinstall (`apk fix`).
    pub reinstall: HashSet<String>,
    /// `--latest`: always the newest version.
    pub latest: bool,
    /// `--available`: drop packages that no repository has.
    pub available: bool,
    /// `--ignore NAME`: keep these as they are during an upgrade.
    pub ignore: HashSet<String>,
}

/// Who asked for a dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The world file / command line.
    World,
    /// A selected package.
    Pkg(PkgId),
}

#[derive(Clone, Debug)]
struct Req {
    dep: Dependency,
    from: Origin,
}

#[derive(Clone, Debug, Default)]
struct Pin {
    /// Tags allowed besides untagged repositories.
    allowed: Vec<String>,
    /// Tag whose packages are preferred (None: untagged preferred).
    preferred: Option<String>,
}

/// What kind of change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// New package.
    Install,
    /// Removal.
    Purge,
    /// Newer version.
    Upgrade,
    /// Older version.
    Downgrade,
    /// Same version, different identity.
    Replace,
    /// Same package again.
    Reinstall,
    /// Same package, tag changed.
    Pinning,
}

/// One change of the transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Kind.
    pub kind: ChangeKind,
    /// Package being replaced or removed.
    pub old: Option<PkgId>,
    /// Package being installed.
    pub new: Option<PkgId>,
    /// Tag the new package is pinned to.
    pub tag: Option<String>,
}

/// The result of a solve.
#[derive(Clone, Debug, Default)]
pub struct Solution {
    /// Selected packages (the future installed set).
    pub selected: Vec<PkgId>,
    /// Tags of pinned selected packages.
    pub tags: HashMap<PkgId, String>,
    /// Ordered changes.
    pub changes: Vec<Change>,
    /// Problems; non-empty means the transaction must not be committed.
    pub errors: Option<ErrorReport>,
}

struct Attempt<'a> {
    pool: &'a Pool,
    opts: &'a SolverOptions,
    learned: &'a HashMap<String, Vec<Dependency>>,
    chosen: HashMap<String, PkgId>,
    owners: HashMap<String, PkgId>,
    selected: Vec<PkgId>,
    is_sel: Vec<bool>,
    reqs: HashMap<String, Vec<Req>>,
    req_order: Vec<String>,
    conflicts: Vec<Req>,
    pins: HashMap<PkgId, Pin>,
    forced: Vec<PkgId>,
    missing: Vec<String>,
}

fn pkg_tags(pool: &Pool, id: PkgId) -> Vec<Option<String>> {
    pool.packages[id]
        .repos
        .iter()
        .map(|&r| pool.repos[r].tag.clone())
        .collect()
}

impl<'a> Attempt<'a> {
    fn new(
        pool: &'a Pool,
        opts: &'a SolverOptions,
        learned: &'a HashMap<String, Vec<Dependency>>,
    ) -> Self {
        Attempt {
            pool,
            opts,
            learned,
            chosen: HashMap::new(),
            owners: HashMap::new(),
            selected: Vec::new(),
            is_sel: vec![false; pool.packages.len()],
            reqs: HashMap::new(),
            req_order: Vec::new(),
            conflicts: Vec::new(),
            pins: HashMap::new(),
            forced: Vec::new(),
            missing: Vec::new(),
        }
    }

    fn active(&self, o: Origin) -> bool {
        match o {
            Origin::World => true,
            Origin::Pkg(p) => self.is_sel[p],
        }
    }

    /// Selected providers of `name`.
    fn selected_providers(&self, name: &str) -> impl Iterator<Item = &'a Provider> + '_ {
        self.pool
            .providers(name)
            .iter()
            .filter(move |p| self.is_sel[p.pkg])
    }

    fn satisfied(&self, dep: &Dependency) -> bool {
        self.selected_providers(&dep.name)
            .any(|p| self.pool.provider_matches(dep, p))
    }

    fn upgrading(&self, name: &str) -> bool {
        (self.opts.upgrade_all && !self.opts.ignore.contains(name))
            || self.opts.upgrade.contains(name)
            || self.opts.latest
    }

    fn allowed(&self, id: PkgId, pin: &Pin) -> bool {
        let p = &self.pool.packages[id];
        if p.installed.is_some() || p.file.is_some() || p.virtual_pkg {
            return true;
        }
        pkg_tags(self.pool, id).iter().any(|t| match t {
            None => true,
            Some(t) => pin.allowed.contains(t),
        })
    }

    fn preferred(&self, id: PkgId, pin: &Pin) -> bool {
        let tags = pkg_tags(self.pool, id);
        match &pin.preferred {
            Some(t) => tags.iter().any(|x| x.as_deref() == Some(t.as_str())),
            None => {
                tags.iter().any(Option::is_none)
                    || self.pool.packages[id].installed.is_some()
                    || self.pool.packages[id].file.is_some()
                    || self.pool.packages[id].virtual_pkg
            }
        }
    }

    fn basic_ok(&self, prov: &Provider, dep: &Dependency) -> bool {
        let pp = &self.pool.packages[prov.pkg];
        if !self.pool.provider_matches(dep, prov)
            || pp.pkg.broken
            || !pp.pkg.arch_ok(&self.pool.arches)
            || !self.pool.obtainable(prov.pkg)
        {
            return false;
        }
        // An unversioned provide is a real candidate only with a provider priority, or when the
        // package is explicitly installed already (apk-format.md §8.2).
        if !prov.real
            && prov.version.is_none()
            && pp.pkg.provider_priority.is_none()
            && !self.is_sel[prov.pkg]
        {
            return false;
        }
        true
    }

    fn names_of(&self, id: PkgId) -> Vec<(String, Option<String>)> {
        let pkg = &self.pool.packages[id].pkg;
        let mut v = vec![(pkg.name.clone(), Some(pkg.version.clone()))];
        v.extend(
            pkg.provides
                .iter()
                .map(|p| (p.name.clone(), p.version.clone())),
        );
        v
    }

    /// Whether selecting `id` violates nothing known so far.
    fn consistent(&self, id: PkgId, pin: &Pin) -> bool {
        let pp = &self.pool.packages[id];
        if !self.allowed(id, pin) {
            return false;
        }
        if let Some(&c) = self.chosen.get(&pp.pkg.name) {
            if c != id {
                return false;
            }
        }
        if self.opts.available && !self.pool.in_repository(id) {
            return false;
        }
        for (name, ver) in self.names_of(id) {
            let prov = Provider {
                pkg: id,
                version: ver.clone(),
                real: name == pp.pkg.name,
            };
            if ver.is_some() {
                if let Some(&o) = self.owners.get(&name) {
                    if o != id {
                        return false;
                    }
                }
            }
            let reqs = self
                .reqs
                .get(&name)
                .into_iter()
                .flatten()
                .filter(|r| self.active(r.from))
                .map(|r| &r.dep);
            let learned = self.learned.get(&name).into_iter().flatten();
            for d in reqs.chain(learned) {
                let m = self.pool.provider_matches(d, &prov);
                if d.conflict == m {
                    return false;
                }
            }
            for c in self
                .conflicts
                .iter()
                .filter(|c| self.active(c.from) && c.dep.name == name)
            {
                if c.from != Origin::Pkg(id) && self.pool.provider_matches(&c.dep, &prov) {
                    return false;
                }
            }
        }
        // The package's own conflicts against what is selected.
        for d in pp.pkg.depends.iter().filter(|d| d.conflict) {
            if self
                .selected_providers(&d.name)
                .any(|p| p.pkg != id && self.pool.provider_matches(d, p))
            {
                return false;
            }
        }
        true
    }

    fn compare(&self, name: &str, a: &Provider, b: &Provider, pin: &Pin) -> Ordering {
        let pa = &self.pool.packages[a.pkg];
        let pb = &self.pool.packages[b.pkg];
        let inst_a = pa.installed.is_some();
        let inst_b = pb.installed.is_some();
        self.preferred(b.pkg, pin)
            .cmp(&self.preferred(a.pkg, pin))
            .then_with(|| {
                let keep = |p: &crate::pool::PoolPackage| {
                    p.installed.is_some() && !self.upgrading(&p.pkg.name)
                };
                keep(pb).cmp(&keep(pa))
            })
            .then_with(|| match (&b.version, &a.version) {
                (Some(vb), Some(va)) => version::compare(vb, va),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then_with(|| {
                if pa.pkg.name == pb.pkg.name {
                    version::compare(&pb.pkg.version, &pa.pkg.version)
                } else {
                    Ordering::Equal
                }
            })
            .then_with(|| {
                pb.pkg
                    .provider_priority
                    .unwrap_or(0)
                    .cmp(&pa.pkg.provider_priority.unwrap_or(0))
            })
            .then_with(|| inst_b.cmp(&inst_a))
            .then_with(|| {
                let ra = pa.repos.iter().min().copied().unwrap_or(usize::MAX);
                let rb = pb.repos.iter().min().copied().unwrap_or(usize::MAX);
                ra.cmp(&rb)
            })
            .then_with(|| {
                // A provider named exactly like the dependency wins a tie.
                (b.real && pb.pkg.name == name).cmp(&(a.real && pa.pkg.name == name))
            })
            .then_with(|| a.pkg.cmp(&b.pkg))
    }

    fn best(&self, name: &str, cands: &[&Provider], pin: &Pin) -> Option<PkgId> {
        cands
            .iter()
            .min_by(|a, b| self.compare(name, a, b, pin))
            .map(|p| p.pkg)
    }

    fn resolve(&mut self, dep: &Dependency, from: Origin, pin: &Pin) {
        if dep.conflict {
            self.conflicts.push(Req {
                dep: dep.clone(),
                from,
            });
            return;
        }
        if !self.reqs.contains_key(&dep.name) {
            self.req_order.push(dep.name.clone());
        }
        self.reqs.entry(dep.name.clone()).or_default().push(Req {
            dep: dep.clone(),
            from,
        });
        if self.satisfied(dep) {
            return;
        }
        let pool = self.pool;
        let basic: Vec<&Provider> = pool
            .providers(&dep.name)
            .iter()
            .filter(|p| self.basic_ok(p, dep))
            .collect();
        let strict: Vec<&Provider> = basic
            .iter()
            .copied()
            .filter(|p| self.consistent(p.pkg, pin))
            .collect();
        let (pick, forced) = match self.best(&dep.name, &strict, pin) {
            Some(p) => (p, false),
            None => {
                // Nothing consistent: take the closest candidate anyway and report it with what it
                // breaks, as apk does. Virtual-only names without a priority stay "missing".
                let fallback: Vec<&Provider> = pool
                    .providers(&dep.name)
                    .iter()
                    .filter(|p| {
                        p.real
                            || p.version.is_some()
                            || pool.packages[p.pkg].pkg.provider_priority.is_some()
                    })
                    .filter(|p| {
                        self.chosen
                            .get(&pool.packages[p.pkg].pkg.name)
                            .is_none_or(|&c| c == p.pkg)
                    })
                    .collect();
                let badness = |p: &Provider| {
                    let pp = &pool.packages[p.pkg];
                    [
                        !pool.provider_matches(dep, p),
                        pp.pkg.broken || !pp.pkg.arch_ok(&pool.arches),
                        !self.allowed(p.pkg, pin),
                        !pool.obtainable(p.pkg),
                    ]
                    .iter()
                    .filter(|&&b| b)
                    .count()
                };
                let least = fallback.iter().map(|p| badness(p)).min();
                let closest: Vec<&Provider> = fallback
                    .iter()
                    .copied()
                    .filter(|p| Some(badness(p)) == least)
                    .collect();
                match self.best(&dep.name, &closest, pin) {
                    Some(p) => (p, true),
                    None => {
                        if !self.missing.contains(&dep.name) {
                            self.missing.push(dep.name.clone());
                        }
                        return;
                    }
                }
            }
        };
        let tag = self.tag_for(pick, pin);
        self.select(pick, pin, forced, tag);
    }

    fn tag_for(&self, id: PkgId, pin: &Pin) -> Option<String> {
        let tags = pkg_tags(self.pool, id);
        if tags.is_empty() || tags.iter().any(Option::is_none) {
            return None;
        }
        if let Some(p) = &pin.preferred {
            if tags.iter().any(|t| t.as_deref() == Some(p.as_str())) {
                return Some(p.clone());
            }
        }
        tags.into_iter().flatten().find(|t| pin.allowed.contains(t))
    }

    fn select(&mut self, id: PkgId, pin: &Pin, forced: bool, tag: Option<String>) {
        if self.is_sel[id] {
            return;
        }
        self.is_sel[id] = true;
        self.selected.push(id);
        let pkg = &self.pool.packages[id].pkg;
        self.chosen.insert(pkg.name.clone(), id);
        for (name, ver) in self.names_of(id) {
            if ver.is_some() {
                self.owners.entry(name).or_insert(id);
            }
        }
        if forced {
            self.forced.push(id);
        }
        let mut child = pin.clone();
        child.preferred = None;
        if let Some(t) = &tag {
            if !child.allowed.contains(t) {
                child.allowed.push(t.clone());
            }
        }
        let mut own = pin.clone();
        if tag.is_some() {
            own.preferred = tag.clone();
        }
        self.pins.insert(id, own);
        let deps = self.pool.packages[id].pkg.depends.clone();
        for d in &deps {
            self.resolve(d, Origin::Pkg(id), &child);
        }
    }

    fn install_if_pass(&mut self) {
        let pool = self.pool;
        let mut names: Vec<&str> = pool
            .packages
            .iter()
            .filter(|p| !p.pkg.install_if.is_empty())
            .map(|p| p.pkg.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        loop {
            let mut changed = false;
            for &name in &names {
                if self.chosen.contains_key(name) {
                    continue;
                }
                let pin = Pin::default();
                let cands: Vec<&Provider> = pool
                    .providers(name)
                    .iter()
                    .filter(|p| p.real && !pool.packages[p.pkg].pkg.install_if.is_empty())
                    .filter(|p| {
                        self.basic_ok(p, &Dependency::any(name)) && self.consistent(p.pkg, &pin)
                    })
                    .filter(|p| {
                        pool.packages[p.pkg].pkg.install_if.iter().all(|d| {
                            if d.conflict {
                                !self.satisfied(&Dependency {
                                    conflict: false,
                                    ..d.clone()
                                })
                            } else {
                                self.satisfied(d)
                            }
                        })
                    })
                    .collect();
                if let Some(p) = self.best(name, &cands, &pin) {
                    self.select(p, &pin, false, None);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// First violated constraint, to learn from.
    fn violation(&self) -> Option<(String, Dependency)> {
        for name in &self.req_order {
            for r in self.reqs[name].iter().filter(|r| self.active(r.from)) {
                if !self.satisfied(&r.dep) {
                    return Some((name.clone(), r.dep.clone()));
                }
            }
        }
        for c in self.conflicts.iter().filter(|c| self.active(c.from)) {
            if self
                .selected_providers(&c.dep.name)
                .any(|p| Origin::Pkg(p.pkg) != c.from && self.pool.provider_matches(&c.dep, p))
            {
                return Some((c.dep.name.clone(), c.dep.clone()));
            }
        }
        None
    }
}

/// Solve for `world` (dependencies, possibly with `@tag`s).
pub fn solve(pool: &Pool, world: &[Dependency], opts: &SolverOptions) -> Solution {
    let mut learned: HashMap<String, Vec<Dependency>> = HashMap::new();
    let mut sorted_world = world.to_vec();
    crate::db::world::sort(&mut sorted_world);
    fn run<'a>(
        pool: &'a Pool,
        opts: &'a SolverOptions,
        learned: &'a HashMap<String, Vec<Dependency>>,
        sorted_world: &[Dependency],
    ) -> Attempt<'a> {
        let mut at = Attempt::new(pool, opts, learned);
        for d in sorted_world {
            let pin = match &d.tag {
                Some(t) => Pin {
                    allowed: vec![t.clone()],
                    preferred: Some(t.clone()),
                },
                None => Pin::default(),
            };
            at.resolve(d, Origin::World, &pin);
        }
        at.install_if_pass();
        at
    }
    // Learn violated constraints and search again; each round adds a constraint, so this ends.
    for _ in 0..200 {
        let violation = run(pool, opts, &learned, &sorted_world).violation();
        let Some((name, dep)) = violation else { break };
        let l = learned.entry(name).or_default();
        if l.contains(&dep) {
            break;
        }
        l.push(dep);
    }
    let at = run(pool, opts, &learned, &sorted_world);
    finish(pool, at, world, opts)
}

fn finish(pool: &Pool, at: Attempt<'_>, world: &[Dependency], opts: &SolverOptions) -> Solution {
    let errors = ErrorReport::build(pool, &at, world);
    let mut tags = HashMap::new();
    for &id in &at.selected {
        if let Some(pin) = at.pins.get(&id) {
            if let Some(t) = at.tag_for(id, pin) {
                tags.insert(id, t);
            }
        }
    }
    let changes = order_changes(pool, &at, world, opts, &tags);
    Solution {
        selected: at.selected.clone(),
        tags,
        changes,
        errors,
    }
}

fn order_changes(
    pool: &Pool,
    at: &Attempt<'_>,
    world: &[Dependency],
    opts: &SolverOptions,
    tags: &HashMap<PkgId, String>,
) -> Vec<Change> {
    let installed: Vec<PkgId> = {
        let mut v: Vec<(usize, PkgId)> = pool
            .packages
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.installed.map(|d| (d, i)))
            .collect();
        v.sort();
        v.into_iter().map(|(_, i)| i).collect()
    };
    let selected_by_name: HashMap<&str, PkgId> = at
        .selected
        .iter()
        .map(|&id| (pool.packages[id].pkg.name.as_str(), id))
        .collect();
    let mut changes = Vec::new();
    // Removals first, dependents before what they depend on (reverse of a dependencies-first
    // walk from the removed packages in name order).
    let removed: Vec<PkgId> = {
        let mut v: Vec<PkgId> = installed
            .iter()
            .copied()
            .filter(|&o| !selected_by_name.contains_key(pool.packages[o].pkg.name.as_str()))
            .collect();
        v.sort_by(|&a, &b| {
            crate::package::name_order(&pool.packages[a].pkg.name, &pool.packages[b].pkg.name)
        });
        v
    };
    let mut seen: HashSet<PkgId> = HashSet::new();
    let mut deps_first: Vec<PkgId> = Vec::new();
    fn visit_removed(
        pool: &Pool,
        id: PkgId,
        removed: &[PkgId],
        seen: &mut HashSet<PkgId>,
        out: &mut Vec<PkgId>,
    ) {
        if !seen.insert(id) {
            return;
        }
        for d in pool.packages[id].pkg.depends.iter().filter(|d| !d.conflict) {
            for p in pool.providers(&d.name) {
                if removed.contains(&p.pkg) && pool.provider_matches(d, p) {
                    visit_removed(pool, p.pkg, removed, seen, out);
                }
            }
        }
        out.push(id);
    }
    for &r in &removed {
        visit_removed(pool, r, &removed, &mut seen, &mut deps_first);
    }
    for &old in deps_first.iter().rev() {
        changes.push(Change {
            kind: ChangeKind::Purge,
            old: Some(old),
            new: None,
            tag: None,
        });
    }
    let mut emitted = vec![false; pool.packages.len()];
    let mut visiting = vec![false; pool.packages.len()];
    let mut order: Vec<PkgId> = Vec::new();
    let iif: Vec<PkgId> = at
        .selected
        .iter()
        .copied()
        .filter(|&id| !pool.packages[id].pkg.install_if.is_empty())
        .collect();
    let mut sorted_world = world.to_vec();
    crate::db::world::sort(&mut sorted_world);
    fn provider_of(pool: &Pool, at: &Attempt<'_>, dep: &Dependency) -> Option<PkgId> {
        at.selected_providers(&dep.name)
            .find(|p| pool.provider_matches(dep, p))
            .or_else(|| at.selected_providers(&dep.name).next())
            .map(|p| p.pkg)
    }
    #[allow(clippy::too_many_arguments)]
    fn visit(
        pool: &Pool,
        at: &Attempt<'_>,
        id: PkgId,
        emitted: &mut Vec<bool>,
        visiting: &mut Vec<bool>,
        order: &mut Vec<PkgId>,
        iif: &[PkgId],
    ) {
        if emitted[id] || visiting[id] {
            return;
        }
        visiting[id] = true;
        for d in pool.packages[id].pkg.depends.iter().filter(|d| !d.conflict) {
            if let Some(p) = provider_of(pool, at, d) {
                visit(pool, at, p, emitted, visiting, order, iif);
            }
        }
        if emitted[id] {
            return;
        }
        emitted[id] = true;
        order.push(id);
        for &q in iif {
            if emitted[q] || visiting[q] {
                continue;
            }
            let ready = pool.packages[q]
                .pkg
                .install_if
                .iter()
                .filter(|d| !d.conflict)
                .all(|d| provider_of(pool, at, d).is_some_and(|p| emitted[p]));
            if ready {
                visit(pool, at, q, emitted, visiting, order, iif);
            }
        }
    }
    for d in sorted_world.iter().filter(|d| !d.conflict) {
        if let Some(p) = provider_of(pool, at, d) {
            visit(pool, at, p, &mut emitted, &mut visiting, &mut order, &iif);
        }
    }
    for &id in &at.selected {
        visit(pool, at, id, &mut emitted, &mut visiting, &mut order, &iif);
    }
    for id in order {
        let p = &pool.packages[id];
        let tag = tags.get(&id).cloned();
        let old = installed
            .iter()
            .copied()
            .find(|&o| pool.packages[o].pkg.name == p.pkg.name);
        let kind = match old {
            None => ChangeKind::Install,
            Some(o) if o == id => {
                if opts.reinstall.contains(&p.pkg.name) {
                    ChangeKind::Reinstall
                } else if tag != p.installed_tag {
                    ChangeKind::Pinning
                } else {
                    continue;
                }
            }
            Some(o) => match version::compare(&p.pkg.version, &pool.packages[o].pkg.version) {
                Ordering::Greater => ChangeKind::Upgrade,
                Ordering::Less => ChangeKind::Downgrade,
                Ordering::Equal => ChangeKind::Replace,
            },
        };
        changes.push(Change {
            kind,
            old,
            new: Some(id),
            tag,
        });
    }
    changes
}

/// One reason line of an error report: label and items.
pub type Reason = (String, Vec<String>);

/// The `ERROR: unable to select packages:` report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorReport {
    /// `(label, [(reason label, items)])` blocks in print order.
    pub blocks: Vec<(String, Vec<Reason>)>,
}

fn world_item(d: &Dependency) -> String {
    format!("world[{d}]")
}

fn pkg_item(pool: &Pool, id: PkgId, d: &Dependency) -> String {
    format!(
        "{}[{}]",
        pool.packages[id].pkg.name_version(),
        d.to_string_no_tag()
    )
}

impl ErrorReport {
    fn build(pool: &Pool, at: &Attempt<'_>, world: &[Dependency]) -> Option<ErrorReport> {
        let mut blocks = Vec::new();
        let item = |r: &Req| match r.from {
            Origin::World => world_item(&r.dep),
            Origin::Pkg(p) => pkg_item(pool, p, &r.dep),
        };
        let mut reported_names: HashSet<String> = HashSet::new();
        let missing_block = |name: &str, blocks: &mut Vec<(String, Vec<Reason>)>| {
            let required: Vec<String> = at
                .reqs
                .get(name)
                .into_iter()
                .flatten()
                .filter(|r| at.active(r.from))
                .map(&item)
                .collect();
            let virt: Vec<&Provider> = pool
                .providers(name)
                .iter()
                .filter(|p| !p.real && p.version.is_none())
                .collect();
            if !virt.is_empty() && pool.by_name(name).is_empty() {
                let mut provided: Vec<String> = virt
                    .iter()
                    .map(|p| pool.packages[p.pkg].pkg.name.clone())
                    .collect();
                provided.sort();
                provided.dedup();
                blocks.push((
                    format!("{name} (virtual)"),
                    vec![
                        (
                            "note:".to_string(),
                            "please select one of the 'provided by' packages explicitly"
                                .split(' ')
                                .map(str::to_string)
                                .collect(),
                        ),
                        ("provided by:".to_string(), provided),
                        ("required by:".to_string(), required),
                    ],
                ));
            } else {
                blocks.push((
                    format!("{name} (no such package)"),
                    vec![("required by:".to_string(), required)],
                ));
            }
        };
        // Unresolved world names first.
        let mut sorted_world = world.to_vec();
        crate::db::world::sort(&mut sorted_world);
        for d in sorted_world.iter().filter(|d| !d.conflict) {
            if at.missing.contains(&d.name) && reported_names.insert(d.name.clone()) {
                missing_block(&d.name, &mut blocks);
            }
        }
        for &id in &at.selected {
            let pp = &pool.packages[id];
            let mut reasons: Vec<(String, Vec<String>)> = Vec::new();
            if !pp.pkg.arch_ok(&pool.arches) || pp.pkg.broken {
                reasons.push(("error:".into(), vec!["uninstallable".into()]));
                if !pp.pkg.arch_ok(&pool.arches) {
                    reasons.push((
                        "arch:".into(),
                        vec![pp.pkg.arch.clone().unwrap_or_default()],
                    ));
                }
            }
            if let Some(pin) = at.pins.get(&id) {
                if !at.allowed(id, pin) {
                    let mut tags: Vec<String> = pkg_tags(pool, id)
                        .into_iter()
                        .flatten()
                        .map(|t| format!("@{t}"))
                        .collect();
                    tags.dedup();
                    reasons.push(("masked in:".into(), tags));
                }
            }
            if !pool.obtainable(id) {
                let masked: Vec<String> = pp
                    .repos
                    .iter()
                    .filter(|&&r| pool.repos[r].masked)
                    .map(|_| "--no-network".to_string())
                    .take(1)
                    .collect();
                if !masked.is_empty() {
                    reasons.push(("masked in:".into(), masked));
                }
            }
            let mut breaks = Vec::new();
            let mut satisfies = Vec::new();
            let mut conflicts = Vec::new();
            for (name, ver) in at.names_of(id) {
                let prov = Provider {
                    pkg: id,
                    version: ver,
                    real: name == pp.pkg.name,
                };
                for r in at
                    .reqs
                    .get(&name)
                    .into_iter()
                    .flatten()
                    .filter(|r| at.active(r.from))
                {
                    if pool.provider_matches(&r.dep, &prov) {
                        satisfies.push(item(r));
                    } else if at.forced.contains(&id) || !at.satisfied(&r.dep) {
                        breaks.push(item(r));
                    }
                }
                for c in at.conflicts.iter().filter(|c| {
                    at.active(c.from) && c.dep.name == name && c.from != Origin::Pkg(id)
                }) {
                    if pool.provider_matches(&c.dep, &prov) {
                        breaks.push(item(c));
                    }
                }
            }
            for d in pp.pkg.depends.iter().filter(|d| d.conflict) {
                for p in at.selected_providers(&d.name) {
                    if p.pkg != id && pool.provider_matches(d, p) {
                        conflicts.push(format!(
                            "{}[{}]",
                            pool.packages[p.pkg].pkg.name_version(),
                            d.to_string_no_tag()
                        ));
                    }
                }
            }
            if !conflicts.is_empty() {
                reasons.push(("conflicts:".into(), conflicts));
            }
            if !breaks.is_empty() {
                breaks.dedup();
                reasons.push(("breaks:".into(), breaks));
            }
            if !reasons.is_empty() {
                satisfies.dedup();
                if !satisfies.is_empty() {
                    reasons.push(("satisfies:".into(), satisfies));
                }
                blocks.push((pp.pkg.name_version(), reasons));
            }
            for d in pp.pkg.depends.iter().filter(|d| !d.conflict) {
                if at.missing.contains(&d.name) && reported_names.insert(d.name.clone()) {
                    missing_block(&d.name, &mut blocks);
                }
            }
        }
        for name in &at.missing {
            if reported_names.insert(name.clone()) {
                missing_block(name, &mut blocks);
            }
        }
        if blocks.is_empty() {
            None
        } else {
            Some(ErrorReport { blocks })
        }
    }

    /// Render the report (without the `ERROR:` header) wrapped at `width`.
    pub fn render(&self, width: usize) -> String {
        let mut out = String::new();
        for (label, reasons) in &self.blocks {
            let _ = writeln!(out, "  {label}:");
            for (r, items) in reasons {
                out.push_str(&indented(&format!("    {r}"), items, width));
            }
        }
        out
    }
}

/// apk's `apk_print_indented`: items after a prefix, wrapped when `x + len + 1 >= width`, the
/// continuation indented to the prefix length + 1.
pub fn indented(prefix: &str, items: &[String], width: usize) -> String {
    let mut out = String::from(prefix);
    let indent = prefix.len() + 1;
    let mut x = prefix.len();
    let mut first = true;
    for it in items {
        if !first && x + it.len() + 1 >= width {
            out.push('\n');
            out.push_str(&" ".repeat(indent - 1));
            x = indent - 1;
        }
        out.push(' ');
        out.push_str(it);
        x += it.len() + 1;
        first = false;
    }
    out.push('\n');
    out
}

#[cfg(test)]
#[path = "solver_tests.rs"]
mod tests;
