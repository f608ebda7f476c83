//! `APKINDEX` text: package entries in letter format (docs/apk.md, "Indexes" and "Entry letters").
//!
//! Reading is as lenient as apk-tools': one entry that cannot be used never costs the rest of the
//! index. Such an entry (a line that is not `X:value`, no `P:` or `V:`, a version apk-tools cannot
//! read, an identity or number that does not parse) is skipped and reported once in
//! [`Index::skipped`] with its line; an invalid dependency or an unknown uppercase letter makes the
//! package uninstallable instead (it stays visible, as in apk-tools); unknown lowercase letters are
//! ignored.

use crate::package::{self, Package};
use crate::text::Text;

/// Result of parsing an index.
#[derive(Debug, Default)]
pub struct Index {
    /// Packages in file order.
    pub packages: Vec<Package>,
    /// Entries that were skipped, each with the line that made it unusable.
    pub skipped: Vec<IndexError>,
    /// Whether some entry used a letter this apk does not know (apk prints a warning).
    pub unknown_letters: bool,
    /// Whether one of those letters was uppercase (its package is not installable).
    pub unknown_uppercase: bool,
    /// Whether some package is broken (invalid dependency, unknown uppercase letter).
    pub broken_packages: bool,
}

/// Why an `APKINDEX` entry was skipped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct IndexError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

/// Letters that belong to the installed database only; ignored in an index.
const INSTALLED_ONLY: &[u8] = b"FMRZrqasfg";

/// One entry being read: the package so far, or why it is skipped.
struct Entry {
    pkg: Package,
    /// Line of the entry's first letter (for an entry without `P:`/`V:`).
    first_line: usize,
    skip: Option<IndexError>,
}

/// The most entries reserved up front (Alpine 3.19's community index has 17,587).
const MAX_RESERVED_ENTRIES: usize = 1 << 16;

/// Parse index text. Never fails as a whole: unusable entries are listed in [`Index::skipped`].
/// The packages' strings are slices of `text` (pass a `String` to hand it over without a copy).
pub fn parse(text: impl Into<Text>) -> Index {
    let buf: Text = text.into();
    let text = buf.as_str();
    // One entry per `P:` line: sized once, a 17k-entry index wastes no doubled capacity. Bounded,
    // so that a file of nothing but `P:` lines does not reserve gigabytes before any is parsed.
    let entries = (text.matches("\nP:").count() + usize::from(text.starts_with("P:")))
        .min(MAX_RESERVED_ENTRIES);
    let mut idx = Index {
        packages: Vec::with_capacity(entries),
        ..Index::default()
    };
    let mut cur: Option<Entry> = None;
    for (i, line) in text.split('\n').enumerate() {
        let lineno = i + 1;
        if line.len() < 2 {
            if let Some(e) = cur.take() {
                finish(&mut idx, e);
            }
            continue;
        }
        let e = cur.get_or_insert_with(|| Entry {
            pkg: Package::default(),
            first_line: lineno,
            skip: None,
        });
        if e.skip.is_some() {
            // Only the name is still of interest, for the warning.
            if let Some(name) = line.strip_prefix("P:") {
                e.pkg.name = buf.slice(name);
            }
            continue;
        }
        let b = line.as_bytes();
        if b[1] != b':' {
            e.skip = Some(IndexError {
                line: lineno,
                msg: format!("malformed line '{}'", truncate(line)),
            });
            continue;
        }
        let letter = b[0];
        if INSTALLED_ONLY.contains(&letter) {
            continue;
        }
        match e.pkg.apply_letter_in(letter, &buf.slice(&line[2..])) {
            Ok(true) => {}
            Ok(false) => {
                idx.unknown_letters = true;
                if letter.is_ascii_uppercase() {
                    idx.unknown_uppercase = true;
                    e.pkg.broken = true;
                }
            }
            Err(err) => {
                e.skip = Some(IndexError {
                    line: lineno,
                    msg: err.0,
                })
            }
        }
        if letter == b'V' && !crate::version::is_loadable(&e.pkg.version) {
            e.skip = Some(IndexError {
                line: lineno,
                msg: format!("invalid version '{}'", truncate(&e.pkg.version)),
            });
        }
    }
    if let Some(e) = cur.take() {
        finish(&mut idx, e);
    }
    idx
}

