//! `apk index`: build an `APKINDEX.tar.gz` from package files (unsigned; sign with `apk sign`).

use apk::context::Context;
use apk::mkpkg;
use apk::package::Package;
use apk::Error;
use std::collections::HashSet;
use std::path::PathBuf;

/// `apk index -o OUT [-d DESC] [--rewrite-arch ARCH] [-x OLD] FILE...`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write the index to FILE
    #[arg(short = 'o', long, value_name = "FILE", required = true)]
    output: PathBuf,
    /// Index description
    #[arg(short = 'd', long, value_name = "TEXT")]
    description: Option<String>,
    /// Use ARCH for every package
    #[arg(long, value_name = "ARCH")]
    rewrite_arch: Option<String>,
    /// Reuse entries of an old index for unchanged files
    #[arg(short = 'x', long = "index", value_name = "OLD")]
    old_index: Option<PathBuf>,
    /// Do not warn about missing dependencies
    #[arg(long)]
    no_warnings: bool,
    /// Package files
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, ctx: Context) -> super::Outcome {
        let mut old: Vec<Package> = Vec::new();
        let mut old_mtime = None;
        if let Some(o) = &self.old_index {
            let buf = std::fs::read(o).map_err(|source| Error::Io {
                path: o.clone(),
                source,
            })?;
            let f =
                apk::archive::open_index(&buf, &ctx.keys, true).map_err(|err| Error::Package {
                    path: o.clone(),
                    err,
                })?;
            let idx = apk::index::parse(&f.text);
            for e in &idx.skipped {
                ctx.out.warning(&format!(
                    "{}: skipped the entry at line {}: {}",
                    o.display(),
                    e.line,
                    e.msg
                ));
            }
            old = idx.packages;
            old_mtime = std::fs::metadata(o).and_then(|m| m.modified()).ok();
        }
        let mut pkgs = Vec::new();
        let mut new = 0;
        let mut errors = 0;
        for f in &self.files {
            let meta = std::fs::metadata(f).map_err(|source| Error::Io {
                path: f.clone(),
                source,
            })?;
            let stem = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let reuse = apk::version::split_name_version(&stem).and_then(|(n, v)| {
                let fresh = old_mtime
                    .zip(meta.modified().ok())
                    .is_some_and(|(o, m)| o >= m);
                old.iter()
                    .find(|p| fresh && p.name == n && p.version == v && p.size == meta.len())
                    .cloned()
            });
            let mut p = match reuse {
                Some(p) => p,
                None => {
                    let buf = std::fs::read(f).map_err(|source| Error::Io {
                        path: f.clone(),
                        source,
                    })?;
                    match mkpkg::index_entry(&buf, &ctx.keys, ctx.opts.allow_untrusted) {
                        Ok(p) => {
                            new += 1;
                            p
                        }
                        Err(e) => {
                            ctx.out.error(&format!("{}: {e}", f.display()));
                            errors += 1;
                            continue;
                        }
                    }
                }
            };
            if let Some(a) = &self.rewrite_arch {
                p.arch = Some(a.into());
            }
            pkgs.push(p);
        }
        if errors > 0 {
            return Ok(errors);
        }
        if !self.no_warnings {
            warn_unsatisfiable(&ctx, &pkgs);
        }
        let text = apk::index::write(&pkgs);
        let body = apk::archive::index_body(
            &text,
            self.description.as_deref(),
            apk::archive::build_time(),
        );
        apk::root::atomic_write(&self.output, &body, 0o644).map_err(|source| Error::Io {
            path: self.output.clone(),
            source,
        })?;
        ctx.out.msg(&format!(
            "Index has {} packages (of which {new} are new)",
            pkgs.len()
        ));
        Ok(0)
    }
}

fn warn_unsatisfiable(ctx: &Context, pkgs: &[Package]) {
    let mut provided: HashSet<&str> = HashSet::new();
    for p in pkgs {
        provided.insert(&p.name);
        for pr in &p.provides {
            provided.insert(&pr.name);
        }
    }
    let mut missing: Vec<String> = pkgs
        .iter()
        .flat_map(|p| p.depends.iter())
        .filter(|d| !d.conflict && !provided.contains(d.name.as_str()))
        .map(|d| d.name.to_string())
        .collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        return;
    }
    ctx.out.warning("No provider for the dependencies:");
    for m in &missing {
        eprintln!("  {m}");
    }
    ctx.out.warning(&format!(
        "Total of {} unsatisfiable package names. Your repository may be broken.",
        missing.len()
    ));
}
