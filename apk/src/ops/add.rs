//! `apk add` (apk-add(8) of apk-tools v3): world edits, package files, virtual packages.

use super::solve_and_commit_as;
use crate::commit::CommitReport;
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
    /// `-u`/`--upgrade`: prefer upgrading the named packages and their dependencies.
    pub upgrade: bool,
    /// `-l`/`--latest`: the newest allowed version of the named packages and their dependencies.
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
        deps.push(d);
    }
    // The flags reach the dependencies of the named packages (apk's inheritable name flags).
    let named: HashSet<String> = deps.iter().map(|d| d.name.clone()).collect();
    let mut virtual_dep = None;
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
        // Solved as NAME=VERSION so that this new package replaces an installed one of the same
        // name; the world records NAME only (apk-format.md §8.5).
        virtual_dep = Some(Dependency {
            op: crate::version::EQUAL,
            version: Some(pkg.version.clone()),
            ..Dependency::any(&vdep.name)
        });
        ctx.pool.add_virtual(pkg);
        deps = vec![Dependency::any(&vdep.name)];
    }
    if non_repo && !ctx.opts.force_non_repository && ctx.cache_dir.is_none() && ctx.root_is_tmpfs()
    {
        return Err(Error::NonRepositoryOnTmpfs);
    }
    for d in deps {
        world.retain(|w| w.name != d.name);
        world.push(d);
    }
    let mut solve_world = world.clone();
    if let Some(v) = virtual_dep {
        solve_world.retain(|w| w.name != v.name);
        solve_world.push(v);
    }
    let flagged = if o.upgrade || o.latest {
        solver::with_dependencies(&ctx.pool, &named)
    } else {
        HashSet::new()
    };
    let sopts = SolverOptions {
        upgrade: flagged.clone(),
        latest_names: if o.latest { flagged } else { HashSet::new() },
        ..Default::default()
    };
    solve_and_commit_as(ctx, solve_world, world, &sopts)
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

#[cfg(test)]
mod tests {
    #[test]
    fn civil() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20414), (2025, 11, 22));
        assert_eq!(super::civil_from_days(11016), (2000, 2, 29));
    }
}
