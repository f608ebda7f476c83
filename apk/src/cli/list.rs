//! `apk list`.

use apk::context::Context;
use apk::fnmatch::fnmatch;

/// `apk list [-I|-a|-u|-o] [PATTERN...]`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Installed packages only
    #[arg(short = 'I', long)]
    installed: bool,
    /// Every available version (not only the newest)
    #[arg(short = 'a', long)]
    available: bool,
    /// Packages with an upgrade available
    #[arg(short = 'u', long)]
    upgradable: bool,
    /// Match origins instead of names
    #[arg(short = 'o', long)]
    origin: bool,
    /// Shell patterns
    #[arg(value_name = "PATTERN")]
    patterns: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, ctx: Context) -> super::Outcome {
        let pool = &ctx.pool;
        let mut rows: Vec<(String, String)> = Vec::new();
        let matches = |name: &str, origin: Option<&str>| {
            let subject = if self.origin {
                origin.unwrap_or(name)
            } else {
                name
            };
            self.patterns.is_empty() || self.patterns.iter().any(|p| fnmatch(p, subject))
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
            if !matches(&pk.name, pk.origin.as_deref()) {
                continue;
            }
            if self.installed && p.installed.is_none() {
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
                "{nv} {} {{{}}} ({}){shown_status}",
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
