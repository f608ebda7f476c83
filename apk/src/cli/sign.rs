//! `apk sign`: sign indexes or packages in place (project applet).

use apk::output::Out;
use apk::trust::PrivateKey;
use std::path::{Path, PathBuf};

/// `apk sign -k KEY FILE...`: replaces the files' signatures with one by KEY, naming the public
/// key `basename(KEY).pub` (the name it must have in a keys directory, as abuild does).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Private key (RSA or ed25519, PEM)
    #[arg(short = 'k', long = "key", value_name = "KEY", required = true)]
    key: PathBuf,
    /// Files to sign
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// The public key name a signature by `key` carries.
pub fn key_name(key: &Path) -> String {
    let base = key
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{base}.pub")
}

impl Args {
    /// Run the applet.
    pub fn run(self, out: Out) -> super::Outcome {
        let key = PrivateKey::load(&self.key)?;
        let name = key_name(&self.key);
        let mut errors = 0;
        for f in &self.files {
            let res = std::fs::read(f)
                .map_err(|e| e.to_string())
                .and_then(|buf| apk::archive::resign(&buf, &key, &name).map_err(|e| e.to_string()))
                .and_then(|signed| {
                    apk::root::atomic_write(f, &signed, 0o644).map_err(|e| e.to_string())
                });
            match res {
                Ok(()) => out.debug(&format!("{}: signed with {name}", f.display())),
                Err(e) => {
                    out.error(&format!("{}: {e}", f.display()));
                    errors += 1;
                }
            }
        }
        Ok(errors)
    }
}
