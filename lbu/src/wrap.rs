//! How an overlay is wrapped on the medium: plain gzip, age (ours), or Alpine's `openssl enc`
//! format (written only when configured explicitly, e.g. `DEFAULT_CIPHER=aes-256-cbc` from
//! Alpine's shipped lbu.conf; lbu.md §10.2 #12). Also opening an existing overlay for
//! status/diff, decrypting by its file-name suffix.

use crate::config::Config;
use crate::secret::{self, Purpose};
use crate::{Error, IoResultExt};
use overlays::{AgeKey, Cipher, OverlayKind, Secret};
use std::path::Path;

/// The wrapping of a new overlay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wrap {
    /// `.apkovl.tar.gz`
    Plain,
    /// `.apkovl.tar.gz.age`
    Age,
    /// `.apkovl.tar.gz.<cipher>`
    Legacy(Cipher),
}

impl Wrap {
    /// From `ENCRYPTION`, or `DEFAULT_CIPHER` when `-e` was given and `ENCRYPTION` is empty.
    pub fn resolve(cfg: &Config, encrypt: bool) -> Result<Wrap, Error> {
        let name = match (&cfg.encryption, encrypt) {
            (Some(c), _) => c.clone(),
            (None, true) => cfg.default_cipher.clone(),
            (None, false) => return Ok(Wrap::Plain),
        };
        if name == "age" {
            return Ok(Wrap::Age);
        }
        Cipher::from_name(&name)
            .map(Wrap::Legacy)
            .ok_or(Error::Overlay(overlays::Error::UnsupportedCipher(name)))
    }

    /// File-name suffix after `.apkovl.tar.gz`.
    pub fn suffix(&self) -> String {
        match self {
            Wrap::Plain => String::new(),
            Wrap::Age => ".age".into(),
            Wrap::Legacy(c) => format!(".{}", c.name()),
        }
    }

    /// The secret needed to encrypt (`None`: plain, or age to recipients).
    pub fn password(&self, cfg: &Config, cli: Option<&str>) -> Result<Option<String>, Error> {
        match self {
            Wrap::Plain => Ok(None),
            Wrap::Age if cfg.age_recipients.is_some() => Ok(None),
            _ => secret::password(cfg, cli, Purpose::Encrypt).map(Some),
        }
    }

    /// Encrypt gzip bytes.
    pub fn seal(&self, cfg: &Config, gz: &[u8], password: Option<&str>) -> Result<Vec<u8>, Error> {
        Ok(match self {
            Wrap::Plain => gz.to_vec(),
            Wrap::Legacy(c) => overlays::encrypt_legacy(gz, *c, password.unwrap_or_default())?,
            Wrap::Age => match &cfg.age_recipients {
                Some(f) => {
                    let text = std::fs::read_to_string(f).at(f)?;
                    let list: Vec<String> = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_string)
                        .collect();
                    overlays::encrypt_age(gz, &AgeKey::Recipients(&list))?
                }
                None => overlays::encrypt_age(
                    gz,
                    &AgeKey::Passphrase {
                        passphrase: password.unwrap_or_default(),
                        work_factor: None,
                    },
                )?,
            },
        })
    }
}

/// Decrypt overlay bytes named `name` (plain ones pass through). `password` is asked only when
/// needed; an age file to recipients is opened with `AGE_IDENTITY`.
pub fn open_bytes(
    cfg: &Config,
    name: &Path,
    data: &[u8],
    password: &mut Option<String>,
    cli: Option<&str>,
) -> Result<Vec<u8>, Error> {
    let kind = overlays::kind_of(&name.to_string_lossy()).unwrap_or(OverlayKind::Plain);
    match kind {
        OverlayKind::Plain => Ok(data.to_vec()),
        OverlayKind::Unsupported(c) => Err(overlays::Error::UnsupportedCipher(c).into()),
        OverlayKind::Age if is_age_to_recipients(data) => {
            let f = cfg.age_identity.as_ref().ok_or_else(|| {
                Error::Password(format!(
                    "{}: encrypted to a key; set AGE_IDENTITY to read it",
                    name.display()
                ))
            })?;
            let text = std::fs::read_to_string(f).at(f)?;
            Ok(overlays::decrypt(
                data,
                &OverlayKind::Age,
                &Secret::AgeIdentity(&text),
            )?)
        }
        kind => {
            if password.is_none() {
                *password = Some(secret::password(cfg, cli, Purpose::Decrypt)?);
            }
            let p = password.as_deref().unwrap_or_default();
            overlays::decrypt(data, &kind, &Secret::Passphrase(p)).map_err(|source| Error::Unpack {
                path: name.into(),
                source,
            })
        }
    }
}

/// Whether an age file's first stanza is not scrypt (it is then encrypted to recipients).
fn is_age_to_recipients(data: &[u8]) -> bool {
    let head = &data[..data.len().min(200)];
    let text = String::from_utf8_lossy(head);
    text.lines()
        .nth(1)
        .is_some_and(|l| l.starts_with("-> ") && !l.starts_with("-> scrypt "))
}
