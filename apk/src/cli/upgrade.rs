//! `apk upgrade` (apk-upgrade(8)).

use apk::context::Context;
use apk::ops::{self, UpgradeOptions};

/// `apk upgrade [-a] [-l] [--ignore] [--prune] [--no-self-upgrade|--self-upgrade-only] [PACKAGE...]`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Prefer packages available from the repositories (also replaces or downgrades packages no
    /// repository has, and drops identity pins from the world)
    #[arg(short = 'a', long)]
    available: bool,
    /// Always choose the latest allowed version
    #[arg(short = 'l', long)]
    latest: bool,
    /// Upgrade everything except the named packages
    #[arg(long)]
    ignore: bool,
    /// Drop world entries that no repository provides
    #[arg(long)]
    prune: bool,
    /// Skip the preupgrade of apk-tools (and the --preupgrade-depends names)
    #[arg(long, visible_alias = "no-preupgrade")]
    no_self_upgrade: bool,
    /// Only preupgrade apk-tools (and the --preupgrade-depends names), nothing else
    #[arg(
        long,
        visible_alias = "preupgrade-only",
        conflicts_with = "no_self_upgrade"
    )]
    self_upgrade_only: bool,
    /// Also preupgrade DEP first (repeatable; apk-tools always is)
    #[arg(long, value_name = "DEP")]
    preupgrade_depends: Vec<String>,
    /// Only these packages (with --ignore: all but these)
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
            no_preupgrade: self.no_self_upgrade,
            preupgrade_only: self.self_upgrade_only,
            preupgrade_depends: self.preupgrade_depends,
        };
        Ok(ops::upgrade(&mut ctx, &self.packages, &o)?.errors)
    }
}
