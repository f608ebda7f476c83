//! `lbu.conf` and the environment, read as data (lbu/README.md, "Configuration").
//!
//! Alpine sources `$ROOT/etc/lbu/lbu.conf` as shell after setting defaults, so a value in the file
//! beats the same variable from the environment, and the command line beats both. We keep that
//! precedence but never execute anything: `KEY=VALUE` lines with optional `export`, single or
//! double quotes, `#` comments and `$VAR`/`${VAR}` references to variables set earlier (the
//! shipped example is `ENCRYPTION=$DEFAULT_CIPHER`). Only the documented variables are read from
//! the environment; internal flags never leak in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where lbu.conf lives under the root.
pub const CONF: &str = "etc/lbu/lbu.conf";

/// Variables taken from the environment.
pub const ENV_VARS: &[&str] = &[
    "LBU_MEDIA",
    "LBU_BACKUPDIR",
    "BACKUP_LIMIT",
    "ENCRYPTION",
    "PASSWORD",
    "PASSWORD_FILE",
    "SIGNING_KEY",
    "AGE_RECIPIENTS",
    "AGE_IDENTITY",
];

/// The effective configuration.
#[derive(Clone)]
pub struct Config {
    /// System whose files are archived (`--root`, else `$ROOT`, else `/`).
    pub root: PathBuf,
    /// Name of a directory under `/media`.
    pub media: Option<String>,
    /// Plain directory used instead of media.
    pub backupdir: Option<PathBuf>,
    /// Old overlays kept per host (0 keeps none, Alpine's default).
    pub backup_limit: usize,
    /// Cipher when encrypting (`age` or an `openssl enc` name).
    pub encryption: Option<String>,
    /// Cipher used by `-e` when `ENCRYPTION` is empty (ours: `age`; Alpine's lbu.conf ships
    /// `aes-256-cbc`, which then counts as an explicit request for the legacy format).
    pub default_cipher: String,
    /// Encryption password (discouraged: prefer `PASSWORD_FILE` or the terminal).
    pub password: Option<crate::password::Password>,
    /// Root-only file holding the password.
    pub password_file: Option<PathBuf>,
    /// ed25519 private key (PEM) that signs overlays.
    pub signing_key: Option<PathBuf>,
    /// File of age recipients (`age1...`): encrypt without a passphrase on the box.
    pub age_recipients: Option<PathBuf>,
    /// age identity file used to read overlays encrypted to recipients (status, diff, revert).
    pub age_identity: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH` from the environment: the commit time `package` signs (reproducible
    /// builds); `None` signs the current time.
    pub source_date_epoch: Option<u64>,
}

/// Parse `lbu.conf` text into variables, in order, expanding references.
pub fn parse(text: &str, mut vars: HashMap<String, String>) -> HashMap<String, String> {
    for raw in text.lines() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, rest)) = line.split_once('=') else {
            continue;
        };
        if key.is_empty()
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || key.starts_with(|c: char| c.is_ascii_digit())
        {
            continue;
        }
        let value = value(rest, &vars);
        vars.insert(key.to_string(), value);
    }
    vars
}

fn value(rest: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    out.push(d);
                }
            }
            '"' => {
                let mut inner = String::new();
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                inner.push(e);
                            }
                        }
                        _ => inner.push(d),
                    }
                }
                out.push_str(&expand(&inner, vars));
            }
            c if c.is_whitespace() => break,
            '$' => {
                let name = var_name(&mut chars);
                out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
            }
            '\\' => {
                if let Some(e) = chars.next() {
                    out.push(e);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Expansion inside double quotes: `$VAR` and `${VAR}` only.
fn expand(s: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let name = var_name(&mut chars);
        if name.is_empty() {
            out.push('$');
        } else {
            out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
        }
    }
    out
}

fn var_name(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut name = String::new();
    if chars.peek() == Some(&'{') {
        chars.next();
        for d in chars.by_ref() {
            if d == '}' {
                break;
            }
            name.push(d);
        }
    } else {
        while let Some(&d) = chars.peek() {
            if d.is_ascii_alphanumeric() || d == '_' {
                name.push(d);
                chars.next();
            } else {
                break;
            }
        }
    }
    name
}

fn nonempty(v: Option<&String>) -> Option<String> {
    v.filter(|s| !s.is_empty()).cloned()
}

impl Config {
    /// The one place precedence lives: defaults, then the environment, then `lbu.conf` (read
    /// under `root`), then the command line (`media`, applied by the caller).
    pub fn resolve(root: &Path, env: &HashMap<String, String>, conf_text: Option<&str>) -> Config {
        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert("DEFAULT_CIPHER".into(), "age".into());
        for k in ENV_VARS {
            if let Some(v) = env.get(*k) {
                vars.insert(k.to_string(), v.clone());
            }
        }
        if let Some(t) = conf_text {
            vars = parse(t, vars);
        }
        let path = |k: &str| nonempty(vars.get(k)).map(PathBuf::from);
        Config {
            root: root.to_path_buf(),
            media: nonempty(vars.get("LBU_MEDIA")),
            backupdir: path("LBU_BACKUPDIR"),
            // Non-numeric counts as 0, as upstream's arithmetic does.
            backup_limit: vars
                .get("BACKUP_LIMIT")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            encryption: nonempty(vars.get("ENCRYPTION")),
            default_cipher: nonempty(vars.get("DEFAULT_CIPHER")).unwrap_or_else(|| "age".into()),
            password: nonempty(vars.get("PASSWORD")).map(zeroize::Zeroizing::new),
            password_file: path("PASSWORD_FILE"),
            signing_key: path("SIGNING_KEY"),
            age_recipients: path("AGE_RECIPIENTS"),
            age_identity: path("AGE_IDENTITY"),
            source_date_epoch: env
                .get("SOURCE_DATE_EPOCH")
                .and_then(|v| v.trim().parse().ok()),
        }
    }

    /// Read `lbu.conf` under `root` (missing is fine) and resolve.
    pub fn load(root: &Path, env: &HashMap<String, String>) -> Config {
        let text = std::fs::read_to_string(root.join(CONF)).ok();
        Self::resolve(root, env, text.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_is_data_and_wins_over_env() {
        let env: HashMap<String, String> = [
            ("LBU_MEDIA", "usb"),
            ("BACKUP_LIMIT", "5"),
            ("DRYRUN", "1"),
            ("DEFAULT_CIPHER", "bf"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let conf = "# comment\nDEFAULT_CIPHER=aes-256-cbc\nexport ENCRYPTION=$DEFAULT_CIPHER\nLBU_MEDIA='my disk'\nBACKUP_LIMIT=x3\nLBU_BACKUPDIR=\"/root/${LBU_MEDIA}s\" # trailing\nrm -rf /\n$(reboot)\n";
        let c = Config::resolve(Path::new("/r"), &env, Some(conf));
        assert_eq!(c.media.as_deref(), Some("my disk"));
        assert_eq!(c.encryption.as_deref(), Some("aes-256-cbc"));
        assert_eq!(c.default_cipher, "aes-256-cbc");
        assert_eq!(c.backup_limit, 0);
        assert_eq!(c.backupdir, Some(PathBuf::from("/root/my disks")));
        let c = Config::resolve(Path::new("/r"), &env, None);
        assert_eq!(
            (
                c.media.as_deref(),
                c.backup_limit,
                c.default_cipher.as_str()
            ),
            (Some("usb"), 5, "age")
        );
    }
}
