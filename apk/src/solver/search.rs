//! The search: world dependencies resolved depth-first, each name taking its preferred provider
//! (apk-format.md §8.6); a violated constraint is learned by the caller ([`super::solve`]), which
//! searches again; `install_if` packages join once their conditions hold.

use super::{Origin, SolverOptions};
use crate::dep::Dependency;
use crate::pool::{PkgId, Pool, Provider};
use crate::text::Text;
use crate::version;
use std::cmp::Ordering;
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub(super) struct Req {
    pub(super) dep: Dependency,
    pub(super) from: Origin,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Pin {
    /// Tags allowed besides untagged repositories.
    pub(super) allowed: Vec<String>,
    /// Tag whose packages are preferred (None: untagged preferred).
    pub(super) preferred: Option<String>,
}

pub(super) struct Attempt<'a> {
    pub(super) pool: &'a Pool,
    pub(super) opts: &'a SolverOptions,
    pub(super) learned: &'a HashMap<Text, Vec<Dependency>>,
    pub(super) chosen: HashMap<Text, PkgId>,
    pub(super) owners: HashMap<Text, PkgId>,
    pub(super) selected: Vec<PkgId>,
    pub(super) is_sel: Vec<bool>,
    pub(super) reqs: HashMap<Text, Vec<Req>>,
    pub(super) req_order: Vec<Text>,
    pub(super) conflicts: Vec<Req>,
    pub(super) pins: HashMap<PkgId, Pin>,
    /// Each forced selection (a candidate taken though not consistent) with what asked for it.
    pub(super) forced_by: Vec<(PkgId, Origin)>,
    pub(super) missing: Vec<Text>,
    /// Names the world asks for directly: a package so named may take an unversioned provide
    /// without a provider priority ([`Self::basic_ok`]).
    pub(super) world_names: std::collections::HashSet<Text>,
    /// For each package, the world dependencies it stands for (by their names: the one it is
    /// named after, the one it is the pick of): a package that stands for one besides the name
    /// being resolved is the provider of choice for it (apk decides the world's names first).
    pub(super) world_sat: HashMap<PkgId, Vec<Text>>,
    /// The provider each world dependency takes on its own: among those, the one to prefer
    /// (opencl, which provides the world's opencl-icd-loader at a higher version).
    pub(super) world_picks: std::collections::HashSet<PkgId>,
}

/// The tags a package counts as coming from: its repositories' tags, and for an installed
/// package the tag it was pinned to (`None`: untagged). An installed package pinned to a tag is
/// thus allowed only where that tag is.
pub(super) fn pkg_tags(pool: &Pool, id: PkgId) -> Vec<Option<String>> {
    let p = &pool.packages[id];
    let mut tags: Vec<Option<String>> =
        p.repos.iter().map(|&r| pool.repos[r].tag.clone()).collect();
    if p.installed.is_some() {
        tags.push(p.installed_tag.as_deref().map(String::from));
    }
    tags
}

