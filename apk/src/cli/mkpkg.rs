//! `apk mkpkg`: build a v2 package from a directory and metadata (project applet).

use super::CliError;
use apk::mkpkg::{self, Recipe};
use apk::output::Out;
use apk::trust::PrivateKey;
use apk::Error;
use std::path::PathBuf;

/// `apk mkpkg -o OUT -I KEY=VALUE... [--script TYPE=FILE]... [-k KEY] [DIR]`
///
/// Reproducible with SOURCE_DATE_EPOCH: entries sorted, times clamped, owners root.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write the package to FILE
    #[arg(short = 'o', long, value_name = "FILE", required = true)]
    output: PathBuf,
    /// .PKGINFO field, e.g. pkgname=lbu, pkgver=1.0-r0, depend=musl, replaces=alpine-conf (repeatable)
    #[arg(short = 'I', long = "info", value_name = "KEY=VALUE")]
    info: Vec<String>,
    /// Package script, e.g. post-install=./post-install.sh (repeatable)
    #[arg(long = "script", value_name = "TYPE=FILE")]
    scripts: Vec<String>,
    /// Sign with this private key (the signature names basename(KEY).pub)
    #[arg(short = 'k', long = "sign-key", value_name = "KEY")]
    key: Option<PathBuf>,
    /// Payload directory (omit for a meta package)
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
}

fn kv(s: &str) -> Result<(String, String), CliError> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| CliError::KeyValue(s.to_string()))
}

impl Args {
    /// Run the applet.
    pub fn run(self, out: Out) -> super::Outcome {
        let info = self
            .info
            .iter()
            .map(|s| kv(s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut scripts = Vec::new();
        for s in &self.scripts {
            let (t, f) = kv(s)?;
            let body = std::fs::read(&f).map_err(|source| Error::Io {
                path: f.into(),
                source,
            })?;
            scripts.push((t, body));
        }
        if let Some(d) = &self.dir {
            if !d.is_dir() {
                return Err(Error::NotADirectory(d.clone()).into());
            }
        }
        let recipe = Recipe {
            info,
            scripts,
            dir: self.dir.clone(),
            epoch: None,
        };
        let key = match &self.key {
            Some(k) => Some((PrivateKey::load(k)?, super::sign::key_name(k))),
            None => None,
        };
        let buf = mkpkg::build(&recipe, key.as_ref().map(|(k, n)| (k, n.as_str())))
            .map_err(Error::from)?;
        apk::root::atomic_write(&self.output, &buf, 0o644).map_err(|source| Error::Io {
            path: self.output.clone(),
            source,
        })?;
        out.debug(&format!("wrote {}", self.output.display()));
        Ok(0)
    }
}
