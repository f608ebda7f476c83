//! `apk keygen`: make a signing key pair (project applet).

use super::CliError;
use apk::output::Out;
use apk::trust::PrivateKey;
use apk::Error;
use std::path::PathBuf;

/// `apk keygen [--rsa BITS] -o KEY`: writes KEY (private, 0600) and KEY.pub; ed25519 by default.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Make an RSA key of BITS bits instead of ed25519 (Alpine's apk-tools can verify RSA only)
    #[arg(long, value_name = "BITS")]
    rsa: Option<usize>,
    /// Private key file to write (the public key goes to FILE.pub)
    #[arg(short = 'o', long, value_name = "FILE", required = true)]
    output: PathBuf,
}

impl Args {
    /// Run the applet.
    pub fn run(self, out: Out) -> super::Outcome {
        let key = match self.rsa {
            Some(bits) if !(1024..=8192).contains(&bits) => return Err(CliError::RsaBits(bits)),
            Some(bits) => PrivateKey::generate_rsa(bits)?,
            None => PrivateKey::generate_ed25519(),
        };
        let pem = key.to_pem()?;
        let pubpath = PathBuf::from(format!("{}.pub", self.output.display()));
        apk::root::atomic_write(&self.output, pem.as_bytes(), 0o600).map_err(|source| {
            Error::Io {
                path: self.output.clone(),
                source,
            }
        })?;
        apk::root::atomic_write(&pubpath, key.public().to_pem().as_bytes(), 0o644).map_err(
            |source| Error::Io {
                path: pubpath.clone(),
                source,
            },
        )?;
        out.msg(&format!(
            "Wrote {} and {}",
            self.output.display(),
            pubpath.display()
        ));
        Ok(0)
    }
}
