//! The order of the changes, as apk-tools orders them (apk-format.md §8.7).

use super::search::Attempt;
use super::{Change, ChangeKind, SolverOptions};
use crate::dep::Dependency;
use crate::pool::{PkgId, Pool};
use crate::version;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

pub(super) fn order_changes(
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
