//! `apk add` (apk-add(8) of apk-tools v3): world edits, package files, virtual packages.

use super::solve_and_commit_as;
use crate::commit::CommitReport;
use crate::context::{Context, Error};
use crate::dep::Dependency;
use crate::package::{Checksum, Package};
use crate::solver::{self, SolverOptions};
use crate::text::Text;
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
                version: Some(pkg.identity.to_string().into()),
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
    let named: HashSet<Text> = deps.iter().map(|d| d.name.clone()).collect();
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
        let version = vdep
            .version
            .clone()
            .unwrap_or_else(|| virtual_version().into());
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
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}.{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn virtual_version_is_utc_date_dot_time() {
        let v = super::virtual_version();
        assert_eq!(v.len(), 15, "{v}");
        assert_eq!(&v[8..9], ".", "{v}");
        assert!(
            v[..8]
                .bytes()
                .chain(v[9..].bytes())
                .all(|b| b.is_ascii_digit()),
            "{v}"
        );
        assert!(v.as_str() > "20260101.000000", "{v}");
        assert!(crate::version::is_valid(&v), "{v} is a valid apk version");
    }
}
