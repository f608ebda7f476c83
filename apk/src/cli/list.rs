//! `apk list`.

use apk::context::Context;
use apk::fnmatch::fnmatch;

/// `apk list [-I|-O|-a|-u] [-o|-d|-P] [--manifest] [PATTERN...]`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Installed packages only
    #[arg(short = 'I', long)]
    installed: bool,
    /// Packages a repository has
    #[arg(short = 'a', long)]
    available: bool,
    /// Installed packages that no repository has
    #[arg(short = 'O', long)]
    orphaned: bool,
    /// Packages with an upgrade available
    #[arg(short = 'u', long, visible_alias = "upgradeable")]
    upgradable: bool,
    /// Match origins instead of names
    #[arg(short = 'o', long)]
    origin: bool,
    /// Match dependencies: list the packages that depend on a matching name
    #[arg(short = 'd', long)]
    depends: bool,
    /// Match provided names: list the providers, each after `<name>`
    #[arg(short = 'P', long)]
    providers: bool,
    /// List installed packages as `NAME VERSION` lines (implies -I)
    #[arg(long)]
    manifest: bool,
    /// Shell patterns
    #[arg(value_name = "PATTERN")]
    patterns: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, ctx: Context) -> super::Outcome {
        let pool = &ctx.pool;
        let mut rows: Vec<(String, usize, String)> = Vec::new();
        // What the patterns are matched against (apk list -o/-d/-P), and with -P the provided
        // name shown before the package.
        let matches = |pk: &apk::package::Package| -> Option<String> {
            if self.patterns.is_empty() {
                return Some(String::new());
            }
            let hit = |subject: &str| self.patterns.iter().any(|p| fnmatch(p, subject));
            if self.origin {
                hit(pk.origin.as_deref().unwrap_or(&pk.name)).then(String::new)
            } else if self.depends {
                pk.depends
                    .iter()
                    .any(|d| !d.conflict && hit(&d.name))
                    .then(String::new)
            } else if self.providers {
                std::iter::once(pk.name.as_str())
                    .chain(pk.provides.iter().map(|p| p.name.as_str()))
                    .find(|n| hit(n))
                    .map(|n| format!("<{n}> "))
            } else {
                hit(&pk.name).then(String::new)
            }
        };
        // The installed package of each name, for `[upgradable from: …]` and `-u`.
        let installed_of = |name: &str| {
            pool.by_name(name)
                .into_iter()
                .find(|&i| pool.packages[i].installed.is_some())
        };
        // An installed package this one is newer than (apk-tools' `is_upgradable`).
        let upgrades = |id: usize| {
            let pk = &pool.packages[id].pkg;
            installed_of(&pk.name).filter(|&i| i != id).filter(|&i| {
                apk::version::compare(&pool.packages[i].pkg.version, &pk.version).is_lt()
            })
        };
        // No package of the name (or providing it) is in a repository.
        let orphaned = |name: &str| {
            pool.providers(name)
                .iter()
                .all(|pr| pool.packages[pr.pkg].repos.is_empty())
        };
        for (id, p) in pool.packages.iter().enumerate() {
            let pk = &p.pkg;
            let Some(prefix) = matches(pk) else {
                continue;
            };
            if ((self.installed || self.manifest) && p.installed.is_none())
                || (self.orphaned && !orphaned(&pk.name))
                || (self.available && p.repos.is_empty())
                || (self.upgradable && upgrades(id).is_none())
            {
                continue;
            }
            let status = if p.installed.is_some() {
                " [installed]".to_string()
            } else if let Some(i) = upgrades(id) {
                format!(
                    " [upgradable from: {}]",
                    pool.packages[i].pkg.name_version()
                )
            } else {
                String::new()
            };
            // apk-tools v3's `--manifest`: name and version only.
            if self.manifest {
                rows.push((prefix, id, format!("{} {}", pk.name, pk.version)));
                continue;
            }
            // As apk: the name alone under -q, the description below with -v.
            let line = if ctx.out.verbosity <= 0 {
                format!("{prefix}{}", pk.name)
            } else {
                let mut l = format!(
                    "{prefix}{} {} {{{}}} ({}){status}",
                    pk.name_version(),
                    pk.arch.as_deref().unwrap_or("noarch"),
                    pk.origin.as_deref().unwrap_or(&pk.name),
                    pk.license
                );
                if ctx.out.verbosity > 1 {
                    l.push_str(&format!("\n  {}\n", pk.description));
                }
                l
            };
            rows.push((prefix, id, line));
        }
        // By provided name (-P), then name, then version, as apk-tools v3 sorts its listings.
        rows.sort_by(|a, b| {
            let (pa, pb) = (&pool.packages[a.1].pkg, &pool.packages[b.1].pkg);
            a.0.cmp(&b.0)
                .then_with(|| pa.name.cmp(&pb.name))
                .then_with(|| apk::version::compare(&pa.version, &pb.version))
        });
        rows.dedup_by(|a, b| a.1 == b.1 && a.2 == b.2);
        for (_, _, l) in rows {
            println!("{l}");
        }
        Ok(0)
    }
}
