//! `apk info`.

use apk::context::Context;
use apk::db::join;
use apk::output::human_size;

/// `apk info [-L|-W|-e|-a|-R|-s|-d|-w|-P|-r] [PACKAGE...]`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// List the files a package contains
    #[arg(short = 'L', long)]
    contents: bool,
    /// Print which package owns the given paths
    #[arg(short = 'W', long)]
    who_owns: bool,
    /// Check whether the packages are installed (exit status = number not installed)
    #[arg(short = 'e', long)]
    installed: bool,
    /// Print all information
    #[arg(short = 'a', long)]
    all: bool,
    /// Print dependencies
    #[arg(short = 'R', long)]
    depends: bool,
    /// Print the installed size (`-s`)
    #[arg(long)]
    size: bool,
    /// Print the description
    #[arg(short = 'd', long)]
    description: bool,
    /// Print the web page
    #[arg(short = 'w', long)]
    webpage: bool,
    /// Print what the package provides
    #[arg(short = 'P', long)]
    provides: bool,
    /// Print reverse dependencies
    #[arg(short = 'r', long)]
    rdepends: bool,
    /// Print the active triggers of the package
    #[arg(short = 't', long)]
    triggers: bool,
    /// Print the package's install_if rule
    #[arg(long)]
    install_if: bool,
    /// Print the packages whose install_if rules refer to this package
    #[arg(long)]
    rinstall_if: bool,
    /// Print the packages this package replaces
    #[arg(long)]
    replaces: bool,
    /// Print the license (SPDX identifier)
    #[arg(long)]
    license: bool,
    /// Packages (or paths with -W)
    #[arg(value_name = "PACKAGE")]
    packages: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, ctx: Context) -> super::Outcome {
        let db = ctx.db();
        let out = &ctx.out;
        if self.who_owns {
            let owners = db.file_owners();
            let mut errors = 0;
            for p in &self.packages {
                let rel = p.trim_start_matches('/');
                let rel = std::path::Path::new(rel);
                let key = rel.to_string_lossy().into_owned();
                match owners.get(&key) {
                    Some(&i) => {
                        let nv = db.installed[i].pkg.name_version();
                        if out.verbosity < 1 {
                            println!("{nv}");
                        } else {
                            println!("{p} is owned by {nv}");
                        }
                    }
                    None => {
                        out.error(&format!("{p}: Could not find owner package"));
                        errors += 1;
                    }
                }
            }
            return Ok(errors);
        }
        if self.packages.is_empty() {
            let mut names: Vec<String> = db
                .installed
                .iter()
                .map(|p| {
                    if out.verbosity > 1 {
                        p.pkg.name_version()
                    } else {
                        p.pkg.name.to_string()
                    }
                })
                .collect();
            names.sort();
            for n in names {
                println!("{n}");
            }
            return Ok(0);
        }
        let mut errors = 0;
        for name in &self.packages {
            let inst = db.find(name).map(|i| &db.installed[i]);
            if self.installed {
                match inst {
                    Some(_) => println!("{name}"),
                    None => errors += 1,
                }
                continue;
            }
            let pkg = match inst {
                Some(ip) => ip.pkg.clone(),
                None => {
                    let ids = ctx.pool.by_name(name);
                    match ids.iter().max_by(|&&a, &&b| {
                        apk::version::compare(
                            &ctx.pool.packages[a].pkg.version,
                            &ctx.pool.packages[b].pkg.version,
                        )
                    }) {
                        Some(&id) => ctx.pool.packages[id].pkg.clone(),
                        None => {
                            errors += 1;
                            continue;
                        }
                    }
                }
            };
            let nv = pkg.name_version();
            let plain = !(self.contents
                || self.depends
                || self.size
                || self.description
                || self.webpage
                || self.provides
                || self.rdepends
                || self.triggers
                || self.install_if
                || self.rinstall_if
                || self.replaces
                || self.license);
            let block = |title: &str, lines: Vec<String>| {
                if out.verbosity >= 1 {
                    println!("{nv} {title}:");
                }
                for l in lines {
                    println!("{l}");
                }
                if out.verbosity >= 1 {
                    println!();
                }
            };
            // A list of names (depends, provides, ...) ends with a blank line even under `-q`,
            // as in apk-tools.
            let list = |title: &str, lines: Vec<String>| {
                block(title, lines);
                if out.verbosity < 1 {
                    println!();
                }
            };
            if self.all || plain || self.description {
                block("description", vec![pkg.description.to_string()]);
            }
            if self.all || plain || self.webpage {
                block("webpage", vec![pkg.url.to_string()]);
            }
            if self.all || plain || self.size {
                block("installed size", vec![human_size(pkg.installed_size)]);
            }
            if self.all || self.depends {
                list(
                    "depends on",
                    pkg.depends.iter().map(|d| d.to_string()).collect(),
                );
            }
            if self.all || self.provides {
                list(
                    "provides",
                    pkg.provides.iter().map(|d| d.to_string()).collect(),
                );
            }
            // What only an installed package has is not shown for one that is not (apk-tools).
            let installed = inst.is_some();
            if installed && (self.all || self.rdepends) {
                let mut r: Vec<String> = db
                    .installed
                    .iter()
                    .filter(|p| {
                        p.pkg.depends.iter().any(|d| {
                            !d.conflict
                                && (d.name == pkg.name
                                    || pkg.provides.iter().any(|pp| pp.name == d.name))
                        })
                    })
                    .map(|p| p.pkg.name_version())
                    .collect();
                r.sort();
                list("is required by", r);
            }
            if installed && (self.all || self.contents) {
                let files: Vec<String> = inst
                    .map(|ip| ip.files().map(|(d, f)| join(&d.path, &f.name)).collect())
                    .unwrap_or_default();
                if out.verbosity >= 1 {
                    println!("{nv} contains:");
                }
                for f in files {
                    println!("{f}");
                }
                if out.verbosity >= 1 {
                    println!();
                }
            }
            if installed && (self.all || self.triggers) {
                let globs: Vec<String> = db
                    .triggers
                    .iter()
                    .filter(|(id, _)| *id == pkg.identity)
                    .flat_map(|(_, g)| g.iter().cloned())
                    .collect();
                list("triggers", globs);
            }
            if self.all || self.install_if {
                list(
                    "has auto-install rule",
                    pkg.install_if.iter().map(|d| d.to_string()).collect(),
                );
            }
            if installed && (self.all || self.rinstall_if) {
                // Installed packages with an install_if condition on a name this package
                // provides (apk-tools looks at the installed package of each such name only).
                let names: Vec<&str> = std::iter::once(pkg.name.as_str())
                    .chain(pkg.provides.iter().map(|p| p.name.as_str()))
                    .collect();
                let mut r: Vec<String> = ctx
                    .pool
                    .packages
                    .iter()
                    .filter(|p| p.installed.is_some())
                    .filter(|p| {
                        p.pkg
                            .install_if
                            .iter()
                            .any(|d| names.contains(&d.name.as_str()))
                    })
                    .map(|p| p.pkg.name_version())
                    .collect();
                r.sort();
                r.dedup();
                list("affects auto-installation of", r);
            }
            if installed && (self.all || self.replaces) {
                list(
                    "replaces",
                    pkg.replaces.iter().map(|d| d.to_string()).collect(),
                );
            }
            if self.all || self.license {
                block("license", vec![pkg.license.to_string()]);
            }
        }
        Ok(errors)
    }
}
