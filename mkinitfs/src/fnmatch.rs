//! fnmatch(3) for `modules.alias` patterns: kmod matches modaliases (`pci:v00008086d...`) and
//! softdep names against the patterns depmod wrote, and so do we (and the init at boot).
//! Byte-wise, no flags: `*` and `?` also match `/`, as in kmod.

/// fnmatch(3) without flags: `*`, `?`, `[...]` (with `!`/`^` negation and ranges), `\` escapes.
/// This is how kmod (and the init) match `modules.alias` patterns against modaliases.
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // Cheapest reject first: a literal first byte that differs (most of a modules.alias scan).
    if let (Some(&p0), Some(&t0)) = (p.first(), t.first()) {
        if !matches!(p0, b'*' | b'?' | b'[' | b'\\') && p0 != t0 {
            return false;
        }
    }
    // Fast reject on the literal prefix: most alias patterns start with a bus name.
    let literal = p
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(p.len());
    if !t.starts_with(&p[..literal]) {
        return false;
    }
    // Iterative matcher with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = match_class(p, pi, t[ti]) {
                        if matched {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == b'[' {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Matches `c` against the bracket expression starting at `p[start] == '['`. Returns whether it
/// matched and the index after `]`, or None if the bracket is not closed (then `[` is literal).
fn match_class(p: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&e| e != b']') {
            let end = p[i + 2];
            if ch <= c && c <= end {
                matched = true;
            }
            i += 3;
        } else {
            if ch == c {
                matched = true;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_like_libc() {
        assert!(fnmatch(
            "pci:v00001AF4d*sv*sd*bc*sc*i*",
            "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"
        ));
        assert!(!fnmatch("pci:v00001AF4d*", "pci:v00008086d00001001"));
        assert!(fnmatch("a?c", "abc"));
        assert!(fnmatch("x[0-9]y", "x5y"));
        assert!(!fnmatch("x[!0-9]y", "x5y"));
        assert!(fnmatch("x[]]y", "x]y"));
        assert!(fnmatch("a\\*b", "a*b"));
        assert!(!fnmatch("a\\*b", "axb"));
        assert!(fnmatch("*", ""));
        assert!(fnmatch("a[b", "a[b"));
        assert!(fnmatch("**x*", "abxcd"));
        assert!(!fnmatch("abc", "abcd"));
    }
}
