//! `apk stats`.

use crate::context::Context;

/// `apk stats`: counts of the installed database and the available packages.
#[derive(clap::Args, Debug)]
pub struct Args {}

impl Args {
    /// Run the applet.
    pub fn run(self, ctx: Context) -> super::Outcome {
        let db = ctx.db();
        // The root directory counts, as in apk.
        let mut dirs: std::collections::HashSet<&str> = db
            .installed
            .iter()
            .flat_map(|p| p.dirs.iter().map(|d| d.path.as_str()))
            .collect();
        if !db.installed.is_empty() {
            dirs.insert("");
        }
        let files: usize = db.installed.iter().map(|p| p.file_count()).sum();
        let names: std::collections::HashSet<&str> = ctx
            .pool
            .packages
            .iter()
            .map(|p| p.pkg.name.as_str())
            .collect();
        println!("installed:");
        println!("  packages: {}", db.installed.len());
        println!("  dirs: {}", dirs.len());
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
