//! The solver: (world, installed, available packages) -> the package set and the ordered
//! [`Change`]s that get there. No I/O: it works on a [`Pool`].
//!
//! apk-tools v3 semantics, approximated by a deterministic search: world dependencies are resolved
//! depth-first, each name picking the preferred provider (apk-format.md §8.6: pinning, keeping what
//! is installed unless upgrading, highest provided version, provider priority, repository order);
//! when a later constraint or conflict invalidates an earlier choice the constraint is learned and
//! the search restarts; `install_if` packages are added once their conditions hold. The changes are
//! ordered as apk orders them (§8.7). What cannot be satisfied is reported in apk's error format.
//!
//! The work is split by phase: [`search`] picks the packages, [`order`] turns the selection into
//! ordered changes, [`report`] words what cannot be satisfied.

use crate::dep::Dependency;
use crate::pool::{PkgId, Pool, Provider};
use crate::text::Text;
use std::collections::{HashMap, HashSet};

mod order;
mod report;
mod search;

use order::order_changes;
pub use report::{indented, ErrorReport, Reason};
use search::{Attempt, Pin};

/// Solver flags.
#[derive(Clone, Debug, Default)]
pub struct SolverOptions {
    /// `apk upgrade`: prefer the newest version of every name.
    pub upgrade_all: bool,
    /// Names to upgrade (`apk add -u NAME`, `apk upgrade NAME`).
    pub upgrade: HashSet<Text>,
    /// Names to reinstall (`apk fix`).
    pub reinstall: HashSet<Text>,
    /// `--latest` for every name: always the newest allowed version.
    pub latest: bool,
    /// `--latest` for these names only (`apk add -l NAME` and its dependencies).
    pub latest_names: HashSet<Text>,
    /// `--available`: drop packages that no repository has.
    pub available: bool,
    /// Names to keep as installed (`apk upgrade --ignore NAME...`; apk's "installed" flag).
    pub ignore: HashSet<Text>,
}

/// `names` and, recursively, the names of every package that provides a dependency of a package
/// named so: apk's inheritable solver flags (`add -u`, `upgrade NAME`, `upgrade --ignore`,
/// `fix -d`) reach the dependencies of the named packages this way (apk-format.md §8.6).
pub fn with_dependencies(pool: &Pool, names: &HashSet<Text>) -> HashSet<Text> {
    let mut out = names.clone();
    let mut todo: Vec<Text> = names.iter().cloned().collect();
    while let Some(name) = todo.pop() {
        for id in pool.by_name(&name) {
            for d in pool.packages[id].pkg.depends.iter().filter(|d| !d.conflict) {
                for p in pool.providers(&d.name) {
                    let n = &pool.packages[p.pkg].pkg.name;
                    if out.insert(n.clone()) {
                        todo.push(n.clone());
                    }
                }
            }
        }
    }
    out
}

/// Who asked for a dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The world file / command line.
    World,
    /// A selected package.
    Pkg(PkgId),
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

/// Solve for `world` (dependencies, possibly with `@tag`s).
pub fn solve(pool: &Pool, world: &[Dependency], opts: &SolverOptions) -> Solution {
    let mut learned: HashMap<Text, Vec<Dependency>> = HashMap::new();
    let mut sorted_world = world.to_vec();
    crate::db::world::sort(&mut sorted_world);
    fn run<'a>(
        pool: &'a Pool,
        opts: &'a SolverOptions,
        learned: &'a HashMap<Text, Vec<Dependency>>,
        sorted_world: &[Dependency],
    ) -> Attempt<'a> {
        let mut at = Attempt::new(pool, opts, learned);
        at.world_names = sorted_world
            .iter()
            .filter(|d| !d.conflict)
            .map(|d| d.name.clone())
            .collect();
        let pin_of = |d: &Dependency| match &d.tag {
            Some(t) => Pin {
                allowed: vec![t.to_string()],
                preferred: Some(t.to_string()),
            },
            None => Pin::default(),
        };
        // What each world dependency takes on its own (for `opencl-icd-loader`, opencl, which
        // provides it at a higher version), and which world dependencies each package stands
        // for: the one it is named after, or the one it is the pick of. dash-binsh is then
        // preferred for /bin/sh when the world names it; for so:libOpenCL.so.1 opencl and
        // opencl-icd-loader both stand for the world's opencl-icd-loader and the pick decides;
        // a third package that merely provides two world names never beats both (pipewire-pulse
        // against the world's pulseaudio and pulseaudio-bluez).
        for d in sorted_world.iter().filter(|d| !d.conflict) {
            let cands: Vec<&Provider> = pool
                .providers(&d.name)
                .iter()
                .filter(|p| at.basic_ok(p, d))
                .collect();
            let pick = at.best(&d.name, &cands, &pin_of(d));
            if let Some(p) = pick {
                at.world_picks.insert(p);
            }
            for p in cands {
                if Some(p.pkg) == pick || (p.real && pool.provider_matches(d, p)) {
                    at.world_sat.entry(p.pkg).or_default().push(d.name.clone());
                }
            }
        }
        for d in sorted_world {
            at.resolve(d, Origin::World, &pin_of(d));
        }
        at.install_if_pass();
        at.prune_missing();
        at
    }
    // Learn violated constraints and search again; each round adds a constraint, so this ends.
    // With `clashes` (whether to rule out the first owner first), two packages owning one name
    // count as a violation too, and so does a package whose dependency had to take a candidate
    // that is ruled out.
    let learn = |learned: &mut HashMap<Text, Vec<Dependency>>, clashes: Option<bool>| {
        for _ in 0..200 {
            let at = run(pool, opts, learned, &sorted_world);
            let violation = at.violation().or_else(|| {
                clashes.and_then(|owner_first| {
                    at.forced_requirer(learned)
                        .or_else(|| at.owner_clash(learned, owner_first))
                })
            });
            let Some((name, dep)) = violation else { break };
            let l = learned.entry(name).or_default();
            if l.contains(&dep) {
                break;
            }
            l.push(dep);
        }
    };
    learn(&mut learned, None);
    let at = run(pool, opts, &learned, &sorted_world);
    // A clash of owners is learned from only when that solves the world: an unsolvable one is
    // reported as the first search found it (apk's report names the packages it chose).
    // Ruling out the first owner is tried first (what pulled it in may have had a choice), then
    // the second.
    if ErrorReport::build(pool, &at, world).is_some()
        && at.owner_clash(&HashMap::new(), true).is_some()
    {
        for owner_first in [true, false] {
            let mut again: HashMap<Text, Vec<Dependency>> = HashMap::new();
            learn(&mut again, Some(owner_first));
            let other = run(pool, opts, &again, &sorted_world);
            if ErrorReport::build(pool, &other, world).is_none() {
                return finish(pool, other, world, opts);
            }
        }
    }
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
