//! `fnmatch(3)`: `*`, `?`, `[...]` (ranges, `!`/`^` negation, `]` first is literal, an unclosed
//! `[` is literal) and `\` escapes, byte-wise. Two flavours:
//! - [`fnmatch`] with `FNM_PATHNAME`: `*` and `?` never match `/`. apk matches protected-path
//!   rules one directory level at a time and trigger globs against whole paths this way.
//! - [`fnmatch_noflags`]: no flags, as kmod matches `modules.alias` patterns (used by mkinitfs and
//!   by the init at boot), with a cheap reject on the pattern's literal prefix because an alias
//!   scan compares one modalias against thousands of patterns.

/// Whether `name` matches the shell pattern `pat`; `*` and `?` do not match `/`.
pub fn fnmatch(pat: &str, name: &str) -> bool {
    matches(pat.as_bytes(), name.as_bytes(), true)
}

/// Whether `text` matches `pat` with no flags (`*` and `?` match `/` too).
pub fn fnmatch_noflags(pat: &str, text: &str) -> bool {
    let (p, t) = (pat.as_bytes(), text.as_bytes());
    let literal = p
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(p.len());
    if !t.starts_with(&p[..literal]) {
        return false;
    }
    matches(p, t, false)
}

fn matches(p: &[u8], n: &[u8], pathname: bool) -> bool {
    // Iterative matcher that backtracks to the last `*` only.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            let c = n[ni];
            let slash_ok = !(pathname && c == b'/');
            match p[pi] {
                b'*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                b'?' if slash_ok => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                b'[' => match class(&p[pi..], c) {
                    Some((true, len)) if slash_ok => {
                        pi += len;
                        ni += 1;
                        continue;
                    }
                    Some(_) => {}
                    None if c == b'[' => {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                    None => {}
                },
                b'\\' if pi + 1 < p.len() && p[pi + 1] == c => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                b'\\' if pi + 1 < p.len() => {}
                lit if lit == c && lit != b'?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) if !(pathname && n[sn] == b'/') => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            _ => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Match a bracket expression at the start of `p` against `c`: `(matched, pattern length)`, or
/// `None` when the bracket is not closed (then `[` is literal).
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    while i < p.len() {
        let ch = p[i];
        if ch == b']' && !first {
            return Some((found != negate, i + 1));
        }
        first = false;
        let lo = if ch == b'\\' && i + 1 < p.len() {
            i += 1;
            p[i]
        } else {
            ch
        };
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&x| x != b']') {
            let hi = p[i + 2];
            if lo <= c && c <= hi {
                found = true;
            }
            i += 3;
        } else {
            if lo == c {
                found = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{fnmatch, fnmatch_noflags};

    #[test]
    fn pathname_cases() {
        for (p, n, ok) in [
            ("etc", "etc", true),
            ("etc", "etcx", false),
            ("*", "anything", true),
            ("*", ".hidden", true),
            ("*.key", "a.key", true),
            ("*.key", "a.keys", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("?", "x", true),
            ("?", "", false),
            ("[abc]x", "bx", true),
            ("[!abc]x", "bx", false),
            ("[a-z]", "q", true),
            ("[a-z]", "Q", false),
            ("[]]", "]", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("[", "[", true),
            ("modules.*", "modules.dep", true),
            ("", "", true),
            ("", "a", false),
            ("/lib/modules/*", "/lib/modules/6.1", true),
            ("/lib/modules/*", "/lib/modules/6.1/kernel", false),
            ("/usr/?in", "/usr/bin", true),
            ("a?b", "a/b", false),
            ("a[/]b", "a/b", false),
        ] {
            assert_eq!(fnmatch(p, n), ok, "{p} vs {n}");
        }
    }

    #[test]
    fn noflags_cases_like_kmod() {
        assert!(fnmatch_noflags(
            "virtio:d00000002v*",
            "virtio:d00000002v00001AF4"
        ));
        assert!(!fnmatch_noflags(
            "virtio:d00000002v*",
            "virtio:d00000001v00001AF4"
        ));
        assert!(fnmatch_noflags(
            "pci:v00008086d*sv*sd*bc01sc06i01*",
            "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01"
        ));
        assert!(fnmatch_noflags("a?c", "abc"));
        assert!(!fnmatch_noflags("a?c", "ac"));
        assert!(fnmatch_noflags("*", ""));
        assert!(fnmatch_noflags("a*b*c", "aXbYbZc"));
        assert!(!fnmatch_noflags("a*b*c", "aXbYbZ"));
        assert!(fnmatch_noflags("x[0-9]y", "x5y"));
        assert!(!fnmatch_noflags("x[!0-9]y", "x5y"));
        assert!(fnmatch_noflags("x[^0-9]y", "xay"));
        assert!(fnmatch_noflags("x[]]y", "x]y"));
        assert!(
            fnmatch_noflags("x[ab", "x[ab"),
            "unterminated class is literal"
        );
        assert!(fnmatch_noflags("a\\*b", "a*b"));
        assert!(!fnmatch_noflags("a\\*b", "axb"));
        assert!(fnmatch_noflags("**a", "a"));
        assert!(
            fnmatch_noflags("a*c", "a/b/c"),
            "no FNM_PATHNAME: * crosses /"
        );
        assert!(fnmatch_noflags(
            "*modloop*.SIGN.RSA.*.pub",
            "modloop-lts.SIGN.RSA.key.rsa.pub"
        ));
    }
}
