//! `apk version`.

use apk::context::Context;
use apk::version;
use apk::Error;

/// `apk version [-t A B] [-c VERSION...] [PACKAGE...]`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Compare two versions: prints <, = or >
    #[arg(short = 't', long = "test", num_args = 2, value_names = ["A", "B"])]
    test: Option<Vec<String>>,
    /// Check versions for validity (exit status = number of invalid ones)
    #[arg(short = 'c', long = "check")]
    check: bool,
    /// Only show packages whose status matches these characters (e.g. '<')
    #[arg(short = 'l', long = "limit", value_name = "CHARS")]
    limit: Option<String>,
    /// Versions (with -c) or package names
    #[arg(value_name = "ARG")]
    args: Vec<String>,
}

impl Args {
    /// Whether the installed database is needed.
    pub fn needs_db(&self) -> bool {
        self.test.is_none() && !self.check
    }

    /// Run the applet.
    pub fn run(self, ctx: Context) -> super::Outcome {
        if let Some(t) = &self.test {
            let sym = match version::compare(&t[0], &t[1]) {
                std::cmp::Ordering::Less => "<",
                std::cmp::Ordering::Equal => "=",
                std::cmp::Ordering::Greater => ">",
            };
            println!("{sym}");
            return Ok(0);
        }
        if self.check {
            let mut bad = 0;
            for v in &self.args {
                if !version::is_valid(v) {
                    println!("{v}");
                    bad += 1;
                }
            }
            return Ok(bad);
        }
        let db = ctx.db.as_ref().ok_or(Error::NoDatabase)?;
        let verbosity = ctx.out.verbosity;
        // As apk: only upgradable packages without names at the default verbosity, else every
        // status; an empty -l means no limit.
        let limit = match &self.limit {
            Some(l) if l.is_empty() => None,
            Some(l) => Some(l.clone()),
            None if self.args.is_empty() && verbosity == 1 => Some("<".to_string()),
            None => None,
        };
        if verbosity > 0 {
            println!("{:<42}Available:", "Installed:");
        }
        let mut rows = Vec::new();
        for ip in &db.installed {
            if !self.args.is_empty() && !self.args.iter().any(|a| *a == ip.pkg.name) {
                continue;
            }
            // The newest of the repositories' versions and the installed one, as apk: an
            // installed package newer than any repository's, or in none, shows `=` with its own
            // version.
            let best = ctx
                .pool
                .by_name(&ip.pkg.name)
                .into_iter()
                .filter(|&id| ctx.pool.in_repository(id))
                .map(|id| ctx.pool.packages[id].pkg.version.to_string())
                .chain(std::iter::once(ip.pkg.version.to_string()))
                .max_by(|a, b| version::compare(a, b));
            let (sym, avail) = match &best {
                Some(b) => (
                    match version::compare(&ip.pkg.version, b) {
                        std::cmp::Ordering::Less => '<',
                        std::cmp::Ordering::Equal => '=',
                        std::cmp::Ordering::Greater => '>',
                    },
                    b.clone(),
                ),
                None => ('?', String::new()),
            };
            if limit.as_ref().is_some_and(|l| !l.contains(sym)) {
                continue;
            }
            // apk's `%-40s%s %s %s`: the last field is the repository's tag (none here).
            rows.push(if verbosity <= 0 {
                ip.pkg.name.to_string()
            } else {
                format!("{:<40}{sym} {avail} ", ip.pkg.name_version())
            });
        }
        rows.sort();
        for r in rows {
            println!("{r}");
        }
        Ok(0)
    }
}