impl<'a> Attempt<'a> {
    pub(super) fn new(
        pool: &'a Pool,
        opts: &'a SolverOptions,
        learned: &'a HashMap<Text, Vec<Dependency>>,
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
            forced_by: Vec::new(),
            missing: Vec::new(),
            world_names: Default::default(),
            world_sat: Default::default(),
            world_picks: Default::default(),
        }
    }

    pub(super) fn active(&self, o: Origin) -> bool {
        match o {
            Origin::World => true,
            Origin::Pkg(p) => self.is_sel[p],
        }
    }

    /// Selected providers of `name`.
    pub(super) fn selected_providers(&self, name: &str) -> impl Iterator<Item = &'a Provider> + '_ {
        self.pool
            .providers(name)
            .iter()
            .filter(move |p| self.is_sel[p.pkg])
    }

    pub(super) fn satisfied(&self, dep: &Dependency) -> bool {
        self.selected_providers(&dep.name)
            .any(|p| self.pool.provider_matches(dep, p))
    }

    pub(super) fn upgrading(&self, name: &str) -> bool {
        (self.opts.upgrade_all && !self.opts.ignore.contains(name))
            || self.opts.upgrade.contains(name)
            || self.latest(name)
    }

    pub(super) fn latest(&self, name: &str) -> bool {
        self.opts.latest || self.opts.latest_names.contains(name)
    }

    pub(super) fn allowed(&self, id: PkgId, pin: &Pin) -> bool {
        let p = &self.pool.packages[id];
        if p.file.is_some() || p.virtual_pkg || p.cached.is_some() && p.repos.is_empty() {
            return true;
        }
        pkg_tags(self.pool, id).iter().any(|t| match t {
            None => true,
            Some(t) => pin.allowed.contains(t),
        })
    }

    pub(super) fn preferred(&self, id: PkgId, pin: &Pin) -> bool {
        let tags = pkg_tags(self.pool, id);
        match &pin.preferred {
            Some(t) => tags.iter().any(|x| x.as_deref() == Some(t.as_str())),
            None => {
                tags.iter().any(Option::is_none)
                    || self.pool.packages[id].file.is_some()
                    || self.pool.packages[id].virtual_pkg
            }
        }
    }

    pub(super) fn basic_ok(&self, prov: &Provider, dep: &Dependency) -> bool {
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
            && !self.world_names.contains(&pp.pkg.name)
        {
            return false;
        }
        true
    }

    pub(super) fn names_of(&self, id: PkgId) -> Vec<(Text, Option<Text>)> {
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
    pub(super) fn consistent(&self, id: PkgId, pin: &Pin) -> bool {
        let pp = &self.pool.packages[id];
        if !self.allowed(id, pin) {
            return false;
        }
        if let Some(&c) = self.chosen.get(&pp.pkg.name) {
            if c != id {
                return false;
            }
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

    pub(super) fn compare(&self, name: &str, a: &Provider, b: &Provider, pin: &Pin) -> Ordering {
        let pa = &self.pool.packages[a.pkg];
        let pb = &self.pool.packages[b.pkg];
        let inst_a = pa.installed.is_some();
        let inst_b = pb.installed.is_some();
        let latest = self.latest(&pa.pkg.name) || self.latest(&pb.pkg.name);
        let available = |p: &Provider| self.opts.available && self.pool.in_repository(p.pkg);
        let kept = |p: &crate::pool::PoolPackage| {
            p.installed.is_some() && self.opts.ignore.contains(&p.pkg.name)
        };
        let in_world = |p: &Provider| {
            self.world_sat
                .get(&p.pkg)
                .is_some_and(|w| w.iter().any(|n| n.as_str() != name))
        };
        kept(pb)
            .cmp(&kept(pa))
            .then_with(|| in_world(b).cmp(&in_world(a)))
            .then_with(|| {
                self.world_picks
                    .contains(&b.pkg)
                    .cmp(&self.world_picks.contains(&a.pkg))
            })
            .then_with(|| available(b).cmp(&available(a)))
            .then_with(|| {
                if latest {
                    Ordering::Equal
                } else {
                    self.preferred(b.pkg, pin).cmp(&self.preferred(a.pkg, pin))
                }
            })
            .then_with(|| {
                let keep = |p: &crate::pool::PoolPackage| {
                    p.installed.is_some() && !self.upgrading(&p.pkg.name)
                };
                keep(pb).cmp(&keep(pa))
            })
            .then_with(|| match (&b.version, &a.version) {
                // A versioned provide against one without a version decides nothing (apk's
                // version comparison with a missing side matches every operator): the provider
                // priority below does, so `p:nginx` (k:1) does not beat nginx itself.
                (Some(vb), Some(va)) => version::compare(vb, va),
                _ => Ordering::Equal,
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

    pub(super) fn best(&self, name: &str, cands: &[&Provider], pin: &Pin) -> Option<PkgId> {
        cands
            .iter()
            .min_by(|a, b| self.compare(name, a, b, pin))
            .map(|p| p.pkg)
    }

    pub(super) fn resolve(&mut self, dep: &Dependency, from: Origin, pin: &Pin) {
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
                // The closest: one that satisfies the dependency, then one that is installable,
                // then one the pinning allows, then one that can be fetched.
                let badness = |p: &Provider| {
                    let pp = &pool.packages[p.pkg];
                    (
                        !pool.provider_matches(dep, p),
                        pp.pkg.broken || !pp.pkg.arch_ok(&pool.arches),
                        !self.allowed(p.pkg, pin),
                        !pool.obtainable(p.pkg),
                    )
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
        self.select(pick, pin, forced.then_some(from), tag);
    }

    pub(super) fn tag_for(&self, id: PkgId, pin: &Pin) -> Option<String> {
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

    /// Select `id`; `forced` names what asked for it when it was taken though not consistent.
    pub(super) fn select(
        &mut self,
        id: PkgId,
        pin: &Pin,
        forced: Option<Origin>,
        tag: Option<String>,
    ) {
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
        if let Some(from) = forced {
            self.forced_by.push((id, from));
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

    pub(super) fn install_if_pass(&mut self) {
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
                        // A negated condition is never met: apk counts conditions as their names
                        // get selected, and `!name` has no provider to select.
                        pool.packages[p.pkg]
                            .pkg
                            .install_if
                            .iter()
                            .all(|d| !d.conflict && self.satisfied(d))
                    })
                    .collect();
                if let Some(p) = self.best(name, &cands, &pin) {
                    self.select(p, &pin, None, None);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// Names found missing early may have been provided by a package selected later (a world
    /// entry naming one provider of a virtual name).
    pub(super) fn prune_missing(&mut self) {
        let missing = std::mem::take(&mut self.missing);
        self.missing = missing
            .into_iter()
            .filter(|n| {
                !self
                    .reqs
                    .get(n)
                    .into_iter()
                    .flatten()
                    .filter(|r| self.active(r.from))
                    .all(|r| self.satisfied(&r.dep))
            })
            .collect();
    }

    /// A constraint, not yet in `learned`, that rules out a package whose dependency only a
    /// package `learned` rules out satisfied (the search selected it anyway): the next search
    /// then looks for another provider of what the package itself was selected for (jack-dev's
    /// `jack=1.9.22-r4` once jack is ruled out: world's `jack-dev` from pipewire-jack-dev).
    pub(super) fn forced_requirer(
        &self,
        learned: &HashMap<Text, Vec<Dependency>>,
    ) -> Option<(Text, Dependency)> {
        let known = |c: &(Text, Dependency)| is_learned(learned, c);
        self.forced_by.iter().find_map(|&(pick, from)| match from {
            // Only a pick that was itself ruled out: one forced by a clash of owners is the
            // clash's to learn from.
            Origin::Pkg(r) if self.is_sel[r] && known(&self.exclusion(pick)) => {
                let c = self.exclusion(r);
                (!known(&c)).then_some(c)
            }
            _ => None,
        })
    }

    /// The learned constraint that rules out package `id` and no other: a conflict with its
    /// identity (`!name><Q1...`), so another package providing `name` at the same version
    /// (wolfssl-jni's `wolfssl=5.6.6-r1`) stays a candidate.
    fn exclusion(&self, id: PkgId) -> (Text, Dependency) {
        let pkg = &self.pool.packages[id].pkg;
        let mut d = Dependency::any(&pkg.name);
        d.conflict = true;
        d.op = version::CHECKSUM;
        d.version = Some(Text::new(pkg.identity.to_string()));
        (pkg.name.clone(), d)
    }

    /// Two selected packages that provide one name with a version, which apk allows one package
    /// to do (the second was selected against [`Self::consistent`], as the closest candidate
    /// of a dependency nothing else satisfied): a constraint that rules out the first of them
    /// (with `owner_first`, else the second), or else the other, not yet in `learned`.
    /// Learning it makes the next search take another provider for what pulled the first one in (icu-libs' `icu-data=74.1-r0` from
    /// icu-data-full instead of icu-data-en, when texlive-xetex needs icu-data-full itself).
    pub(super) fn owner_clash(
        &self,
        learned: &HashMap<Text, Vec<Dependency>>,
        owner_first: bool,
    ) -> Option<(Text, Dependency)> {
        let new = |c: (Text, Dependency)| (!is_learned(learned, &c)).then_some(c);
        for &id in &self.selected {
            for (name, ver) in self.names_of(id) {
                match (ver, self.owners.get(&name)) {
                    (Some(_), Some(&owner)) if owner != id => {
                        let (a, b) = if owner_first {
                            (owner, id)
                        } else {
                            (id, owner)
                        };
                        if let Some(c) = new(self.exclusion(a)).or_else(|| new(self.exclusion(b))) {
                            return Some(c);
                        }
                    }
                    _ => {}
                }
            }
        }
        None
    }

    /// First violated constraint, to learn from.
    pub(super) fn violation(&self) -> Option<(Text, Dependency)> {
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

/// Whether `learned` holds the constraint `(name, dep)` already.
fn is_learned(learned: &HashMap<Text, Vec<Dependency>>, (name, dep): &(Text, Dependency)) -> bool {
    learned.get(name).is_some_and(|l| l.contains(dep))
}
