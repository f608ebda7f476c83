//! The two keys a profile build signs with: the medium key (the boot repository's index and the
//! modloop; RSA so that the stock apk-tools of the booted system verifies it too) and the overlay
//! key (ed25519, lbu's statements). Given as `--sign-key` and `--ovl-key`, or made once by
//! `--generate-keys DIR` as `DIR/medium.rsa` and `DIR/overlay.key` (kept and reused). Only their
//! public halves enter the image (the initramfs's key directories); the private files are checked
//! never to be among what the medium carries (`secrets`).

use std::path::{Path, PathBuf};

use apk::trust::PrivateKey;

use crate::error::Error;

/// The medium key's file name under `--generate-keys DIR`.
pub const MEDIUM_KEY: &str = "medium.rsa";
/// The overlay key's file name under `--generate-keys DIR`.
pub const OVERLAY_KEY: &str = "overlay.key";

/// The private keys of a build.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    /// Signs the boot repository's index and the modloop (`--sign-key`).
    pub medium: Option<PathBuf>,
    /// Signs the overlay (`--ovl-key`).
    pub overlay: Option<PathBuf>,
}

/// Makes `DIR/medium.rsa` (RSA 2048) and `DIR/overlay.key` (ed25519) with their `.pub` halves
/// when they are not there yet (private 0600, public 0644, atomic writes); returns the keys and
/// one line per key saying whether it was made or reused.
pub fn generate_keys(dir: &Path) -> Result<(Keys, Vec<String>), Error> {
    let bad = |reason: String| Error::Input {
        option: "--generate-keys",
        path: dir.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
    let mut notes = Vec::new();
    let mut made = |name: &str, rsa: bool| -> Result<PathBuf, Error> {
        let path = dir.join(name);
        let public = dir.join(format!("{name}.pub"));
        if path.exists() && public.exists() {
            notes.push(format!("using the key {} (made earlier)", path.display()));
            return Ok(path);
        }
        let key = if rsa {
            PrivateKey::generate_rsa(2048).map_err(|e| bad(e.to_string()))?
        } else {
            PrivateKey::generate_ed25519()
        };
        let pem = key.to_pem().map_err(|e| bad(e.to_string()))?;
        apk::root::atomic_write(&path, pem.as_bytes(), 0o600)
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
        apk::root::atomic_write(&public, key.public().to_pem().as_bytes(), 0o644)
            .map_err(|e| bad(format!("{}: {e}", public.display())))?;
        notes.push(format!(
            "generated the key {} and {} (keep the private one off the medium and safe)",
            path.display(),
            public.display()
        ));
        Ok(path)
    };
    let medium = made(MEDIUM_KEY, true)?;
    let overlay = made(OVERLAY_KEY, false)?;
    Ok((
        Keys {
            medium: Some(medium),
            overlay: Some(overlay),
        },
        notes,
    ))
}

/// The error for a missing key: which option, and the commands that make both keys.
pub(crate) fn missing(option: &'static str, what: &str) -> Error {
    Error::setting(
        option,
        format!(
            "required to sign {what}; make the keys once with `apk keygen --rsa 2048 -o KEYS/{MEDIUM_KEY}` and `apk keygen -o KEYS/{OVERLAY_KEY}` and pass --sign-key KEYS/{MEDIUM_KEY} --ovl-key KEYS/{OVERLAY_KEY}, or let mkimage make them with --generate-keys KEYS"
        ),
    )
}

/// Loads a private key, naming the option in the error.
pub(crate) fn load(path: &Path, option: &'static str) -> Result<PrivateKey, Error> {
    PrivateKey::load(path).map_err(|e| Error::Input {
        option,
        path: path.to_path_buf(),
        reason: match e {
            apk::trust::KeyError::Io { source, .. } => source.to_string(),
            _ => "not a PEM RSA or ed25519 private key".into(),
        },
    })
}

/// The public half's file name as signatures name it: `basename(KEY).pub`.
pub(crate) fn public_name(path: &Path) -> String {
    format!(
        "{}.pub",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_are_generated_once_and_reused() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("keys");
        let (keys, notes) = generate_keys(&dir).unwrap();
        assert_eq!(keys.medium.as_deref(), Some(dir.join(MEDIUM_KEY).as_path()));
        assert!(notes[0].starts_with("generated the key"), "{notes:?}");
        let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(MEDIUM_KEY), 0o600);
        assert_eq!(mode("medium.rsa.pub"), 0o644);
        assert_eq!(mode(OVERLAY_KEY), 0o600);
        let medium = std::fs::read(dir.join(MEDIUM_KEY)).unwrap();
        assert!(load(&dir.join(OVERLAY_KEY), "--ovl-key").is_ok());
        let (_, notes) = generate_keys(&dir).unwrap();
        assert!(
            notes.iter().all(|n| n.contains("made earlier")),
            "{notes:?}"
        );
        assert_eq!(std::fs::read(dir.join(MEDIUM_KEY)).unwrap(), medium);
        assert_eq!(public_name(&dir.join(MEDIUM_KEY)), "medium.rsa.pub");
        let e = missing("--sign-key", "the boot repository").to_string();
        assert!(e.starts_with("--sign-key: required to sign the boot repository; make the keys once with `apk keygen --rsa 2048 -o KEYS/medium.rsa`"), "{e}");
    }
}
