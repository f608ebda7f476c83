//! `apk fetch`: copy packages from the repositories into a directory (or to stdout), each
//! verified against its identity in the signed index first (apk-tools v3 `app_fetch.c`).

use apk::context::Context;
use apk::dep::Dependency;
use apk::fnmatch::fnmatch;
use apk::pool::PkgId;
use apk::solver::{self, SolverOptions};
use std::io::Write;
use std::path::PathBuf;

/// `apk fetch [-R] [-w] [-l] [-o DIR] [--stdout] [--url] PACKAGE...`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write the downloaded files to DIR (default: the current directory)
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
    /// Fetch the packages and all of their dependencies
    #[arg(short = 'R', long)]
    recursive: bool,
    /// Also fetch what the world needs
    #[arg(short = 'w', long)]
    world: bool,
    /// Hard-link files from local repositories when possible
    #[arg(short = 'l', long)]
    link: bool,
    /// Write the .apk file(s) to stdout (-s)
    #[arg(long)]
    stdout: bool,
    /// Print the URL of each package instead of "Downloading ..."
    #[arg(long)]
    url: bool,
    /// Packages (shell patterns; dependencies with -R)
    #[arg(value_name = "PACKAGE")]
    packages: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, mut ctx: Context) -> super::Outcome {
        if self.stdout {
            // The package bytes are the output: no messages, no bar (as apk-tools).
            ctx.out.verbosity = ctx.out.verbosity.min(0);
            ctx.out.progress = apk::output::Progress::None;
        }
        let (selected, errors) = self.select(&ctx);
        if errors > 0 {
            return Ok(errors);
        }
        let pool = &ctx.pool;
        let dir = self.output.clone().unwrap_or_else(|| PathBuf::from("."));
        let total: u64 = selected.iter().map(|&id| pool.packages[id].pkg.size).sum();
        let mut done = 0u64;
        let mut errors = 0;
        for id in selected {
            let pkg = &pool.packages[id].pkg;
            let dest = dir.join(format!("{}.apk", pkg.name_version()));
            if !self.stdout
                && std::fs::metadata(&dest).is_ok_and(|m| m.len() == pkg.size && pkg.size > 0)
            {
                done += pkg.size;
                continue;
            }
            if self.url {
                ctx.out.msg(&source_of(&ctx, id));
            } else {
                ctx.out.msg(&format!("Downloading {}", pkg.name_version()));
            }
            if ctx.opts.simulate {
                continue;
            }
            let mut report = |n: u64, _: Option<u64>| ctx.out.progress(done + n, total, "fetching");
            let got = apk::fetch::obtain_package(&ctx.net, pool, id, &mut report);
            done += pkg.size;
            let res = got.map_err(|e| e.to_string()).and_then(|(buf, local)| {
                if self.stdout {
                    let mut o = std::io::stdout().lock();
                    return o
                        .write_all(&buf)
                        .and_then(|_| o.flush())
                        .map_err(|e| format!("stdout: {}", apk::root::io_message(&e)));
                }
                if self.link {
                    if let Some(src) = &local {
                        let _ = std::fs::remove_file(&dest);
                        if std::fs::hard_link(src, &dest).is_ok() {
                            return Ok(());
                        }
                    }
                }
                apk::root::atomic_write(&dest, &buf, 0o644)
                    .map_err(|e| format!("{}: {}", dest.display(), apk::root::io_message(&e)))
            });
            if let Err(e) = res {
                ctx.out.error(&format!("{}: {e}", pkg.name_version()));
                errors += 1;
            }
        }
        ctx.out.progress_done();
        Ok(errors)
    }

    /// The packages to fetch, sorted by name and version, and the number of arguments that
    /// matched nothing.
    fn select(&self, ctx: &Context) -> (Vec<PkgId>, usize) {
        let pool = &ctx.pool;
        let mut errors = 0;
        let mut chosen: Vec<PkgId> = Vec::new();
        if self.recursive || self.world {
            let mut world: Vec<Dependency> = Vec::new();
            if self.world {
                if let Some(db) = &ctx.db {
                    world.extend(db.world.iter().cloned());
                }
            }
            for a in &self.packages {
                match Dependency::parse(a, true) {
                    Ok(d) if pool.knows(&d.name) => world.push(d),
                    _ => {
                        ctx.out.msg(&format!(
                            "{a}: unable to select package (or its dependencies)"
                        ));
                        errors += 1;
                    }
                }
            }
            if errors > 0 {
                return (chosen, errors);
            }
            let sol = solver::solve(pool, &world, &SolverOptions::default());
            if let Some(e) = &sol.errors {
                eprint!(
                    "ERROR: unable to select packages:\n{}",
                    e.render(ctx.out.width)
                );
                return (chosen, 1);
            }
            chosen = sol
                .selected
                .into_iter()
                .filter(|&id| !pool.packages[id].virtual_pkg)
                .filter(|&id| pool.in_repository(id) || pool.packages[id].cached.is_some())
                .collect();
        } else {
            for a in &self.packages {
                let mut found = false;
                let mut names: Vec<&str> = pool
                    .packages
                    .iter()
                    .map(|p| p.pkg.name.as_str())
                    .filter(|n| fnmatch(a, n))
                    .collect();
                names.sort();
                names.dedup();
                for n in names {
                    let best = pool
                        .by_name(n)
                        .into_iter()
                        .filter(|&id| pool.in_repository(id) || pool.packages[id].cached.is_some())
                        .reduce(|x, y| {
                            if apk::version::compare(
                                &pool.packages[y].pkg.version,
                                &pool.packages[x].pkg.version,
                            )
                            .is_gt()
                            {
                                y
                            } else {
                                x
                            }
                        });
                    if let Some(id) = best {
                        chosen.push(id);
                        found = true;
                    }
                }
                if !found && !a.contains('*') {
                    ctx.out.msg(&format!(
                        "{a}: unable to select package (or its dependencies)"
                    ));
                    errors += 1;
                }
            }
        }
        chosen.sort_by(|&a, &b| {
            apk::package::index_order(&pool.packages[a].pkg, &pool.packages[b].pkg)
        });
        chosen.dedup();
        (chosen, errors)
    }
}

/// The URL or path a package is fetched from (`--url`).
fn source_of(ctx: &Context, id: PkgId) -> String {
    let pool = &ctx.pool;
    if let Some(p) = apk::prefetch::package_path(pool, id) {
        return p.display().to_string();
    }
    let arch = pool.arches.first().map(String::as_str).unwrap_or("");
    pool.packages[id]
        .repos
        .iter()
        .filter_map(|&r| apk::repo::RepoSpec::parse(&pool.repos[r].url))
        .map(|s| {
            apk::http::url::display(&apk::fetch::package_url(&s, &pool.packages[id].pkg, arch))
        })
        .next()
        .unwrap_or_default()
}
