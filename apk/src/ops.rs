//! The package operations shared by the `apk` applets and the boot init: add, del, upgrade, fix.
//! Each edits the world, solves, prints apk's report and commits.

use crate::commit::{self, CommitOptions, CommitReport};
use crate::context::{Context, Error};
use crate::dep::Dependency;
use crate::package::{Checksum, Package};
use crate::solver::{self, SolverOptions};
use sha1::{Digest, Sha1};
use std::collections::HashSet;
use std::path::Path;

/// `apk add` flags.
#[derive(Clone, Debug, Default)]
pub struct AddOptions {
    /// `-u`: upgrade the named packages if installed.
    pub upgrade: bool,
    /// `--latest`.
    pub latest: bool,
    /// `-t NAME[=VER]`: make a virtual package depending on the arguments.
    pub virtual_pkg: Option<String>,
}

fn looks_like_file(a: &str) -> bool {
    a.ends_with(".apk") && (a.contains('/') || Path::new(a).is_file())
}

/// `apk add ARGS`.
pub fn add(ctx: &mut Context, args: &[String], o: &AddOptions) -> Result<CommitReport, Error> {
    let mut world = ctx.db().world.clone();
    let mut deps = Vec::new();
    let mut non_repo = false;
    let mut upgrade = HashSet::new();
    for a in args {
        if looks_like_file(a) {
            let pkg = ctx.open_file(Path::new(a))?;
            let d = Dependency {
                name: pkg.name.clone(),
                op: crate::version::CHECKSUM,
                version: Some(pkg.identity.to_string()),
                tag: None,
                conflict: false,
            };
            ctx.pool.add_file(pkg, a.into());
            deps.push(d);
            non_repo = true;
            continue;
        }
        let parse_tag = o.virtual_pkg.is_none();
        let d = Dependency::parse(a, parse_tag).map_err(|_| {
            if parse_tag {
                Error::BadWorldDependency(a.clone())
            } else {
                Error::BadDependency(a.clone())
            }
        })?;
        if o.upgrade {
            upgrade.insert(d.name.clone());
        }
        deps.push(d);
    }
    if let Some(spec) = &o.virtual_pkg {
        let vdep =
            Dependency::parse(spec, false).map_err(|_| Error::BadVirtualPackage(spec.clone()))?;
        if vdep.conflict || (vdep.version.is_some() && vdep.op != crate::version::EQUAL) {
            return Err(Error::BadVirtualPackage(spec.clone()));
        }
        if deps.is_empty() {
            ctx.out.warning("creating empty virtual package");
        }
        let version = vdep.version.clone().unwrap_or_else(virtual_version);
        let mut h = Sha1::new();
        h.update(std::process::id().to_le_bytes());
        h.update(vdep.name.as_bytes());
        h.update([0u8]);
        h.update(version.as_bytes());
        let pkg = Package {
            identity: Checksum(h.finalize().to_vec()),
            name: vdep.name.clone(),
            version,
            arch: Some("noarch".into()),
            description: "virtual meta package".into(),
            depends: deps.clone(),
            ..Default::default()
        };
        non_repo |= !vdep.name.starts_with('.');
        ctx.pool.add_virtual(pkg);
        deps = vec![Dependency {
            name: vdep.name.clone(),
            op: crate::version::ANY,
            version: None,
            tag: None,
            conflict: false,
        }];
    }
    if non_repo && !ctx.opts.force_non_repository && ctx.cache_dir.is_none() && ctx.root_is_tmpfs()
    {
        return Err(Error::NonRepositoryOnTmpfs);
    }
    for d in deps {
        world.retain(|w| w.name != d.name);
        world.push(d);
    }
    let sopts = SolverOptions {
        upgrade,
        latest: o.latest,
        ..Default::default()
    };
    solve_and_commit(ctx, world, &sopts)
}

