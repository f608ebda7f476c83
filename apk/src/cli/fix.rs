//! `apk fix` (apk-fix(8)).

use apk::context::Context;
use apk::ops::{self, FixOptions};

/// `apk fix [-d] [-r] [-u] [-x] [--directory-permissions] [PACKAGE...]`: repair packages (all broken ones when none are named).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Fix the dependencies of the packages too
    #[arg(short = 'd', long)]
    depends: bool,
    /// Reinstall the packages (the default)
    #[arg(short = 'r', long)]
    reinstall: bool,
    /// Upgrade the packages when a newer version is available (without -r: only upgrade)
    #[arg(short = 'u', long)]
    upgrade: bool,
    /// Without names: also fix packages whose extended attributes are marked broken
    #[arg(short = 'x', long)]
    xattr: bool,
    /// Reset the owner and mode of every installed directory to what the database records
    #[arg(long)]
    directory_permissions: bool,
    /// Package names
    #[arg(value_name = "PACKAGE")]
    packages: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, mut ctx: Context) -> super::Outcome {
        let o = FixOptions {
            depends: self.depends,
            reinstall: self.reinstall,
            upgrade: self.upgrade,
            xattr: self.xattr,
            directory_permissions: self.directory_permissions,
        };
        Ok(ops::fix(&mut ctx, &self.packages, &o)?.errors)
    }
}
