//! Dependencies: `[!]name[@tag][op version]` tokens as found in world, `D:`, `p:`, `i:` and on the
//! command line (apk-tools v3 `apk_dep_parse`).

use crate::text::Text;
use crate::version::{self, ANY, CHECKSUM, EQUAL, FUZZY, GREATER, LESS};
use std::fmt;

/// One dependency (or, with `conflict`, a `!` conflict).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dependency {
    /// The name (package name, `so:`/`cmd:`/`pc:` provide, or a path like `/bin/sh`).
    pub name: Text,
    /// Operator mask from [`crate::version`] (`ANY` when no version was given).
    pub op: u8,
    /// Version (or identity for `><`); `None` when no operator was given.
    pub version: Option<Text>,
    /// Repository tag (`name@tag`), world and CLI only. A thin box (8 bytes, where a `String`
    /// takes 24): the real indexes hold 133k dependencies and none has a tag.
    #[allow(clippy::box_collection)]
    pub tag: Option<Box<String>>,
    /// `!name`: the dependency forbids what it matches.
    pub conflict: bool,
}

/// Why a dependency token was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DepError {
    /// Malformed token (bad name character, empty name, operator without version, ...).
    Format(String),
    /// The version part is not a valid apk version.
    Version(String),
}

impl fmt::Display for DepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DepError::Format(t) => write!(f, "'{t}' is not a valid dependency"),
            DepError::Version(t) => write!(f, "'{t}': package version is invalid"),
        }
    }
}

impl std::error::Error for DepError {}

/// Characters of a package name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '_' | '-')
}

fn is_dep_name_char(c: char) -> bool {
    is_name_char(c) || matches!(c, ',' | ':' | '/' | '[' | ']')
}

/// Whether `s` is a valid package name (`[A-Za-z0-9+._-]`, starting alphanumeric).
pub fn is_valid_package_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) && s.chars().all(is_name_char)
}

impl Dependency {
    /// A dependency on any version of `name`.
    pub fn any(name: &str) -> Self {
        Dependency {
            name: name.into(),
            op: ANY,
            version: None,
            tag: None,
            conflict: false,
        }
    }

    /// Parse one token. `allow_tag` is true for world and command line entries.
    pub fn parse(token: &str, allow_tag: bool) -> Result<Self, DepError> {
        Self::parse_with(token, allow_tag, true, &|s: &str| Text::new(s))
    }

    /// Parse one token borrowed from `buf` (an index line): name, version and tag share its
    /// buffer instead of being copied.
    pub fn parse_in(buf: &Text, token: &str, allow_tag: bool) -> Result<Self, DepError> {
        Self::parse_with(token, allow_tag, true, &|s: &str| buf.slice(s))
    }

    /// One `p:` token of an index: as [`Dependency::parse_in`], but a version that is not one
    /// (`pc:x264=0.164.x`, `so:libtimed-qt5.so.0=0..0` in Alpine 3.19) is kept as written, as
    /// apk-tools keeps it: the provide still satisfies dependencies without a version. A
    /// dependency with a version against it compares its invalid part as [`version::compare`]
    /// does, which may differ from apk-tools (`pc:x264>=0.164` is not met by `0.164.x` here);
    /// Alpine 3.19 has no such dependency.
    pub fn parse_provide_in(buf: &Text, token: &str) -> Result<Self, DepError> {
        Self::parse_with(token, false, false, &|s: &str| buf.slice(s))
    }

    fn parse_with(
        token: &str,
        allow_tag: bool,
        strict_version: bool,
        text: &dyn Fn(&str) -> Text,
    ) -> Result<Self, DepError> {
        let bad = || DepError::Format(token.to_string());
        let (conflict, rest) = match token.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, token),
        };
        let name_end = rest
            .find(|c: char| !is_dep_name_char(c) && c != '@')
            .unwrap_or(rest.len());
        let (name_tag, ver_part) = rest.split_at(name_end);
        let (name, tag) = match name_tag.split_once('@') {
            Some((n, t)) => {
                if !allow_tag || t.is_empty() || !t.chars().all(is_name_char) {
                    return Err(bad());
                }
                (n, Some(Box::new(t.to_string())))
            }
            None => (name_tag, None),
        };
        if name.is_empty() || !name.chars().all(is_dep_name_char) {
            return Err(bad());
        }
        let mut dep = Dependency {
            name: text(name),
            op: ANY,
            version: None,
            tag,
            conflict,
        };
        if ver_part.is_empty() {
            return Ok(dep);
        }
        let op_len = ver_part
            .find(|c: char| !matches!(c, '<' | '>' | '=' | '~'))
            .unwrap_or(ver_part.len());
        let (op_text, ver) = ver_part.split_at(op_len);
        let mut op = 0u8;
        for c in op_text.chars() {
            op |= match c {
                '<' => LESS,
                '>' => GREATER,
                '=' => EQUAL,
                _ => EQUAL | FUZZY,
            };
        }
        if op == 0 || ver.is_empty() {
            return Err(bad());
        }
        if op & CHECKSUM == CHECKSUM {
            if op != CHECKSUM || ver.len() < 3 {
                return Err(bad());
            }
        } else if strict_version && !version::is_loadable(ver) {
            return Err(DepError::Version(token.to_string()));
        }
        dep.op = op;
        dep.version = Some(text(ver));
        Ok(dep)
    }

    /// Parse a space/newline separated list (e.g. a `D:` line).
    pub fn parse_list(text: &str, allow_tag: bool) -> Result<Vec<Self>, DepError> {
        exact_list(text, |t| Self::parse(t, allow_tag))
    }

    /// Parse a list borrowed from `buf` (see [`Dependency::parse_in`]).
    pub fn parse_list_in(buf: &Text, text: &str, allow_tag: bool) -> Result<Vec<Self>, DepError> {
        exact_list(text, |t| Self::parse_in(buf, t, allow_tag))
    }

    /// Whether this is an identity pin (`name><Q1...`).
    pub fn is_checksum_pin(&self) -> bool {
        self.op == CHECKSUM
    }

    /// Whether a provider with version `ver` (None: unversioned provide) satisfies the version part,
    /// ignoring `conflict`. Identity pins are matched by the caller.
    pub fn version_matches(&self, ver: Option<&str>) -> bool {
        if self.op & ANY == ANY {
            return true;
        }
        version::matches(ver, self.op, self.version.as_deref())
    }

    /// Text without the tag, as printed inside error reports (`d<2.0`, `!b`).
    pub fn to_string_no_tag(&self) -> String {
        let mut s = String::new();
        if self.conflict {
            s.push('!');
        }
        s.push_str(&self.name);
        if let Some(v) = &self.version {
            s.push_str(version::op_str(self.op));
            s.push_str(v);
        }
        s
    }
}

