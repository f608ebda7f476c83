//! `apk add`.

use apk::context::Context;
use apk::extract::Ownership;
use apk::ops::{self, AddOptions};

/// `apk add [-t NAME] [-u] [--latest] [--no-chown|--usermode] PACKAGE...`
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
    /// Do not change the owner or group of installed files (the database keeps the package's)
    #[arg(long)]
    no_chown: bool,
    /// Work without root privileges: no owner changes, only user.* extended attributes
    #[arg(long)]
    usermode: bool,
    /// Packages (name, name@tag, name>=version, or ./file.apk); none: install the world as it is
    #[arg(value_name = "PACKAGE")]
    packages: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, mut ctx: Context) -> super::Outcome {
        ctx.opts.ownership = if self.usermode {
            Ownership::User
        } else if self.no_chown {
            Ownership::NoChown
        } else {
            Ownership::Package
        };
        let o = AddOptions {
            upgrade: self.upgrade,
            latest: self.latest,
            virtual_pkg: self.virtual_pkg,
        };
        Ok(ops::add(&mut ctx, &self.packages, &o)?.errors)
    }
}
