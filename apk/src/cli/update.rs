//! `apk update`: refresh the index of every remote repository now, then list the repositories
//! and count the packages (apk-tools v3 `app_update.c`).

use apk::context::Context;

/// `apk update`
#[derive(clap::Args, Debug)]
pub struct Args {}

impl Args {
    /// Run the applet (the session was opened with every remote index refreshed).
    pub fn run(self, ctx: Context) -> super::Outcome {
        let failed = ctx.repo_unavailable + ctx.repo_stale;
        if ctx.out.verbosity < 1 {
            return Ok(failed);
        }
        for r in &ctx.repos {
            if let Some(d) = &r.description {
                ctx.out
                    .msg(&format!("{d} [{}]", apk::http::url::display(&r.spec.url)));
            }
        }
        let head = if failed > 0 {
            format!(
                "{} unavailable, {} stale;",
                ctx.repo_unavailable, ctx.repo_stale
            )
        } else {
            "OK:".to_string()
        };
        ctx.out.msg(&format!(
            "{head} {} distinct packages available",
            ctx.pool.packages.len()
        ));
        Ok(failed)
    }
}
