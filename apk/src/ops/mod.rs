//! The package operations shared by the `apk` applets and the boot init: add, del, upgrade, fix
//! (one module each, with the options of apk-tools v3's applet). Each edits the world, solves,
//! prints apk's report and commits; this module holds the common tail.

use crate::commit::{self, CommitOptions, CommitReport};
use crate::context::{Context, Error};
use crate::dep::Dependency;
use crate::solver::{self, SolverOptions};
use crate::text::Text;

mod add;
mod del;
mod fix;
mod upgrade;

pub use add::{add, AddOptions};
pub use del::{del, DelOptions};
pub use fix::{fix, FixOptions};
pub use upgrade::{upgrade, UpgradeOptions, DEFAULT_PREUPGRADE};

/// Check world tags, solve, report problems, commit.
pub fn solve_and_commit(
    ctx: &mut Context,
    world: Vec<Dependency>,
    sopts: &SolverOptions,
) -> Result<CommitReport, Error> {
    solve_and_commit_as(ctx, world.clone(), world, sopts)
}

/// [`solve_and_commit`] with a world to solve that differs from the world written (`add -t`
/// solves for the new virtual package's version but records only its name).
fn solve_and_commit_as(
    ctx: &mut Context,
    solve_world: Vec<Dependency>,
    write_world: Vec<Dependency>,
    sopts: &SolverOptions,
) -> Result<CommitReport, Error> {
    if !check_world_tags(ctx, &solve_world) {
        return Err(Error::MissingRepositoryTags);
    }
    let sol = solver::solve(&ctx.pool, &solve_world, sopts);
    commit_solution(ctx, write_world, sol)
}

/// Warn about world entries whose `@tag` no repository carries (v3 `apk_db_check_world`); false
/// when there were some and `--force-broken-world` was not given.
pub fn check_world_tags(ctx: &Context, world: &[Dependency]) -> bool {
    if ctx.opts.force_broken_world {
        return true;
    }
    let mut missing_tag = false;
    for d in world {
        if let Some(t) = &d.tag {
            if !ctx
                .pool
                .repos
                .iter()
                .any(|r| r.tag.as_deref() == Some(t.as_str()))
            {
                ctx.out.warning(&format!(
                    "The repository tag for world dependency '{}@{t}' does not exist",
                    d.name
                ));
                missing_tag = true;
            }
        }
    }
    !missing_tag
}

fn commit_solution(
    ctx: &mut Context,
    world: Vec<Dependency>,
    sol: solver::Solution,
) -> Result<CommitReport, Error> {
    commit_with(ctx, world, sol, false)
}

/// Commit without the `OK:` line (the preupgrade transaction).
fn commit_solution_quiet(
    ctx: &mut Context,
    world: Vec<Dependency>,
    sol: solver::Solution,
) -> Result<CommitReport, Error> {
    commit_with(ctx, world, sol, true)
}

fn commit_with(
    ctx: &mut Context,
    world: Vec<Dependency>,
    mut sol: solver::Solution,
    no_summary: bool,
) -> Result<CommitReport, Error> {
    let mut extra_errors = 0;
    if let Some(e) = &sol.errors {
        let report = e.render(ctx.out.width);
        if !ctx.opts.force_broken_world {
            return Err(Error::Unsatisfiable(report));
        }
        // --force-broken-world: report, then install what can be installed.
        // A closed stderr is no reason to panic.
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr().lock(),
            format_args!("ERROR: unable to select packages:\n{report}"),
        );
        extra_errors += 1;
        let pool = &ctx.pool;
        sol.changes.retain(|c| {
            c.new.is_none_or(|n| {
                pool.obtainable(n)
                    && pool.packages[n].pkg.arch_ok(&pool.arches)
                    && !pool.packages[n].pkg.broken
            })
        });
    }
    if ctx.out.verbosity >= 2 {
        ctx.out.raw(&plan_listing(&ctx.pool, &sol, &ctx.out));
    }
    // Remote packages are downloaded and verified before the root is touched: a failed or
    // tampered download leaves the root and the cache as they were.
    let staged = if ctx.opts.simulate {
        crate::fetch::Staged::default()
    } else {
        let pool = &ctx.pool;
        let ids: Vec<usize> = sol
            .changes
            .iter()
            .filter_map(|c| c.new)
            .filter(|&n| pool.packages[n].pkg.installed_size > 0)
            .collect();
        match crate::fetch::stage_packages(&ctx.net, pool, &ids, &ctx.out) {
            Ok(s) => s,
            Err(errors) => return Ok(unchanged(ctx, errors + extra_errors)),
        }
    };
    for (id, path) in &staged.files {
        ctx.pool.set_cached(*id, path.clone());
    }
    let opts = CommitOptions {
        simulate: ctx.opts.simulate,
        no_scripts: ctx.opts.no_scripts,
        clean_protected: ctx.opts.clean_protected,
        overlay: ctx.opts.overlay.clone(),
        force_overwrite: ctx.opts.force_overwrite,
        purge: ctx.opts.purge,
        cache_dir: ctx.cache_dir.clone(),
        mount_for_scripts: true,
        keys: ctx.keys.clone(),
        allow_untrusted: ctx.opts.allow_untrusted,
        no_summary,
        ownership: ctx.opts.ownership,
        directory_permissions: ctx.opts.directory_permissions,
        jobs: ctx.opts.jobs,
        in_flight: ctx.opts.in_flight,
    };
    let db = ctx.db.as_mut().ok_or(Error::NoDatabase)?;
    let mut r = commit::commit(db, &ctx.pool, &sol, &world, &opts, &ctx.out);
    r.errors += extra_errors;
    Ok(r)
}

