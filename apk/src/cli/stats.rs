//! `apk stats`.

use apk::context::Context;

/// `apk stats`: counts of the installed database and the available packages.
#[derive(clap::Args, Debug)]
pub struct Args {}

impl Args {
    /// Run the applet.
    pub fn run(self, ctx: Context) -> super::Outcome {
        let db = ctx.db();
        let (dirs, files) = db.counts();
        let names: std::collections::HashSet<&str> = ctx
            .pool
            .packages
            .iter()
            .map(|p| p.pkg.name.as_str())
            .collect();
        println!("installed:");
        println!("  packages: {}", db.installed.len());
        println!("  dirs: {dirs}");
        println!("  files: {files}");
        println!("  bytes: {}", db.installed_bytes());
        println!("  triggers: {}", db.triggers.len());
        println!("available:");
        println!("  names: {}", names.len());
        println!(
            "  packages: {}",
            ctx.pool
                .packages
                .iter()
                .filter(|p| !p.repos.is_empty())
                .count()
        );
        println!("repositories: {}", ctx.repos.len());
        Ok(0)
    }
}
