//! `apk policy NAME...`: every version of each named package, newest first, with where it can
//! come from: the installed database, the cache, and each repository (with its `@tag`).

use apk::context::Context;
use apk::fnmatch::fnmatch;
use std::collections::BTreeSet;

/// `apk policy PACKAGE...`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Package names (shell patterns)
    #[arg(value_name = "PACKAGE")]
    packages: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, ctx: Context) -> super::Outcome {
        let pool = &ctx.pool;
        let names: BTreeSet<&str> = pool
            .packages
            .iter()
            .map(|p| p.pkg.name.as_str())
            .filter(|n| self.packages.iter().any(|pat| fnmatch(pat, n)))
            .collect();
        let cache_shown = ctx.cache_dir.as_ref().map(|c| {
            c.strip_prefix(&ctx.opts.root)
                .map(|r| r.display().to_string())
                .unwrap_or_else(|_| c.display().to_string())
        });
        let mut text = String::new();
        for name in names {
            let mut ids = pool.by_name(name);
            ids.sort_by(|&a, &b| {
                apk::version::compare(&pool.packages[b].pkg.version, &pool.packages[a].pkg.version)
            });
            text.push_str(&format!("{name} policy:\n"));
            for id in ids {
                let p = &pool.packages[id];
                text.push_str(&format!("  {}:\n", p.pkg.version));
                if p.installed.is_some() {
                    text.push_str("    lib/apk/db/installed\n");
                }
                if let (Some(_), Some(c)) = (&p.cached, &cache_shown) {
                    text.push_str(&format!("    {c}\n"));
                }
                for &r in &p.repos {
                    let repo = &pool.repos[r];
                    let url = apk::http::url::display(&repo.url);
                    match &repo.tag {
                        Some(t) => text.push_str(&format!("    @{t} {url}\n")),
                        None => text.push_str(&format!("    {url}\n")),
                    }
                }
            }
        }
        ctx.out.raw(&text);
        Ok(0)
    }
}
