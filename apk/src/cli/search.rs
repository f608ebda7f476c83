//! `apk search`: package names (or descriptions, or origins) matching patterns, the newest
//! version of each name unless `-a` (apk-tools v3 `app_search.c`). The verbosity picks the
//! format: `-q` names, default `name-version`, `-v` `name-version - description`.

use apk::context::Context;
use apk::fnmatch::fnmatch;
use apk::pool::PkgId;
use std::collections::BTreeMap;

/// `apk search [-a] [-d] [-e|-x] [-o] [--has-origin] PATTERN...`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print all matching package versions
    #[arg(short = 'a', long)]
    all: bool,
    /// Also search for PATTERN in the package description
    #[arg(short = 'd', long)]
    description: bool,
    /// Match package names exactly
    #[arg(short = 'x', short_alias = 'e', long)]
    exact: bool,
    /// Print the origin (base package) name instead
    #[arg(short = 'o', long)]
    origin: bool,
    /// Match by package origin
    #[arg(long)]
    has_origin: bool,
    /// Patterns (shell wildcards)
    #[arg(value_name = "PATTERN")]
    patterns: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, ctx: Context) -> super::Outcome {
        let pool = &ctx.pool;
        let verbosity = ctx.out.verbosity;
        let wrap = |p: &String| {
            if self.exact {
                p.clone()
            } else {
                format!("*{p}*")
            }
        };
        let patterns: Vec<String> = self.patterns.iter().map(wrap).collect();
        let whole_db = self.description || self.has_origin;
        let mut by_name: BTreeMap<&str, Vec<PkgId>> = BTreeMap::new();
        for (id, p) in pool.packages.iter().enumerate() {
            let n = p.pkg.name.as_str();
            if whole_db || patterns.is_empty() || patterns.iter().any(|pat| fnmatch(pat, n)) {
                by_name.entry(n).or_default().push(id);
            }
        }
        let mut text = String::new();
        for ids in by_name.values() {
            let chosen: Vec<PkgId> = if self.all {
                let mut v = ids.clone();
                v.sort_by(|&a, &b| {
                    apk::version::compare(
                        &pool.packages[b].pkg.version,
                        &pool.packages[a].pkg.version,
                    )
                });
                v
            } else {
                let best = ids.iter().copied().reduce(|a, b| {
                    if apk::version::compare(
                        &pool.packages[b].pkg.version,
                        &pool.packages[a].pkg.version,
                    )
                    .is_gt()
                    {
                        b
                    } else {
                        a
                    }
                });
                best.into_iter().collect()
            };
            for id in chosen {
                let pkg = &pool.packages[id].pkg;
                if self.description {
                    let desc = pkg.description.to_lowercase();
                    let name = pkg.name.to_lowercase();
                    let hit = patterns.iter().any(|pat| {
                        let pat = pat.to_lowercase();
                        fnmatch(&pat, &desc) || fnmatch(&pat, &name)
                    });
                    if !hit {
                        continue;
                    }
                } else if self.has_origin
                    && !self
                        .patterns
                        .iter()
                        .any(|o| pkg.origin.as_deref() == Some(o.as_str()))
                {
                    continue;
                }
                let shown = if self.origin {
                    pkg.origin.as_deref().unwrap_or(&pkg.name)
                } else {
                    &pkg.name
                };
                text.push_str(shown);
                if verbosity > 0 {
                    text.push('-');
                    text.push_str(&pkg.version);
                }
                if verbosity > 1 && !self.origin {
                    text.push_str(" - ");
                    text.push_str(&pkg.description);
                }
                text.push('\n');
            }
        }
        // The format follows the verbosity, so the list is printed whatever -q says.
        use std::io::Write;
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_bytes());
        let _ = o.flush();
        Ok(0)
    }
}