/// The dependencies of a list, in a vector of exactly their number: `collect` from a
/// `split_whitespace` cannot know it and doubles its way up, which left ~40% of the real indexes'
/// 133k dependencies' memory unused (5.7 MiB).
fn exact_list(
    text: &str,
    parse: impl Fn(&str) -> Result<Dependency, DepError>,
) -> Result<Vec<Dependency>, DepError> {
    let mut out = Vec::with_capacity(text.split_whitespace().count());
    for t in text.split_whitespace() {
        out.push(parse(t)?);
    }
    Ok(out)
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.conflict {
            f.write_str("!")?;
        }
        f.write_str(&self.name)?;
        if let Some(t) = &self.tag {
            write!(f, "@{t}")?;
        }
        if let Some(v) = &self.version {
            write!(f, "{}{v}", version::op_str(self.op))?;
        }
        Ok(())
    }
}

/// Format a dependency list the way apk writes `D:` lines and world entries.
pub fn list_to_string(deps: &[Dependency]) -> String {
    deps.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let d = Dependency::parse("busybox=1.36.1-r15", false).unwrap();
        assert_eq!(
            (d.name.as_str(), d.op, d.version.as_deref()),
            ("busybox", EQUAL, Some("1.36.1-r15"))
        );
        let d = Dependency::parse("so:libc.musl-x86_64.so.1", false).unwrap();
        assert_eq!(d.name, "so:libc.musl-x86_64.so.1");
        assert_eq!(d.op, ANY);
        let d = Dependency::parse("!b>1", false).unwrap();
        assert!(d.conflict);
        assert_eq!(d.op, GREATER);
        let d = Dependency::parse("foo@testing>=2.0", true).unwrap();
        assert_eq!(d.tag.as_deref().map(String::as_str), Some("testing"));
        assert_eq!(d.op, GREATER | EQUAL);
        assert_eq!(d.to_string(), "foo@testing>=2.0");
        let d = Dependency::parse("libglvnd><Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8=", true).unwrap();
        assert!(d.is_checksum_pin());
        assert_eq!(d.to_string(), "libglvnd><Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8=");
        let d = Dependency::parse("x~1.2", false).unwrap();
        assert_eq!(d.op, EQUAL | FUZZY);
        assert_eq!(d.to_string(), "x~1.2");
        let d = Dependency::parse("/bin/sh", false).unwrap();
        assert_eq!(d.name, "/bin/sh");
        let d = Dependency::parse("pc:libfoo[x]<3", false).unwrap();
        assert_eq!(d.op, LESS);
    }

    #[test]
    fn rejects_bad_tokens() {
        for t in [
            "foo=",
            "",
            "!",
            "foo@",
            "@tag",
            "foo=1.0_post1",
            "foo>=a",
            "foo$",
            "f@t@u",
        ] {
            assert!(Dependency::parse(t, true).is_err(), "{t} should fail");
        }
        assert!(Dependency::parse("foo@tag", false).is_err());
        assert!(matches!(
            Dependency::parse("foo>=x.1", false),
            Err(DepError::Version(_))
        ));
    }

    #[test]
    fn matching() {
        let d = Dependency::parse("d<2.0", false).unwrap();
        assert!(d.version_matches(Some("1.9")));
        assert!(!d.version_matches(Some("2.0")));
        assert!(d.version_matches(None));
        assert!(Dependency::any("x").version_matches(Some("9")));
    }

    #[test]
    fn names() {
        assert!(is_valid_package_name("py3-material-color"));
        assert!(!is_valid_package_name(".virtual"));
        assert!(!is_valid_package_name("a b"));
    }
}
