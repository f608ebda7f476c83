//! `apk audit`.

use apk::audit::{self, AuditMode, AuditOptions};
use apk::context::Context;
use apk::protected::ProtectedPaths;

/// `apk audit [--backup|--system|--full] [--check-permissions] [--recursive] [PATH...]`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Audit configuration files only (the default)
    #[arg(long)]
    backup: bool,
    /// Audit system files (everything that is not configuration)
    #[arg(long)]
    system: bool,
    /// Audit everything
    #[arg(long)]
    full: bool,
    /// Also report mode and owner changes
    #[arg(long)]
    check_permissions: bool,
    /// Descend into directories no package owns
    #[arg(short = 'r', long)]
    recursive: bool,
    /// Only under these paths
    #[arg(value_name = "PATH")]
    paths: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, ctx: Context) -> super::Outcome {
        let db = ctx.db();
        let mode = if self.full {
            AuditMode::Full
        } else if self.system {
            AuditMode::System
        } else {
            AuditMode::Backup
        };
        let root = db.root.path.clone();
        let paths = self
            .paths
            .iter()
            .map(|p| {
                let pb = std::path::Path::new(p);
                let rel = pb.strip_prefix(&root).unwrap_or(pb);
                rel.to_string_lossy().trim_start_matches('/').to_string()
            })
            .collect();
        let opts = AuditOptions {
            mode,
            recursive: self.recursive,
            check_permissions: self.check_permissions,
            paths,
        };
        let rules = ProtectedPaths::load(&root);
        let entries = audit::audit(db, &rules, &opts).map_err(apk::Error::from)?;
        for e in entries {
            if ctx.out.verbosity < 1 {
                println!("{}", e.path);
            } else {
                println!("{} {}", e.status, e.path);
            }
        }
        Ok(0)
    }
}
