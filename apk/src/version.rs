//! apk version strings: validation and ordering, following apk-tools v3 (`src/version.c`).
//!
//! Grammar: `N{.N}[a-z]{_suffix[N]}[~hex][-rN]`. Comparison walks both strings token by token; the
//! first differing token decides, and when the token *types* differ the rules of docs/apk.md
//! ("Versions") apply (pre-release suffixes sort before the release, a shorter version sorts
//! before a longer one, leading zeros compare byte-wise).
//!
//! Real indexes carry a few versions outside that grammar which apk-tools still loads: digits
//! right after the letter (`0.99f7-r2`, `1.1.0b1-r7`, upstream's own numbering). apk-tools 2.14
//! reads them as letter, then number; we do the same: the letter token carries the digits that
//! follow it and orders by letter, then by that number (`0.99f < 0.99f7 < 0.99f10 < 0.99g`), as
//! the 2.14.4 oracle does. Such versions are [loadable](is_loadable) but not [valid](is_valid):
//! `apk version -c` still reports them, as v3 does.

use std::cmp::Ordering;

/// Result bit: the left version is less than the right one.
pub const LESS: u8 = 1;
/// Result bit: the versions are equal.
pub const EQUAL: u8 = 2;
/// Result bit: the left version is greater than the right one.
pub const GREATER: u8 = 4;
/// Operator bit: prefix ("fuzzy") match, the `~` operator.
pub const FUZZY: u8 = 8;
/// Any version at all (no operator given).
pub const ANY: u8 = LESS | EQUAL | GREATER;
/// The `><` identity pin: the "version" holds a package identity (`Q1...`).
pub const CHECKSUM: u8 = LESS | GREATER;

/// Token types in tokenizer order; the order matters for comparisons (rule 4 of §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tok {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
    Invalid,
}

/// Known suffixes in their sort order; the first four are pre-releases.
const SUFFIXES: [&str; 10] = [
    "alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p",
];
const RELEASE: usize = 4;

struct Tokens<'a> {
    s: &'a [u8],
    pos: usize,
    prev: Tok,
    /// Digits after the letter belong to it (apk-tools 2.x); v3's grammar refuses them.
    letter_digits: bool,
}

impl<'a> Tokens<'a> {
    fn new(s: &'a str) -> Self {
        Tokens {
            s: s.as_bytes(),
            pos: 0,
            prev: Tok::End,
            letter_digits: true,
        }
    }

