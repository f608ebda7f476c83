//! `apk upgrade` (apk-upgrade(8) of apk-tools v3), with its preupgrade phase: when a newer
//! `apk-tools` (or another `--preupgrade-depends` name) is available, apk first upgrades just that
//! and what it needs (`Preupgrading:`), then the rest (apk-format.md §9.5).

use super::{check_world_tags, commit_solution};
use crate::commit::CommitReport;
use crate::context::{Context, Error};
use crate::dep::Dependency;
use crate::solver::{self, SolverOptions};
use crate::version;
use std::collections::HashSet;

/// What apk-tools v3 preupgrades by default.
pub const DEFAULT_PREUPGRADE: &str = "apk-tools";

/// `apk upgrade` flags.
#[derive(Clone, Debug, Default)]
pub struct UpgradeOptions {
    /// `-a`/`--available`: prefer packages a repository has; world identity pins are dropped.
    pub available: bool,
    /// `-l`/`--latest`.
    pub latest: bool,
    /// `--ignore`: the named packages stay as installed; all else is upgraded.
    pub ignore: bool,
    /// `--prune`: drop world entries no repository provides.
    pub prune: bool,
    /// `--no-self-upgrade` / `--no-preupgrade`: skip the preupgrade phase.
    pub no_preupgrade: bool,
    /// `--self-upgrade-only` / `--preupgrade-only`: only the preupgrade phase.
    pub preupgrade_only: bool,
    /// `--preupgrade-depends DEP`: more names for the preupgrade phase (besides `apk-tools`).
    pub preupgrade_depends: Vec<String>,
}

/// `apk upgrade [NAMES]`.
pub fn upgrade(
    ctx: &mut Context,
    names: &[String],
    o: &UpgradeOptions,
) -> Result<CommitReport, Error> {
    let mut world = ctx.db().world.clone();
    if !check_world_tags(ctx, &world) {
        return Err(Error::UpgradeMissingTags);
    }
    let mut named = HashSet::new();
    for n in names {
        let d = Dependency::parse(n, true).map_err(|_| Error::BadWorldDependency(n.clone()))?;
        if !ctx.pool.knows(&d.name) {
            return Err(Error::PackageNotFound(n.clone()));
        }
        named.insert(d.name);
    }
    let mut report = CommitReport::default();
    if !o.no_preupgrade && names.is_empty() {
        match preupgrade(ctx, &world, o)? {
            Preupgrade::Nothing => {}
            Preupgrade::Done(r) => {
                if o.preupgrade_only {
                    return Ok(r);
                }
                report.errors += r.errors;
                // The database changed under the pool: open the session again, as apk re-executes
                // itself after its preupgrade.
                ctx.out.msg("Continuing with the main upgrade transaction:");
                ctx.reopen()?;
                world = ctx.db().world.clone();
            }
        }
    }
    if o.preupgrade_only {
        return Ok(report);
    }
    if o.available {
        // Identity pins (`name><Q1...`, from `apk add ./file.apk`) give way to the repositories.
        for d in world.iter_mut() {
            if d.is_checksum_pin() {
                *d = Dependency {
                    tag: d.tag.clone(),
                    ..Dependency::any(&d.name)
                };
            }
        }
    }
    if o.prune {
        world.retain(|w| {
            w.conflict
                || ctx
                    .pool
                    .providers(&w.name)
                    .iter()
                    .any(|p| !ctx.pool.packages[p.pkg].repos.is_empty())
        });
    }
    // Unlike `add -u`, the names alone: their dependencies change only where they must.
    let (upgrade_all, upgrade, ignore) = match (names.is_empty(), o.ignore) {
        (true, _) => (true, HashSet::new(), HashSet::new()),
        (false, true) => (true, HashSet::new(), named),
        (false, false) => (false, named, HashSet::new()),
    };
    let sopts = SolverOptions {
        upgrade_all,
        latest: o.latest,
        latest_names: HashSet::new(),
        available: o.available,
        upgrade,
        ignore,
        ..Default::default()
    };
    let sol = solver::solve(&ctx.pool, &world, &sopts);
    let mut r = commit_solution(ctx, world, sol)?;
    r.errors += report.errors;
    Ok(r)
}

/// What the preupgrade phase did.
enum Preupgrade {
    /// Nothing to preupgrade (or skipped with a warning).
    Nothing,
    /// Committed (or simulated with `--preupgrade-only`).
    Done(CommitReport),
}

/// The preupgrade phase (v3 `apk_do_preupgrade`): for each preupgrade name that is installed and
/// has a newer version in a repository, solve the world plus those names with only them flagged
/// for upgrade. Under `--simulate` (unless `--preupgrade-only`) it only warns that the simulation
/// of the full upgrade may differ.
fn preupgrade(
    ctx: &mut Context,
    world: &[Dependency],
    o: &UpgradeOptions,
) -> Result<Preupgrade, Error> {
    let pool = &ctx.pool;
    let mut wanted: Vec<Dependency> = Vec::new();
    let mut specs = vec![DEFAULT_PREUPGRADE.to_string()];
    specs.extend(o.preupgrade_depends.iter().cloned());
    for spec in &specs {
        let dep = Dependency::parse(spec, true).map_err(|_| Error::BadDependency(spec.clone()))?;
        let Some(installed) = pool
            .by_name(&dep.name)
            .into_iter()
            .find(|&id| pool.packages[id].installed.is_some())
        else {
            continue;
        };
        let newer = pool.by_name(&dep.name).into_iter().any(|id| {
            !pool.packages[id].repos.is_empty()
                && version::compare(
                    &pool.packages[id].pkg.version,
                    &pool.packages[installed].pkg.version,
                )
                .is_gt()
        });
        if newer && !wanted.iter().any(|w| w.name == dep.name) {
            wanted.push(dep);
        }
    }
    if wanted.is_empty() {
        return Ok(Preupgrade::Nothing);
    }
    let mut pre_world = world.to_vec();
    for d in &wanted {
        if !pre_world.iter().any(|w| w.name == d.name) {
            pre_world.push(d.clone());
        }
    }
    let sopts = SolverOptions {
        upgrade: wanted.iter().map(|d| d.name.clone()).collect(),
        ..Default::default()
    };
    let sol = solver::solve(pool, &pre_world, &sopts);
    if sol.errors.is_some() {
        ctx.out
            .warning("Failed to perform initial preupgrade, continuing with a full upgrade.");
        return Ok(Preupgrade::Nothing);
    }
    if sol.changes.is_empty() {
        return Ok(Preupgrade::Nothing);
    }
    if ctx.opts.simulate && !o.preupgrade_only {
        ctx.out
            .warning("This simulation might not reliable as a preupgrade is available.");
        return Ok(Preupgrade::Nothing);
    }
    ctx.out.msg("Preupgrading:");
    // The world written is the user's: the preupgrade names are only added for this solve.
    let r = super::commit_solution_quiet(ctx, world.to_vec(), sol)?;
    Ok(Preupgrade::Done(r))
}
