//! `apk del` (apk-del(8) of apk-tools v3): drop names from the world (with `-r` also the installed
//! packages that need them), solve, and say which named packages stay and why.

use super::commit_solution;
use crate::commit::CommitReport;
use crate::context::{Context, Error};
use crate::dep::Dependency;
use crate::pool::{PkgId, Pool, Provider};
use crate::solver::{self, SolverOptions};
use std::collections::HashSet;

/// `apk del` flags.
#[derive(Clone, Debug, Default)]
pub struct DelOptions {
    /// `-r`/`--rdepends`: also delete the installed packages that depend on the named ones.
    pub rdepends: bool,
}

/// Installed (or, with `among`, selected) packages that depend on `id` through a dependency `id`
/// satisfies, in name order.
fn reverse_dependencies(pool: &Pool, id: PkgId, among: &dyn Fn(PkgId) -> bool) -> Vec<PkgId> {
    let p = &pool.packages[id].pkg;
    let mut names = vec![(p.name.clone(), Some(p.version.clone()), true)];
    names.extend(
        p.provides
            .iter()
            .map(|d| (d.name.clone(), d.version.clone(), false)),
    );
    let mut out: Vec<PkgId> = (0..pool.packages.len())
        .filter(|&q| q != id && among(q))
        .filter(|&q| {
            pool.packages[q].pkg.depends.iter().any(|d| {
                !d.conflict
                    && names.iter().any(|(n, v, real)| {
                        *n == d.name
                            && pool.provider_matches(
                                d,
                                &Provider {
                                    pkg: id,
                                    version: v.clone(),
                                    real: *real,
                                },
                            )
                    })
            })
        })
        .collect();
    out.sort_by(|&a, &b| {
        crate::package::name_order(&pool.packages[a].pkg.name, &pool.packages[b].pkg.name)
    });
    out
}

/// `apk del NAMES`. An unknown name is an error and nothing changes (apk counts it and stops).
pub fn del(ctx: &mut Context, names: &[String], o: &DelOptions) -> Result<CommitReport, Error> {
    let mut world = ctx.db().world.clone();
    let mut errors = 0;
    for n in names {
        let known = world.iter().any(|w| &w.name == n) || ctx.pool.knows(n);
        if !known {
            ctx.out.error(&format!("No such package: {n}"));
            errors += 1;
        }
    }
    if errors > 0 {
        return Ok(CommitReport {
            errors,
            ..Default::default()
        });
    }
    let pool = &ctx.pool;
    let installed = |q: PkgId| pool.packages[q].installed.is_some();
    let mut seen: HashSet<PkgId> = HashSet::new();
    for n in names {
        let inst: Vec<PkgId> = pool
            .by_name(n)
            .into_iter()
            .filter(|&q| installed(q))
            .collect();
        if inst.is_empty() {
            world.retain(|w| &w.name != n);
        }
        let mut todo = inst;
        while let Some(id) = todo.pop() {
            if !seen.insert(id) {
                continue;
            }
            let p = &pool.packages[id].pkg;
            world.retain(|w| w.name != p.name);
            if o.rdepends {
                world.retain(|w| !p.provides.iter().any(|d| d.name == w.name));
                todo.extend(reverse_dependencies(pool, id, &installed));
            }
        }
    }
    let sol = solver::solve(pool, &world, &SolverOptions::default());
    if sol.errors.is_none() && ctx.out.verbosity >= 1 {
        let text = not_removed(pool, &sol, &world, names, ctx.out.width);
        if !text.is_empty() {
            ctx.out
                .msg("World updated, but the following packages are not removed due to:");
            ctx.out.raw(&text);
            ctx.out.msg("");
        }
    }
    commit_solution(ctx, world, sol)
}

/// Per named package that stays: `  name: <world names that still need it>`, found by walking
/// the reverse dependencies among the packages that stay (v3 `print_not_deleted_name`).
fn not_removed(
    pool: &Pool,
    sol: &solver::Solution,
    world: &[Dependency],
    names: &[String],
    width: usize,
) -> String {
    let selected: HashSet<PkgId> = sol.selected.iter().copied().collect();
    let in_world = |n: &str| world.iter().any(|w| w.name == n && !w.conflict);
    let mut text = String::new();
    for n in names {
        let mut items: Vec<String> = Vec::new();
        let mut visited: HashSet<PkgId> = HashSet::new();
        let mut stack: Vec<PkgId> = pool
            .providers(n)
            .iter()
            .map(|p| p.pkg)
            .filter(|q| selected.contains(q))
            .collect();
        stack.dedup();
        if stack.is_empty() {
            continue;
        }
        stack.reverse();
        while let Some(id) = stack.pop() {
            if !visited.insert(id) {
                continue;
            }
            let p = &pool.packages[id].pkg;
            if in_world(&p.name) {
                items.push(p.name.to_string());
            }
            for d in &p.provides {
                if in_world(&d.name) {
                    items.push(d.name.to_string());
                }
            }
            let mut next = reverse_dependencies(pool, id, &|q| selected.contains(&q));
            next.reverse();
            stack.extend(next);
        }
        let mut uniq = HashSet::new();
        items.retain(|i| uniq.insert(i.clone()));
        if !items.is_empty() {
            text.push_str(&solver::indented(&format!("  {n}:"), &items, width));
        }
    }
    text
}