    fn strict(s: &'a str) -> Self {
        Tokens {
            letter_digits: false,
            ..Tokens::new(s)
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.pos < self.s.len() && f(self.s[self.pos]) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// Next token and its value bytes. After `End` or `Invalid` it keeps returning that.
    fn next(&mut self) -> (Tok, &'a [u8]) {
        let tok = self.scan();
        self.prev = tok.0;
        tok
    }

    fn scan(&mut self) -> (Tok, &'a [u8]) {
        if matches!(self.prev, Tok::Invalid) {
            return (Tok::Invalid, b"");
        }
        if self.pos == 0 && self.prev == Tok::End {
            let v = self.take_while(|c| c.is_ascii_digit());
            return if v.is_empty() {
                (Tok::Invalid, b"")
            } else {
                (Tok::InitialDigit, v)
            };
        }
        if self.pos >= self.s.len() {
            return (Tok::End, b"");
        }
        let c = self.s[self.pos];
        let prev = self.prev;
        match c {
            b'.' if matches!(prev, Tok::InitialDigit | Tok::Digit) => {
                self.pos += 1;
                let v = self.take_while(|c| c.is_ascii_digit());
                if v.is_empty() {
                    (Tok::Invalid, b"")
                } else {
                    (Tok::Digit, v)
                }
            }
            b'0'..=b'9' if prev == Tok::Suffix => {
                let v = self.take_while(|c| c.is_ascii_digit());
                (Tok::SuffixNo, v)
            }
            b'a'..=b'z' if matches!(prev, Tok::InitialDigit | Tok::Digit) => {
                let start = self.pos;
                self.pos += 1;
                if self.letter_digits {
                    self.take_while(|c| c.is_ascii_digit());
                }
                (Tok::Letter, &self.s[start..self.pos])
            }
            b'_' if prev <= Tok::SuffixNo => {
                self.pos += 1;
                let v = self.take_while(|c| c.is_ascii_lowercase());
                match SUFFIXES
                    .iter()
                    .position(|s| !s.is_empty() && s.as_bytes() == v)
                {
                    Some(_) => (Tok::Suffix, v),
                    None => (Tok::Invalid, b""),
                }
            }
            b'~' if prev < Tok::CommitHash => {
                self.pos += 1;
                let v = self.take_while(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
                if v.is_empty() {
                    (Tok::Invalid, b"")
                } else {
                    (Tok::CommitHash, v)
                }
            }
            b'-' if prev < Tok::RevisionNo && self.s.get(self.pos + 1) == Some(&b'r') => {
                self.pos += 2;
                let v = self.take_while(|c| c.is_ascii_digit());
                if v.is_empty() {
                    (Tok::Invalid, b"")
                } else {
                    (Tok::RevisionNo, v)
                }
            }
            _ => (Tok::Invalid, b""),
        }
    }
}

/// Whether `v` is a valid apk v3 version string (`apk version -c`).
pub fn is_valid(v: &str) -> bool {
    ends_well(Tokens::strict(v))
}

/// Whether `v` is a version apk-tools loads from an index or accepts in a dependency: a valid one,
/// or one with digits after its letter (`0.99f7-r2`).
pub fn is_loadable(v: &str) -> bool {
    ends_well(Tokens::new(v))
}

fn ends_well(mut t: Tokens<'_>) -> bool {
    loop {
        match t.next().0 {
            Tok::End => return true,
            Tok::Invalid => return false,
            _ => {}
        }
    }
}

/// The letter token: the letter, then whether digits follow it, then their number.
fn cmp_letter(a: &[u8], b: &[u8]) -> Ordering {
    a[0].cmp(&b[0])
        .then_with(|| (a.len() > 1).cmp(&(b.len() > 1)))
        .then_with(|| cmp_numeric(&a[1..], &b[1..]))
}

fn suffix_rank(v: &[u8]) -> usize {
    SUFFIXES
        .iter()
        .position(|s| s.as_bytes() == v)
        .unwrap_or(RELEASE)
}

/// Numeric comparison of digit strings of any length.
fn cmp_numeric(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
    let (a, b) = (&a[strip(a)..], &b[strip(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Byte-wise comparison over the shorter length, then the shorter one is less.
fn cmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    a[..n].cmp(&b[..n]).then(a.len().cmp(&b.len()))
}

fn is_prerelease(tok: Tok, v: &[u8]) -> bool {
    tok == Tok::Suffix && suffix_rank(v) < RELEASE
}

/// Compare two versions; `fuzzy` makes a right-hand side that ends early compare equal (the `~`
/// operator: `3.6.9` matches `~3.6`). Returns one of [`LESS`], [`EQUAL`], [`GREATER`].
pub fn compare_fuzzy(a: &str, b: &str, fuzzy: bool) -> u8 {
    let (mut ta, mut tb) = (Tokens::new(a), Tokens::new(b));
    loop {
        let (ka, va) = ta.next();
        let (kb, vb) = tb.next();
        if ka != kb || ka == Tok::End || ka == Tok::Invalid {
            return differing_types(ka, va, kb, vb, fuzzy);
        }
        let ord = match ka {
            Tok::InitialDigit | Tok::SuffixNo | Tok::RevisionNo => cmp_numeric(va, vb),
            Tok::Digit => {
                if va.first() == Some(&b'0') || vb.first() == Some(&b'0') {
                    cmp_bytes(va, vb)
                } else {
                    cmp_numeric(va, vb)
                }
            }
            Tok::Letter => cmp_letter(va, vb),
            Tok::Suffix => suffix_rank(va).cmp(&suffix_rank(vb)),
            Tok::CommitHash => cmp_bytes(va, vb),
            Tok::End | Tok::Invalid => Ordering::Equal,
        };
        match ord {
            Ordering::Less => return LESS,
            Ordering::Greater => return GREATER,
            Ordering::Equal => {}
        }
    }
}

fn differing_types(ka: Tok, va: &[u8], kb: Tok, vb: &[u8], fuzzy: bool) -> u8 {
    if ka == kb {
        return EQUAL;
    }
    if fuzzy && kb == Tok::End {
        return EQUAL;
    }
    if is_prerelease(ka, va) {
        return LESS;
    }
    if is_prerelease(kb, vb) {
        return GREATER;
    }
    // The side that is "further along" in token order is the shorter/lesser version.
    if ka > kb {
        LESS
    } else {
        GREATER
    }
}

/// Plain ordering of two versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    match compare_fuzzy(a, b, false) {
        LESS => Ordering::Less,
        GREATER => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// Whether version `have` satisfies operator mask `op` against `want` (no conflict handling).
/// A missing version on either side matches every operator, as in apk-tools.
pub fn matches(have: Option<&str>, op: u8, want: Option<&str>) -> bool {
    if op & ANY == ANY {
        return true;
    }
    match (have, want) {
        (Some(h), Some(w)) => compare_fuzzy(h, w, op & FUZZY != 0) & op != 0,
        (None, None) => op & EQUAL != 0,
        _ => true,
    }
}

/// Operator text for a mask, as apk prints it (`>=`, `<`, `~`, ...). Empty for "any version".
pub fn op_str(op: u8) -> &'static str {
    match op & (ANY | FUZZY) {
        x if x == LESS => "<",
        x if x == LESS | EQUAL => "<=",
        x if x == EQUAL => "=",
        x if x == GREATER | EQUAL => ">=",
        x if x == GREATER => ">",
        x if x == EQUAL | FUZZY => "~",
        x if x == GREATER | EQUAL | FUZZY => ">~",
        x if x == LESS | EQUAL | FUZZY => "<~",
        x if x == CHECKSUM => "><",
        _ => "",
    }
}

/// Split `name-version` (a file stem such as `busybox-1.36.1-r15`) at the last `-` followed by a
/// digit, where the rest is a loadable version.
pub fn split_name_version(s: &str) -> Option<(&str, &str)> {
    let bytes = s.as_bytes();
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        if bytes[i] == b'-' && bytes.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
            let (n, v) = (&s[..i], &s[i + 1..]);
            if !n.is_empty() && is_loadable(v) {
                return Some((n, v));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(a: &str, b: &str) -> char {
        match compare(a, b) {
            Ordering::Less => '<',
            Ordering::Equal => '=',
            Ordering::Greater => '>',
        }
    }

    /// Table in `tests/data/versions.txt`: `A OP B` per line, checked both ways.
    #[test]
    fn version_table() {
        let table = include_str!("../tests/data/versions.txt");
        let mut n = 0;
        for (i, line) in table.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 3, "line {}: {line}", i + 1);
            let expect = f[1].chars().next().unwrap();
            assert_eq!(sym(f[0], f[2]), expect, "line {}: {line}", i + 1);
            let rev = match expect {
                '<' => '>',
                '>' => '<',
                c => c,
            };
            assert_eq!(sym(f[2], f[0]), rev, "line {} reversed: {line}", i + 1);
            n += 1;
        }
        assert!(n > 40);
    }

    #[test]
    fn validity() {
        for v in [
            "1",
            "1.2.3",
            "1.0a",
            "1.0_rc1",
            "1.0_alpha_pre2",
            "0.1_pre2~1234abcd",
            "1.2-r0",
            "1.36.1-r15",
            "1.2.4_git20230717-r4",
            "6.4_p20231125-r0",
            "20230506-r0",
            "2.10-r9",
        ] {
            assert!(is_valid(v), "{v} should be valid");
        }
        for v in [
            "a",
            ".1",
            "0.1a1",
            "0.1-r",
            "0.1-r2-r3",
            "_pre1",
            "0.1_",
            "3.6.9_post1",
            "",
            "1.",
            "1..2",
            "1-r1a",
            "1~",
            "1~xyz",
            "1.0-1",
            "1 .0",
            "1.0ab",
        ] {
            assert!(!is_valid(v), "{v} should be invalid");
        }
    }

    /// Versions real indexes carry outside v3's grammar (Alpine 3.19: aspell-ru, librasterlite2)
    /// load and order as apk-tools 2.14.4 orders them (`apk version -t` in the oracle).
    #[test]
    fn digits_after_the_letter_load_and_order_as_apk_tools() {
        for v in ["0.99f7-r2", "1.1.0b1-r7", "1.0a01", "2b10"] {
            assert!(is_loadable(v), "{v} should load");
            assert!(!is_valid(v), "{v} is outside v3's grammar");
        }
        for v in ["1.0ab", "1.0a1b2", "1.0a1.2", "1A", "0.99f7-r", "", "a1"] {
            assert!(!is_loadable(v), "{v} should not load");
        }
        assert_eq!(
            split_name_version("aspell-ru-0.99f7-r2"),
            Some(("aspell-ru", "0.99f7-r2"))
        );
    }

    #[test]
    fn fuzzy_is_asymmetric() {
        assert!(matches(Some("3.6.9"), EQUAL | FUZZY, Some("3.6")));
        assert!(!matches(Some("3.8"), EQUAL | FUZZY, Some("3.8.1")));
        assert!(matches(Some("1.2-r3"), EQUAL | FUZZY, Some("1.2")));
        assert!(matches(Some("2.0"), GREATER | EQUAL | FUZZY, Some("1.9")));
    }

    #[test]
    fn null_versions_match_everything() {
        assert!(matches(None, LESS, Some("1")));
        assert!(matches(Some("1"), GREATER, None));
        assert!(matches(Some("1"), ANY, Some("2")));
        assert!(!matches(Some("1"), GREATER, Some("2")));
    }

    #[test]
    fn ops_print() {
        assert_eq!(op_str(GREATER | EQUAL), ">=");
        assert_eq!(op_str(EQUAL | FUZZY), "~");
        assert_eq!(op_str(CHECKSUM), "><");
        assert_eq!(op_str(ANY), "");
    }

    #[test]
    fn name_version_split() {
        assert_eq!(
            split_name_version("busybox-1.36.1-r15"),
            Some(("busybox", "1.36.1-r15"))
        );
        assert_eq!(
            split_name_version("py3-material-color-2.1.0-r1"),
            Some(("py3-material-color", "2.1.0-r1"))
        );
        assert_eq!(split_name_version("lib-3d-1.0"), Some(("lib-3d", "1.0")));
        assert_eq!(split_name_version("noversion"), None);
    }
}
