//! `apk del` (apk-del(8)).

use apk::context::Context;
use apk::ops::{self, DelOptions};

/// `apk del [-r] PACKAGE...`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also delete the installed packages that depend on the named ones, recursively
    #[arg(short = 'r', long)]
    rdepends: bool,
    /// Package names
    #[arg(required = true, value_name = "PACKAGE")]
    packages: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, mut ctx: Context) -> super::Outcome {
        let o = DelOptions {
            rdepends: self.rdepends,
        };
        Ok(ops::del(&mut ctx, &self.packages, &o)?.errors)
    }
}