fn finish(idx: &mut Index, e: Entry) {
    let p = e.pkg;
    let skip = e.skip.or_else(|| {
        (p.name.is_empty() || p.version.is_empty()).then(|| IndexError {
            line: e.first_line,
            msg: "entry without P: or V:".into(),
        })
    });
    if let Some(mut err) = skip {
        if !p.name.is_empty() {
            err.msg = format!("{}: {}", p.name, err.msg);
        }
        idx.skipped.push(err);
        return;
    }
    idx.broken_packages |= p.broken;
    idx.packages.push(p);
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(60);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Write index text: entries sorted by name (`strcasecmp`, then `strcmp`) and version, each ending
/// with an empty line.
pub fn write(packages: &[Package]) -> String {
    let mut sorted: Vec<&Package> = packages.iter().collect();
    sorted.sort_by(|a, b| package::index_order(a, b));
    let mut out = String::new();
    for p in sorted {
        p.write_index_header(&mut out);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rewrites_fixture_index_byte_for_byte() {
        let buf = crate::testutil::fixture("alpine-3.19.1/apks/x86_64/APKINDEX.tar.gz");
        let f = crate::archive::open_index(&buf, &Default::default(), true).unwrap();
        let idx = parse(&f.text);
        assert_eq!(idx.packages.len(), 100);
        assert!(idx.skipped.is_empty());
        assert!(!idx.unknown_letters);
        assert_eq!(write(&idx.packages), f.text);
    }

    /// Review finding: a cache's unsigned `installed` file of nothing but `P:` lines reserved one
    /// `Package` per line before parsing (gigabytes for a 256 MiB file: PID 1 aborted).
    #[test]
    fn a_file_of_empty_entries_reserves_a_bounded_amount() {
        let idx = parse("\nP:".repeat(1 << 18));
        assert!(idx.packages.is_empty());
        assert!(
            idx.packages.capacity() <= MAX_RESERVED_ENTRIES,
            "{}",
            idx.packages.capacity()
        );
    }

    /// Each kind of unusable entry is skipped with its line; the entries around it load.
    #[test]
    fn unusable_entries_are_skipped_one_by_one() {
        let text = "P:a\nV:1\n\n\
                    C:Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8=\nPx\nP:b\nV:1\n\n\
                    P:c\nV:1..2\n\n\
                    P:d\nV:1\nS:abc\n\n\
                    P:e\nC:Q1short\nV:1\n\n\
                    T:no name\n\n\
                    P:f\nV:1\n\n";
        let idx = parse(text);
        let names: Vec<&str> = idx.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "f"]);
        let skipped: Vec<String> = idx.skipped.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            skipped,
            [
                "line 5: b: malformed line 'Px'",
                "line 10: c: invalid version '1..2'",
                "line 14: d: S: 'abc' is not a number",
                "line 17: e: invalid checksum 'Q1short'",
                "line 20: entry without P: or V:",
            ]
        );
    }

    #[test]
    fn lenient_versions_and_identities_load() {
        let idx = parse(
            "C:Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv9=\nP:aspell-ru\nV:0.99f7-r2\n\n\
             P:librasterlite2-dev\nV:1.1.0b1-r7\nD:librasterlite2=1.1.0b1-r7 pkgconfig\n\n",
        );
        assert!(idx.skipped.is_empty(), "{:?}", idx.skipped);
        assert_eq!(idx.packages.len(), 2);
        assert_eq!(
            idx.packages[0].identity.to_string(),
            "Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8="
        );
        assert!(!idx.packages[1].broken);
        assert_eq!(
            idx.packages[1].depends[0].version.as_deref(),
            Some("1.1.0b1-r7")
        );
    }

    #[test]
    fn unknown_letters_and_bad_dependencies() {
        let idx = parse("P:a\nV:1\nY:new\n\nP:b\nV:1\ny:x\nR:ignored\n\n");
        assert!(idx.unknown_letters && idx.unknown_uppercase);
        assert!(idx.packages[0].broken);
        assert!(!idx.packages[1].broken);
        let idx = parse("P:a\nV:1\nD:ok bad==\n\n");
        assert!(idx.packages[0].broken);
        assert!(idx.broken_packages);
        assert!(!idx.unknown_letters);
        assert!(idx.skipped.is_empty());
        let idx = parse("P:a\nV:1\ny:x\n\n");
        assert!(idx.unknown_letters && !idx.unknown_uppercase);
    }

    /// Alpine 3.19's timed has `p:so:libtimed-qt5.so.0=0..0`, x264-dev `p:pc:x264=0.164.x`:
    /// apk-tools installs both, and the provide satisfies what depends on the name.
    #[test]
    fn bad_provides_and_install_if_leave_the_package_installable() {
        let idx = parse(
            "P:timed\nV:3.6.23-r0\np:so:libtimed-qt5.so.0=0..0 cmd:timed bad== so:after=1\n\n\
             P:x\nV:1\ni:a b==\n\n",
        );
        assert!(idx.skipped.is_empty(), "{:?}", idx.skipped);
        let timed = &idx.packages[0];
        assert!(!timed.broken);
        let provides: Vec<String> = timed
            .provides
            .iter()
            .map(|d| d.to_string_no_tag())
            .collect();
        assert_eq!(provides, ["so:libtimed-qt5.so.0=0..0", "cmd:timed"]);
        assert!(timed.provides[0].version_matches(None));
        // A partial install_if rule is no rule: the package is never installed by it.
        assert!(!idx.packages[1].broken);
        assert!(idx.packages[1].install_if.is_empty());
        assert!(!idx.broken_packages);
    }
}
