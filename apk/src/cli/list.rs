//! `apk list`.

use apk::context::Context;
use apk::fnmatch::fnmatch;

/// `apk list [-I|-O|-a|-u] [-o|-d|-P] [PATTERN...]`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Installed packages only
    #[arg(short = 'I', long)]
    installed: bool,
    /// Every available version (not only the newest)
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
    /// Shell patterns
    #[arg(value_name = "PATTERN")]
    patterns: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, ctx: Context) -> super::Outcome {
        let pool = &ctx.pool;
        let mut rows: Vec<(String, String)> = Vec::new();
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
        let mut best: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (id, p) in pool.packages.iter().enumerate() {
            let e = best.entry(p.pkg.name.as_str()).or_insert(id);
            if apk::version::compare(&p.pkg.version, &pool.packages[*e].pkg.version).is_gt() {
                *e = id;
            }
        }
        for (id, p) in pool.packages.iter().enumerate() {
            let pk = &p.pkg;
            let Some(prefix) = matches(pk) else {
                continue;
            };
            if (self.installed || self.orphaned) && p.installed.is_none() {
                continue;
            }
            if self.orphaned && !p.repos.is_empty() {
                continue;
            }
            if !self.installed
                && !self.available
                && best.get(pk.name.as_str()) != Some(&id)
                && p.installed.is_none()
            {
                continue;
            }
            let newest = best.get(pk.name.as_str()).copied().unwrap_or(id);
            if self.upgradable && (p.installed.is_none() || newest == id) {
                continue;
            }
            let status = if p.installed.is_some() {
                if newest != id {
                    format!(" [upgradable from: {}]", pk.name_version())
                } else {
                    " [installed]".to_string()
                }
            } else {
                String::new()
            };
            let (nv, shown_status) = if self.upgradable {
                (pool.packages[newest].pkg.name_version(), status)
            } else {
                (pk.name_version(), status)
            };
            let line = format!(
                "{prefix}{nv} {} {{{}}} ({}){shown_status}",
                pk.arch.as_deref().unwrap_or("noarch"),
                pk.origin.as_deref().unwrap_or(&pk.name),
                pk.license
            );
            rows.push((pk.name.clone(), line));
        }
        rows.sort();
        rows.dedup_by(|a, b| a.1 == b.1);
        for (_, l) in rows {
            println!("{l}");
        }
        Ok(0)
    }
}
