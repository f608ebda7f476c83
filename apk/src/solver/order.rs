//! The order of the changes, as apk-tools orders them (apk-format.md §8.7):
//! - first the installed packages that go away, in installed order; before each, the installed
//!   packages that need it (they go away or change first: dependents before dependencies);
//! - then the world, in sorted order, each package after its dependencies (depth first);
//! - an `install_if` package right after the last package it was waiting for;
//! - then whatever else was selected.

use super::search::Attempt;
use super::{Change, ChangeKind, SolverOptions};
use crate::dep::Dependency;
use crate::pool::{PkgId, Pool, Provider};
use crate::version;
use std::cmp::Ordering;
use std::collections::HashMap;

/// One step of the walk: a removal, or a selected package (a change unless it is kept).
enum Step {
    Purge(PkgId),
    Select(PkgId),
}

struct Walk<'p, 'a> {
    pool: &'p Pool,
    at: &'p Attempt<'a>,
    /// install_if packages among the selected, in name order.
    iif: Vec<PkgId>,
    emitted: Vec<bool>,
    visiting: Vec<bool>,
    removing: Vec<bool>,
    steps: Vec<Step>,
}

impl Walk<'_, '_> {
    fn provider_of(&self, dep: &Dependency) -> Option<PkgId> {
        self.at
            .selected_providers(&dep.name)
            .find(|p| self.pool.provider_matches(dep, p))
            .or_else(|| self.at.selected_providers(&dep.name).next())
            .map(|p| p.pkg)
    }

    /// Emit a selected package after its dependencies, then the install_if packages it was the
    /// last missing condition of.
    fn visit(&mut self, id: PkgId) {
        if self.emitted[id] || self.visiting[id] {
            return;
        }
        self.visiting[id] = true;
        let pool = self.pool;
        // Conflicts too: a name a package conflicts with (at other versions) is still ordered
        // before it, as apk-tools' changeset walk does (`cset_gen_dep`).
        for d in &pool.packages[id].pkg.depends {
            if let Some(p) = self.provider_of(d) {
                self.visit(p);
            }
        }
        if self.emitted[id] {
            return;
        }
        self.emitted[id] = true;
        self.steps.push(Step::Select(id));
        // Only the install_if packages with a condition on a name this package provides
        // (apk's reverse install_if list of the name).
        let own = &pool.packages[id].pkg;
        let names: Vec<&str> = std::iter::once(own.name.as_str())
            .chain(own.provides.iter().map(|p| p.name.as_str()))
            .collect();
        for i in 0..self.iif.len() {
            let q = self.iif[i];
            if self.emitted[q] || self.visiting[q] {
                continue;
            }
            let cond = &pool.packages[q].pkg.install_if;
            if !cond.iter().any(|d| names.contains(&d.name.as_str())) {
                continue;
            }
            let ready = cond
                .iter()
                .filter(|d| !d.conflict)
                .all(|d| self.provider_of(d).is_some_and(|p| self.emitted[p]));
            if ready {
                self.visit(q);
            }
        }
    }

    /// Installed packages that need `id` (a dependency or install_if condition `id` satisfies).
    fn installed_dependents(&self, id: PkgId, installed: &[PkgId]) -> Vec<PkgId> {
        let pool = self.pool;
        let p = &pool.packages[id].pkg;
        let mut names = vec![Provider {
            pkg: id,
            version: Some(p.version.clone()),
            real: true,
        }];
        let mut names_str = vec![p.name.as_str()];
        for d in &p.provides {
            names.push(Provider {
                pkg: id,
                version: d.version.clone(),
                real: false,
            });
            names_str.push(d.name.as_str());
        }
        installed
            .iter()
            .copied()
            .filter(|&q| q != id)
            .filter(|&q| {
                let qp = &pool.packages[q].pkg;
                qp.depends
                    .iter()
                    .chain(&qp.install_if)
                    .filter(|d| !d.conflict)
                    .any(|d| {
                        names_str
                            .iter()
                            .zip(&names)
                            .any(|(n, prov)| *n == d.name && pool.provider_matches(d, prov))
                    })
            })
            .collect()
    }

    /// Remove `id`, after what needs it: dependents that go away are removed first, dependents
    /// that change are changed first.
    fn remove(
        &mut self,
        id: PkgId,
        installed: &[PkgId],
        removed: &[bool],
        by_name: &HashMap<&str, PkgId>,
    ) {
        if self.removing[id] {
            return;
        }
        self.removing[id] = true;
        for q in self.installed_dependents(id, installed) {
            if removed[q] {
                self.remove(q, installed, removed, by_name);
            } else if let Some(&n) = by_name.get(self.pool.packages[q].pkg.name.as_str()) {
                if n != q {
                    self.visit(n);
                }
            }
        }
        self.steps.push(Step::Purge(id));
    }
}

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
    let by_name: HashMap<&str, PkgId> = at
        .selected
        .iter()
        .map(|&id| (pool.packages[id].pkg.name.as_str(), id))
        .collect();
    let mut removed = vec![false; pool.packages.len()];
    for &o in &installed {
        removed[o] = !by_name.contains_key(pool.packages[o].pkg.name.as_str());
    }
    let mut iif: Vec<PkgId> = at
        .selected
        .iter()
        .copied()
        .filter(|&id| !pool.packages[id].pkg.install_if.is_empty())
        .collect();
    iif.sort_by(|&a, &b| {
        crate::package::name_order(&pool.packages[a].pkg.name, &pool.packages[b].pkg.name)
    });
    let n = pool.packages.len();
    let mut walk = Walk {
        pool,
        at,
        iif,
        emitted: vec![false; n],
        visiting: vec![false; n],
        removing: vec![false; n],
        steps: Vec::new(),
    };
    for &o in &installed {
        if removed[o] {
            walk.remove(o, &installed, &removed, &by_name);
        }
    }
    let mut sorted_world = world.to_vec();
    crate::db::world::sort(&mut sorted_world);
    for d in sorted_world.iter().filter(|d| !d.conflict) {
        if let Some(p) = walk.provider_of(d) {
            walk.visit(p);
        }
    }
    for &id in &at.selected {
        walk.visit(id);
    }
    let mut changes = Vec::new();
    for step in walk.steps {
        let id = match step {
            Step::Purge(old) => {
                changes.push(Change {
                    kind: ChangeKind::Purge,
                    old: Some(old),
                    new: None,
                    tag: None,
                });
                continue;
            }
            Step::Select(id) => id,
        };
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
                } else if tag.as_deref() != p.installed_tag.as_deref() {
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
