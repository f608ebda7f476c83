//! The install list: `pkgs=`, the overlay's world, and what Alpine appends (docs/boot.md,
//! "Packages"), with world tokens checked against apk's dependency syntax
//! (`[!]name[@tag][<op>version]`) so that one bad token is reported and skipped: apk refuses a
//! whole world with one bad token, which would leave an empty root.
use crate::cmdline::BootConfig;

/// A world or `pkgs=` token that was left out, with where it came from and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadToken {
    /// `etc/apk/world` or `pkgs=`.
    pub source: String,
    /// The token as written.
    pub token: String,
    /// Why it is invalid.
    pub reason: &'static str,
}

impl std::fmt::Display for BadToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: '{}' is not a valid world dependency ({}), format is name(@tag)([<>~=]version); skipped",
            self.source, self.token, self.reason
        )
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+._-,:/[]".contains(c)
}

/// Checks `[!]name[@tag][<op>version]`: a name of letters, digits and `+._-,:/[]`, an optional
/// `@tag`, an optional operator (`<`, `<=`, `=`, `>=`, `>`, `~`, `=~`, `~=`, or `><` with a
/// checksum) and a version starting with a digit.
pub fn check_world_token(token: &str) -> Result<(), &'static str> {
    let t = token.strip_prefix('!').unwrap_or(token);
    let name_len = t.find(|c: char| !is_name_char(c)).unwrap_or(t.len());
    let (name, mut rest) = t.split_at(name_len);
    if name.is_empty() {
        return Err("missing package name");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '/') {
        return Err("name must start with a letter or digit");
    }
    if let Some(r) = rest.strip_prefix('@') {
        let tag_len = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
            .unwrap_or(r.len());
        if tag_len == 0 {
            return Err("empty @tag");
        }
        rest = &r[tag_len..];
    }
    if rest.is_empty() {
        return Ok(());
    }
    let op_len = rest
        .find(|c: char| !"<>=~".contains(c))
        .unwrap_or(rest.len());
    let (op, version) = rest.split_at(op_len);
    if op.is_empty() {
        return Err("unexpected character");
    }
    if !["<", "<=", "=", ">=", ">", "~", "=~", "~=", "><"].contains(&op) {
        return Err("unknown version operator");
    }
    if version.is_empty() {
        return Err("missing version");
    }
    let ok = if op == "><" {
        version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
    } else {
        version.starts_with(|c: char| c.is_ascii_digit())
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-~+".contains(c))
    };
    if ok {
        Ok(())
    } else {
        Err("invalid version")
    }
}

/// Splits world text (space/newline separated) into valid tokens and rejected ones.
pub fn parse_world(text: &str, source: &str) -> (Vec<String>, Vec<BadToken>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for tok in text.split_whitespace() {
        match check_world_token(tok) {
            Ok(()) => good.push(tok.to_string()),
            Err(reason) => bad.push(BadToken {
                source: source.to_string(),
                token: tok.to_string(),
                reason,
            }),
        }
    }
    (good, bad)
}

/// The package list and what was left out of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackagePlan {
    /// In Alpine's order, duplicates removed (first occurrence kept).
    pub packages: Vec<String>,
    /// Invalid tokens, reported loudly by the executor.
    pub rejected: Vec<BadToken>,
}

/// Inputs to the package list besides the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackageInputs<'a> {
    /// The overlay's `etc/apk/world`, if an overlay provided one.
    pub world: Option<&'a str>,
    /// Whether default services apply: `openssh` comes with `ssh_key=` only then.
    pub default_services: bool,
    /// Whether modloop verification keys are embedded: adds `openssl`.
    pub modloop_keys: bool,
}

