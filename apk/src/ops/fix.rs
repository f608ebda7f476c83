//! `apk fix` (apk-fix(8) of apk-tools v3): reinstall (or upgrade) the named packages, or every
//! installed package marked broken, optionally with their dependencies.

use super::solve_and_commit;
use crate::commit::CommitReport;
use crate::context::{Context, Error};
use crate::solver::{self, SolverOptions};
use crate::text::Text;
use std::collections::HashSet;

/// `apk fix` flags.
#[derive(Clone, Debug, Default)]
pub struct FixOptions {
    /// `-d`/`--depends`: the dependencies of the packages too.
    pub depends: bool,
    /// `-r`/`--reinstall`: reinstall (the default unless `-u` alone is given).
    pub reinstall: bool,
    /// `-u`/`--upgrade`: upgrade when a newer version is available.
    pub upgrade: bool,
    /// `-x`/`--xattr`: without names, also the packages whose xattrs are marked broken.
    pub xattr: bool,
    /// `--directory-permissions`: also give every installed directory the owner and mode the
    /// database records ([`crate::dirperm`]).
    pub directory_permissions: bool,
}

/// `apk fix [NAMES]`. Without names: every package with broken files or scripts (`f:f`, `f:s`;
/// with `-x` also `f:x`).
pub fn fix(ctx: &mut Context, names: &[String], o: &FixOptions) -> Result<CommitReport, Error> {
    let world = ctx.db().world.clone();
    let mut marked: HashSet<Text> = HashSet::new();
    if names.is_empty() {
        marked.extend(
            ctx.db()
                .installed
                .iter()
                .filter(|p| {
                    p.broken.contains('f')
                        || p.broken.contains('s')
                        || p.broken.contains('S')
                        || (o.xattr && p.broken.contains('x'))
                })
                .map(|p| p.pkg.name.clone()),
        );
    }
    for n in names {
        if ctx.db().find(n).is_none() {
            return Err(Error::PackageNotFound(n.clone()));
        }
        marked.insert(n.into());
    }
    if o.depends {
        marked = solver::with_dependencies(&ctx.pool, &marked);
    }
    ctx.opts.directory_permissions |= o.directory_permissions;
    let reinstall = o.reinstall || !o.upgrade;
    let sopts = SolverOptions {
        upgrade: if o.upgrade {
            marked.clone()
        } else {
            HashSet::new()
        },
        reinstall: if reinstall { marked } else { HashSet::new() },
        ..Default::default()
    };
    solve_and_commit(ctx, world, &sopts)
}
