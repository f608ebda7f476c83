//! How an overlay is wrapped on the medium: plain gzip, age (ours), or Alpine's `openssl enc`
//! format (written only when configured explicitly, e.g. `DEFAULT_CIPHER=aes-256-cbc` from
//! Alpine's shipped lbu.conf; lbu/README.md, "Encryption"). Also opening an existing overlay
//! for status, diff and revert, decrypting by its file-name suffix.

use crate::config::Config;
use crate::password::{self, Password, Purpose};
use crate::{Error, IoResultExt};
use overlays::{AgeKey, Cipher, OverlayKind, Secret};
use std::path::Path;
use zeroize::Zeroizing;

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

    /// The wrapping an overlay file name says (`HOST.apkovl.tar.gz[.suffix]`).
    pub fn of_name(name: &str) -> Result<Wrap, Error> {
        match overlays::kind_of(name) {
            Some(OverlayKind::Plain) | None => Ok(Wrap::Plain),
            Some(OverlayKind::Age) => Ok(Wrap::Age),
            Some(OverlayKind::Legacy(c)) => Ok(Wrap::Legacy(c)),
            Some(OverlayKind::Unsupported(c)) => Err(overlays::Error::UnsupportedCipher(c).into()),
        }
    }

    /// The overlay kind of this wrapping.
    pub fn kind(&self) -> OverlayKind {
        match self {
            Wrap::Plain => OverlayKind::Plain,
            Wrap::Age => OverlayKind::Age,
            Wrap::Legacy(c) => OverlayKind::Legacy(*c),
        }
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
    pub fn password(&self, cfg: &Config, cli: Option<&str>) -> Result<Option<Password>, Error> {
        match self {
            Wrap::Plain => Ok(None),
            Wrap::Age if cfg.age_recipients.is_some() => Ok(None),
            _ => password::password(cfg, cli, Purpose::Encrypt).map(Some),
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
    password: &mut Option<Password>,
    cli: Option<&str>,
) -> Result<Vec<u8>, Error> {
    let unpack = |source| Error::Unpack {
        path: name.into(),
        source,
    };
    let kind = overlays::kind_of(&name.to_string_lossy()).unwrap_or(OverlayKind::Plain);
    match kind {
        OverlayKind::Plain => Ok(data.to_vec()),
        OverlayKind::Unsupported(c) => Err(overlays::Error::UnsupportedCipher(c).into()),
        OverlayKind::Age if !overlays::crypt::age_is_passphrase(data).map_err(unpack)? => {
            let f = cfg.age_identity.as_ref().ok_or_else(|| {
                Error::Password(format!(
                    "{}: encrypted to a key; set AGE_IDENTITY to read it",
                    name.display()
                ))
            })?;
            let text = Zeroizing::new(std::fs::read_to_string(f).at(f)?);
            overlays::decrypt(data, &OverlayKind::Age, &Secret::AgeIdentity(&text)).map_err(unpack)
        }
        kind => {
            if password.is_none() {
                *password = Some(password::password(cfg, cli, Purpose::Decrypt)?);
            }
            let p = password.as_deref().map(String::as_str).unwrap_or_default();
            overlays::decrypt(data, &kind, &Secret::Passphrase(p)).map_err(unpack)
        }
    }
}
