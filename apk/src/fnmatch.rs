//! `fnmatch(3)` for single path components (`*`, `?`, `[...]`, `\` escapes), as apk uses it with
//! `FNM_PATHNAME` on one directory level at a time.

/// Whether `name` matches the shell pattern `pat`.
pub fn fnmatch(pat: &str, name: &str) -> bool {
    matches(pat.as_bytes(), name.as_bytes())
}

fn matches(p: &[u8], n: &[u8]) -> bool {
    // Iterative matcher with single-star backtracking.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                b'?' if n[ni] != b'/' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                b'[' => {
                    if let Some((ok, len)) = class(&p[pi..], n[ni]) {
                        if ok {
                            pi += len;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == b'[' {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                b'\\' if pi + 1 < p.len() => {}
                c if c == n[ni] && c != b'?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) if n[sn] != b'/' => {
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
    use super::fnmatch;

    #[test]
    fn cases() {
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
        ] {
            assert_eq!(fnmatch(p, n), ok, "{p} vs {n}");
        }
    }
}