fn virtual_version() -> String {
    // UTC YYYYMMDD.HHMMSS, as apk does.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}.{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `apk del NAMES`.
pub fn del(ctx: &mut Context, names: &[String], rdepends: bool) -> Result<CommitReport, Error> {
    let mut world = ctx.db().world.clone();
    let mut errors = 0;
    let mut targets: HashSet<String> = HashSet::new();
    for n in names {
        let known = world.iter().any(|w| &w.name == n) || ctx.db().find(n).is_some();
        if !known {
            ctx.out.error(&format!("No such package: {n}"));
            errors += 1;
            continue;
        }
        targets.insert(n.clone());
    }
    if rdepends {
        // Also drop world entries of installed packages that need a target.
        let mut changed = true;
        while changed {
            changed = false;
            for ip in &ctx.db().installed {
                if targets.contains(&ip.pkg.name) {
                    continue;
                }
                if ip
                    .pkg
                    .depends
                    .iter()
                    .any(|d| !d.conflict && targets.iter().any(|t| provides(ctx, t, &d.name)))
                {
                    targets.insert(ip.pkg.name.clone());
                    changed = true;
                }
            }
        }
    }
    world.retain(|w| !targets.contains(&w.name));
    let sol = solver::solve(&ctx.pool, &world, &SolverOptions::default());
    if sol.errors.is_none() {
        let mut lines = String::new();
        let mut sorted: Vec<&String> = names.iter().filter(|n| targets.contains(*n)).collect();
        sorted.sort();
        for n in sorted {
            let still: Vec<usize> = sol
                .selected
                .iter()
                .copied()
                .filter(|&id| &ctx.pool.packages[id].pkg.name == n)
                .collect();
            if still.is_empty() {
                continue;
            }
            let mut why: Vec<String> = Vec::new();
            for &s in &sol.selected {
                let p = &ctx.pool.packages[s].pkg;
                if p.depends
                    .iter()
                    .any(|d| !d.conflict && provides(ctx, n, &d.name))
                {
                    why.push(p.name.clone());
                }
            }
            if world.iter().any(|w| provides(ctx, n, &w.name)) {
                why.insert(0, "world".into());
            }
            why.sort();
            why.dedup();
            lines.push_str(&solver::indented(&format!("  {n}:"), &why, ctx.out.width));
        }
        if !lines.is_empty() {
            ctx.out
                .msg("World updated, but the following packages are not removed due to:");
            ctx.out.raw(&lines);
            ctx.out.msg("");
        }
    }
    let mut r = commit_solution(ctx, world, sol)?;
    r.errors += errors;
    Ok(r)
}

fn provides(ctx: &Context, pkgname: &str, depname: &str) -> bool {
    if pkgname == depname {
        return true;
    }
    ctx.pool.by_name(pkgname).iter().any(|&id| {
        ctx.pool.packages[id]
            .pkg
            .provides
            .iter()
            .any(|p| p.name == depname)
    })
}

/// `apk upgrade` flags.
#[derive(Clone, Debug, Default)]
pub struct UpgradeOptions {
    /// `-a`/`--available`.
    pub available: bool,
    /// `--latest`.
    pub latest: bool,
    /// `--ignore NAME`.
    pub ignore: Vec<String>,
    /// `--prune`: drop world entries no repository provides.
    pub prune: bool,
}

/// `apk upgrade [NAMES]`.
pub fn upgrade(
    ctx: &mut Context,
    names: &[String],
    o: &UpgradeOptions,
) -> Result<CommitReport, Error> {
    let mut world = ctx.db().world.clone();
    for n in names {
        if ctx.db().find(n).is_none() {
            return Err(Error::PackageNotFound(n.clone()));
        }
    }
    if o.prune {
        world.retain(|w| {
            ctx.pool
                .providers(&w.name)
                .iter()
                .any(|p| ctx.pool.in_repository(p.pkg))
        });
    }
    let sopts = SolverOptions {
        upgrade_all: names.is_empty(),
        upgrade: names.iter().cloned().collect(),
        latest: o.latest,
        available: o.available,
        ignore: o.ignore.iter().cloned().collect(),
        ..Default::default()
    };
    solve_and_commit(ctx, world, &sopts)
}

/// `apk fix [NAMES]`: reinstall the named packages, or every package with broken flags.
pub fn fix(ctx: &mut Context, names: &[String], upgrade: bool) -> Result<CommitReport, Error> {
    let world = ctx.db().world.clone();
    let mut reinstall: HashSet<String> = names.iter().cloned().collect();
    if names.is_empty() {
        reinstall.extend(
            ctx.db()
                .installed
                .iter()
                .filter(|p| !p.broken.is_empty())
                .map(|p| p.pkg.name.clone()),
        );
    }
    for n in names {
        if ctx.db().find(n).is_none() {
            return Err(Error::PackageNotFound(n.clone()));
        }
    }
    let sopts = SolverOptions {
        upgrade: if upgrade {
            reinstall.clone()
        } else {
            HashSet::new()
        },
        reinstall,
        ..Default::default()
    };
    solve_and_commit(ctx, world, &sopts)
}

/// Check world tags, solve, report problems, commit.
pub fn solve_and_commit(
    ctx: &mut Context,
    world: Vec<Dependency>,
    sopts: &SolverOptions,
) -> Result<CommitReport, Error> {
    let mut missing_tag = false;
    for d in &world {
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
    if missing_tag && !ctx.opts.force_broken_world {
        return Err(Error::MissingRepositoryTags);
    }
    let sol = solver::solve(&ctx.pool, &world, sopts);
    commit_solution(ctx, world, sol)
}

fn commit_solution(
    ctx: &mut Context,
    world: Vec<Dependency>,
    mut sol: solver::Solution,
) -> Result<CommitReport, Error> {
    let mut extra_errors = 0;
    if let Some(e) = &sol.errors {
        let report = e.render(ctx.out.width);
        if !ctx.opts.force_broken_world {
            return Err(Error::Unsatisfiable(report));
        }
        // --force-broken-world: report, then install what can be installed.
        eprint!("ERROR: unable to select packages:\n{report}");
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
        .map(|&id| pool.packages[id].pkg.name.clone())
        .collect();
    orphans.sort_by(|a, b| crate::package::name_order(a, b));
    if !orphans.is_empty() {
        text.push_str("NOTE: Consider running apk upgrade with --prune and/or --available.\n");
        text.push_str("The following packages are no longer available from a repository:\n");
        text.push_str(&solver::indented(" ", &orphans, out.width));
    }
    let list = |kinds: &[ChangeKind]| -> Vec<String> {
        let mut v: Vec<(String, String)> = sol
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

#[cfg(test)]
mod tests {
    #[test]
    fn civil() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20414), (2025, 11, 22));
        assert_eq!(super::civil_from_days(11016), (2000, 2, 29));
    }
}
