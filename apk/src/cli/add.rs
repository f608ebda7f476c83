//! `apk add`.

use apk::context::Context;
use apk::ops::{self, AddOptions};

/// `apk add [-t NAME] [-u] [--latest] PACKAGE...`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Create a virtual package NAME[=VERSION] depending on the arguments and add it instead
    #[arg(short = 't', long = "virtual", value_name = "NAME")]
    virtual_pkg: Option<String>,
    /// Prefer upgrading the named packages and their dependencies
    #[arg(short = 'u', long)]
    upgrade: bool,
    /// Always choose the latest allowed version of the named packages and their dependencies
    #[arg(short = 'l', long)]
    latest: bool,
    /// Packages (name, name@tag, name>=version, or ./file.apk); none: install the world as it is
    #[arg(value_name = "PACKAGE")]
    packages: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, mut ctx: Context) -> super::Outcome {
        let o = AddOptions {
            upgrade: self.upgrade,
            latest: self.latest,
            virtual_pkg: self.virtual_pkg,
        };
        Ok(ops::add(&mut ctx, &self.packages, &o)?.errors)
    }
}
