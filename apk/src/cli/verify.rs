//! `apk verify`: check signatures and integrity of package (or index) files.

use apk::archive::{self, Mode};
use apk::context::Context;
use std::path::PathBuf;

/// `apk verify FILE...`: prints `FILE: OK` or `FILE: <error>`; the exit status is the number of
/// failures.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Package or index files
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

impl Args {
    /// Run the applet.
    pub fn run(self, ctx: Context) -> super::Outcome {
        let mut failures = 0;
        for f in &self.files {
            let res = std::fs::read(f).map_err(|e| e.to_string()).and_then(|buf| {
                let mode = Mode::Verify {
                    keys: &ctx.keys,
                    allow_untrusted: ctx.opts.allow_untrusted,
                };
                match archive::open_package(&buf, &mode) {
                    Ok(_) => Ok(()),
                    // An index is recognised by its content and verified as one.
                    Err(archive::ArchiveError::Format(m)) if m.contains("data entry") => {
                        archive::open_index(&buf, &ctx.keys, ctx.opts.allow_untrusted)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                }
            });
            match res {
                Ok(()) => println!("{}: OK", f.display()),
                Err(e) => {
                    println!("{}: {e}", f.display());
                    failures += 1;
                }
            }
        }
        Ok(failures)
    }
}
