//! `apk fix`.

use apk::context::Context;

/// `apk fix [-u] [PACKAGE...]`: reinstall packages (all broken ones when none are named).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Upgrade the packages while reinstalling
    #[arg(short = 'u', long)]
    upgrade: bool,
    /// Accepted for compatibility: files are always reinstalled with their metadata
    #[arg(short = 'x', long)]
    xattr: bool,
    /// Accepted for compatibility
    #[arg(short = 'r', long)]
    reinstall: bool,
    /// Package names
    #[arg(value_name = "PACKAGE")]
    packages: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, mut ctx: Context) -> super::Outcome {
        Ok(apk::ops::fix(&mut ctx, &self.packages, self.upgrade)?.errors)
    }
}
