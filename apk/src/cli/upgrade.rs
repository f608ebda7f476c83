//! `apk upgrade`.

use apk::context::Context;
use apk::ops::{self, UpgradeOptions};

/// `apk upgrade [-a] [--latest] [--ignore NAME] [--prune] [PACKAGE...]`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Prefer available packages: downgrade or replace packages that no repository has
    #[arg(short = 'a', long)]
    available: bool,
    /// Always choose the latest version
    #[arg(short = 'l', long)]
    latest: bool,
    /// Do not upgrade NAME
    #[arg(long, value_name = "NAME")]
    ignore: Vec<String>,
    /// Drop world entries that no repository provides
    #[arg(long)]
    prune: bool,
    /// Accepted for compatibility: there is no separate self-upgrade phase
    #[arg(long)]
    no_self_upgrade: bool,
    /// Only the named packages
    #[arg(value_name = "PACKAGE")]
    packages: Vec<String>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, mut ctx: Context) -> super::Outcome {
        let o = UpgradeOptions {
            available: self.available,
            latest: self.latest,
            ignore: self.ignore,
            prune: self.prune,
        };
        Ok(ops::upgrade(&mut ctx, &self.packages, &o)?.errors)
    }
}