/// The install list: `pkgs=`, the overlay's world, `openssh` (ssh_key, default services),
/// `alpine-base` (always), `openssl` (modloop keys). Bad tokens are left out and reported;
/// one bad token must not leave the machine with an empty root.
pub fn package_list(cfg: &BootConfig, inputs: PackageInputs<'_>) -> PackagePlan {
    let mut plan = PackagePlan::default();
    let (pkgs, bad) = parse_world(&cfg.pkgs.join(" "), "pkgs=");
    plan.rejected.extend(bad);
    let mut list = pkgs;
    if let Some(world) = inputs.world {
        let (w, bad) = parse_world(world, "etc/apk/world");
        plan.rejected.extend(bad);
        list.extend(w);
    }
    if cfg.ssh_key.is_some() && inputs.default_services {
        list.push("openssh".into());
    }
    list.push("alpine-base".into());
    if inputs.modloop_keys {
        list.push("openssl".into());
    }
    for p in list {
        if !plan.packages.contains(&p) {
            plan.packages.push(p);
        }
    }
    plan
}

/// Whether an initramfs file name is a modloop verification key
/// (`*modloop*.SIGN.RSA.*.pub`, Alpine's name).
pub fn is_modloop_key(name: &str) -> bool {
    apk::fnmatch::fnmatch_noflags("*modloop*.SIGN.RSA.*.pub", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_tokens() {
        for good in [
            "alpine-base",
            "busybox-openrc",
            "!dropbear",
            "openssh>=9.0",
            "vim=9.1.0-r0",
            "linux-lts~6.6",
            "py3-foo@testing",
            "foo@edge<2",
            "so:libc.musl-x86_64.so.1",
            "cmd:apk",
            "/bin/sh",
            "libglvnd><Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8=",
        ] {
            assert_eq!(check_world_token(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("foo=", "missing version"),
            ("=1.0", "missing package name"),
            ("foo$bar", "unexpected character"),
            ("foo@", "empty @tag"),
            ("foo>>1", "unknown version operator"),
            ("foo>=abc", "invalid version"),
            ("-foo", "name must start with a letter or digit"),
            ("!", "missing package name"),
        ] {
            assert_eq!(check_world_token(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn package_order_is_alpines() {
        let cfg = BootConfig::from_cmdline(r#"pkgs=vim,htop ssh_key="ssh-ed25519 AAAA me@x""#);
        let plan = package_list(
            &cfg,
            PackageInputs {
                world: Some("alpine-base\nchrony iptables\n"),
                default_services: true,
                modloop_keys: true,
            },
        );
        assert_eq!(
            plan.packages,
            vec![
                "vim",
                "htop",
                "alpine-base",
                "chrony",
                "iptables",
                "openssh",
                "openssl"
            ]
        );
        assert!(plan.rejected.is_empty());
    }

    #[test]
    fn no_pkgs_no_overlay_is_alpine_base_only() {
        let plan = package_list(&BootConfig::default(), PackageInputs::default());
        assert_eq!(plan.packages, vec!["alpine-base"]);
        // openssh only with default services.
        let cfg = BootConfig::from_cmdline(r#"ssh_key="ssh-ed25519 AAAA""#);
        assert_eq!(
            package_list(&cfg, PackageInputs::default()).packages,
            vec!["alpine-base"]
        );
    }

    #[test]
    fn world_with_a_bad_token_keeps_the_valid_ones() {
        let cfg = BootConfig::from_cmdline("pkgs=tmux,bad$name");
        let plan = package_list(
            &cfg,
            PackageInputs {
                world: Some("chrony\nfoo=\nnftables\n"),
                default_services: false,
                modloop_keys: false,
            },
        );
        assert_eq!(
            plan.packages,
            vec!["tmux", "chrony", "nftables", "alpine-base"]
        );
        assert_eq!(plan.rejected.len(), 2);
        assert_eq!(
            plan.rejected[1].to_string(),
            "etc/apk/world: 'foo=' is not a valid world dependency (missing version), \
             format is name(@tag)([<>~=]version); skipped"
        );
        assert_eq!(plan.rejected[0].source, "pkgs=");
    }

    #[test]
    fn modloop_key_names() {
        assert!(is_modloop_key(
            "alpine-devel@lists.alpinelinux.org-modloop.SIGN.RSA.lts.pub"
        ));
        assert!(!is_modloop_key(
            "alpine-devel@lists.alpinelinux.org-4a6a0840.rsa.pub"
        ));
    }
}
