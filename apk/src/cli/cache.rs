//! `apk cache clean|download|purge|sync`: keep the package cache in step with the world
//! (apk-tools v3 `app_cache.c`). Without an active cache (`etc/apk/cache` or `--cache-dir`) only
//! `clean` runs, on the index cache.

use apk::context::Context;
use apk::dep::Dependency;
use apk::solver::{self, SolverOptions};
use std::collections::HashMap;

/// What to do.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    /// Remove files that no configured repository or installed package needs
    Clean,
    /// Download missing packages of the world (or of DEPENDENCY...)
    Download,
    /// Remove every cached package (installed ones stay on a tmpfs root)
    Purge,
    /// clean, then download
    Sync,
}

/// `apk cache [-u] [-l] [-a] [--add-dependencies] clean|download|purge|sync [DEPENDENCY...]`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Action
    #[arg(value_enum)]
    action: Action,
    /// Dependencies to download instead of the world
    #[arg(value_name = "DEPENDENCY")]
    dependencies: Vec<String>,
    /// Add the dependencies to the world instead of replacing it
    #[arg(long)]
    add_dependencies: bool,
    /// Prefer packages from the repositories, even if older than the installed ones
    #[arg(short = 'a', long)]
    available: bool,
    /// Always choose the latest version
    #[arg(short = 'l', long)]
    latest: bool,
    /// Upgrade the packages and their dependencies
    #[arg(short = 'u', long)]
    upgrade: bool,
    /// Accepted for compatibility
    #[arg(long)]
    ignore_conflict: bool,
}

impl Args {
    /// Run the applet.
    pub fn run(self, ctx: Context) -> super::Outcome {
        let active = ctx.cache_dir.is_some();
        let mut errors = 0;
        let clean = matches!(self.action, Action::Clean | Action::Purge | Action::Sync);
        let download = matches!(self.action, Action::Download | Action::Sync) && active;
        if clean {
            errors += self.clean(&ctx, active);
        }
        if download {
            errors += self.download(&ctx)?;
        }
        Ok(errors)
    }

    fn clean(&self, ctx: &Context, active: bool) -> usize {
        let Some(cache) = &ctx.net.cache else {
            return 0;
        };
        let pool = &ctx.pool;
        let arch = pool.arches.first().cloned().unwrap_or_default();
        let indexes: Vec<String> = ctx
            .repo_specs()
            .iter()
            .filter(|s| s.is_remote())
            .flat_map(|s| apk::cache::index_names(s, &arch))
            .collect();
        let by_file: HashMap<String, usize> = pool
            .packages
            .iter()
            .enumerate()
            .map(|(id, p)| (apk::cache::package_name(&p.pkg), id))
            .collect();
        let permanent = !ctx.root_is_tmpfs();
        let purge = self.action == Action::Purge;
        for name in cache.entries() {
            if indexes.contains(&name) {
                continue;
            }
            if active {
                if name == "installed" {
                    continue;
                }
                if let Some(&id) = by_file.get(&name) {
                    let p = &pool.packages[id];
                    let remote = p.repos.iter().any(|&r| {
                        apk::repo::RepoSpec::parse(&pool.repos[r].url)
                            .is_some_and(|s| s.is_remote())
                    });
                    let keep = if purge && (permanent || p.installed.is_none()) {
                        false
                    } else {
                        remote || (p.installed.is_some() && p.repos.is_empty())
                    };
                    if keep {
                        continue;
                    }
                }
            }
            ctx.out.debug(&format!("deleting {name}"));
            if !ctx.opts.simulate {
                if let Err(e) = std::fs::remove_file(cache.dir.join(&name)) {
                    ctx.out.error(&format!(
                        "{}: {}",
                        cache.dir.join(&name).display(),
                        apk::root::io_message(&e)
                    ));
                }
            }
        }
        0
    }

    fn download(&self, ctx: &Context) -> Result<usize, super::CliError> {
        let pool = &ctx.pool;
        let mut world: Vec<Dependency> = Vec::new();
        if self.dependencies.is_empty() || self.add_dependencies {
            world.extend(ctx.db().world.iter().cloned());
        }
        for d in &self.dependencies {
            let dep =
                Dependency::parse(d, true).map_err(|_| apk::Error::BadDependency(d.clone()))?;
            world.retain(|w| w.name != dep.name);
            world.push(dep);
        }
        let sopts = SolverOptions {
            upgrade_all: self.upgrade,
            latest: self.latest,
            available: self.available,
            ..Default::default()
        };
        let sol = solver::solve(pool, &world, &sopts);
        if sol.errors.is_some() {
            ctx.out.error("Unable to select packages. Run apk fix.");
            return Ok(1);
        }
        let Some(cache) = ctx.net.cache.as_ref().filter(|c| c.packages) else {
            return Ok(0);
        };
        let todo: Vec<usize> = sol
            .selected
            .iter()
            .copied()
            .filter(|&id| pool.packages[id].pkg.installed_size > 0)
            .filter(|&id| apk::fetch::needs_download(pool, id))
            .collect();
        let total: u64 = todo.iter().map(|&id| pool.packages[id].pkg.size).sum();
        let mut done = 0u64;
        let mut errors = 0;
        for id in todo {
            let pkg = &pool.packages[id].pkg;
            let mut report = |n: u64, _: Option<u64>| ctx.out.progress(done + n, total, "fetching");
            let got = ctx.net.download_package(pool, id, &mut report);
            done += pkg.size;
            let res = got.map_err(|e| e.to_string()).and_then(|buf| {
                if ctx.opts.simulate {
                    return Ok(());
                }
                cache
                    .store(&apk::cache::package_name(pkg), &buf)
                    .map(|_| ())
                    .map_err(|e| format!("{}: {}", cache.dir.display(), apk::root::io_message(&e)))
            });
            if let Err(e) = res {
                ctx.out.error(&format!("{}: {e}", pkg.name_version()));
                errors += 1;
            }
        }
        ctx.out.progress_done();
        Ok(errors)
    }
}
