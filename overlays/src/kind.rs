//! Overlay file names: which files are apkovls, whose they are and how they are wrapped. The boot
//! side considers any `*.apkovl.tar.gz*` at the top of a medium (overlays/README.md, "File
//! names"); the text after the last `.` decides how to open it (`gz` plain, `age` ours, anything
//! else an `openssl enc` cipher), and the text before `.apkovl.` is the host the overlay is for.
//! Detached signatures (`.sig`) share the prefix and are not overlays.

use crate::crypt::Cipher;

/// How an overlay file is wrapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OverlayKind {
    /// `HOST.apkovl.tar.gz`: plain gzip tar.
    Plain,
    /// `HOST.apkovl.tar.gz.age`: age (passphrase or recipient key).
    Age,
    /// `HOST.apkovl.tar.gz.<cipher>`: Alpine's `openssl enc` format with a cipher we can read.
    Legacy(Cipher),
    /// `HOST.apkovl.tar.gz.<cipher>` with a cipher we cannot read (the name is kept for the message).
    Unsupported(String),
}

/// Signature file suffix (see [`crate::sign`]).
pub const SIG_SUFFIX: &str = ".sig";

/// The kind of an overlay from its file name (a path is fine: only the last component counts);
/// `None` when the name is not an overlay (including `.sig` files and backups
/// `HOST.YYYYmmddHHMMSS.tar.gz`, which do not contain `.apkovl.`).
pub fn kind_of(name: &str) -> Option<OverlayKind> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let pos = base.find(".apkovl.tar.gz")?;
    let rest = &base[pos + ".apkovl.tar.gz".len()..];
    if rest.is_empty() {
        return Some(OverlayKind::Plain);
    }
    let suffix = rest.strip_prefix('.')?;
    if suffix.is_empty() || suffix.contains('.') || suffix == "sig" {
        return None;
    }
    Some(match suffix {
        "age" => OverlayKind::Age,
        s => match Cipher::from_name(s) {
            Some(c) => OverlayKind::Legacy(c),
            None => OverlayKind::Unsupported(s.to_string()),
        },
    })
}

/// The host an overlay file is for: the stem `HOST` of `HOST.apkovl.tar.gz[.suffix]` (a path is
/// fine: only the last component counts); `None` when the name is not an overlay or the stem is
/// empty.
pub fn host_of(name: &str) -> Option<&str> {
    kind_of(name)?;
    let base = name.rsplit('/').next().unwrap_or(name);
    let host = &base[..base.find(".apkovl.tar.gz")?];
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            kind_of("/media/usb/host.apkovl.tar.gz"),
            Some(OverlayKind::Plain)
        );
        assert_eq!(kind_of("host.apkovl.tar.gz.age"), Some(OverlayKind::Age));
        assert_eq!(
            kind_of("host.apkovl.tar.gz.aes-256-cbc"),
            Some(OverlayKind::Legacy(Cipher::Aes256Cbc))
        );
        assert_eq!(
            kind_of("host.apkovl.tar.gz.bf-cbc"),
            Some(OverlayKind::Unsupported("bf-cbc".into()))
        );
        assert_eq!(kind_of("host.apkovl.tar.gz.sig"), None);
        assert_eq!(kind_of("host.apkovl.tar.gz.age.sig"), None);
        assert_eq!(kind_of("host.20261122012641.tar.gz"), None);
        assert_eq!(kind_of("host.apkovl.tar.gzip"), None);
        assert_eq!(kind_of("notes.txt"), None);
        assert_eq!(kind_of("host.apkovl.generation"), None);
    }

    #[test]
    fn hosts() {
        assert_eq!(
            host_of("/media/usb/fw1.lan.apkovl.tar.gz.age"),
            Some("fw1.lan")
        );
        assert_eq!(
            host_of("52-54-00-12-34-56.apkovl.tar.gz"),
            Some("52-54-00-12-34-56")
        );
        assert_eq!(host_of(".apkovl.tar.gz"), None);
        assert_eq!(host_of("fw1.apkovl.tar.gz.sig"), None);
        assert_eq!(host_of("fw1.20261122012641.tar.gz"), None);
    }
}