/// The report of a transaction that stopped before changing anything: the error count and the
/// installed state as it is (printed as apk's summary line).
fn unchanged(ctx: &Context, errors: usize) -> CommitReport {
    let Some(db) = ctx.db.as_ref() else {
        return CommitReport {
            errors,
            ..Default::default()
        };
    };
    let (dirs, files) = db.counts();
    let r = CommitReport {
        errors,
        packages: db.installed.len(),
        installed_bytes: db.installed_bytes(),
        dirs,
        files,
        ..Default::default()
    };
    ctx.out
        .msg(&commit::summary_line(&r, ctx.out.verbosity >= 2));
    r
}

/// The listing `apk -v` prints before the change lines (apk-format.md §9.5): packages no
/// repository has, then what will be removed and downgraded; when either was listed (or with
/// `-vv`) also the new, upgraded and reinstalled packages and the disk space balance.
pub fn plan_listing(
    pool: &crate::pool::Pool,
    sol: &solver::Solution,
    out: &crate::output::Out,
) -> String {
    use crate::output::{display_name, human_size, version_part};
    use crate::solver::ChangeKind;
    let mut text = String::new();
    let mut orphans: Vec<String> = sol
        .selected
        .iter()
        .filter(|&&id| !pool.in_repository(id))
        .map(|&id| pool.packages[id].pkg.name.to_string())
        .collect();
    orphans.sort_by(|a, b| crate::package::name_order(a, b));
    if !orphans.is_empty() {
        text.push_str("NOTE: Consider running apk upgrade with --prune and/or --available.\n");
        text.push_str("The following packages are no longer available from a repository:\n");
        text.push_str(&solver::indented(" ", &orphans, out.width));
    }
    let list = |kinds: &[ChangeKind]| -> Vec<String> {
        let mut v: Vec<(Text, String)> = sol
            .changes
            .iter()
            .filter(|c| kinds.contains(&c.kind))
            .map(|c| {
                (
                    pool.packages[c.new.or(c.old).unwrap_or_default()]
                        .pkg
                        .name
                        .clone(),
                    format!("  {} {}", display_name(pool, c), version_part(pool, c)),
                )
            })
            .collect();
        v.sort_by(|a, b| crate::package::name_order(&a.0, &b.0));
        v.into_iter().map(|(_, l)| l).collect()
    };
    let removed = list(&[ChangeKind::Purge]);
    let downgraded = list(&[ChangeKind::Downgrade]);
    let mut section = |title: &str, items: &[String]| {
        if !items.is_empty() {
            text.push_str(title);
            text.push('\n');
            for i in items {
                text.push_str(i);
                text.push('\n');
            }
        }
    };
    section("The following packages will be REMOVED:", &removed);
    section("The following packages will be DOWNGRADED:", &downgraded);
    if !removed.is_empty() || !downgraded.is_empty() || out.verbosity >= 3 {
        section(
            "The following NEW packages will be installed:",
            &list(&[ChangeKind::Install]),
        );
        section(
            "The following packages will be upgraded:",
            &list(&[ChangeKind::Upgrade, ChangeKind::Replace]),
        );
        section(
            "The following packages will be reinstalled:",
            &list(&[ChangeKind::Reinstall]),
        );
        let mut delta: i64 = 0;
        for c in &sol.changes {
            if let Some(o) = c.old {
                delta -= pool.packages[o].pkg.installed_size as i64;
            }
            if let Some(n) = c.new {
                delta += pool.packages[n].pkg.installed_size as i64;
            }
        }
        if delta >= 0 {
            text.push_str(&format!(
                "After this operation, {} of additional disk space will be used.\n",
                human_size(delta as u64)
            ));
        } else {
            text.push_str(&format!(
                "After this operation, {} of disk space will be freed.\n",
                human_size((-delta) as u64)
            ));
        }
    }
    text
}
