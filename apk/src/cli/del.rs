//! `apk del`.

use apk::context::Context;

/// `apk del [-r] PACKAGE...`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also remove the packages that depend on the named ones
    #[arg(short = 'r', long)]
    rdepends: bool,
    /// Package names
    #[arg(required = true, value_name = "PACKAGE")]
    packages: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, mut ctx: Context) -> super::Outcome {
        Ok(apk::ops::del(&mut ctx, &self.packages, self.rdepends)?.errors)
    }
}
