//! `APKINDEX` text: package entries in letter format (apk-format.md §2-3).

use crate::package::{self, Package};

/// Result of parsing an index.
#[derive(Debug, Default)]
pub struct Index {
    /// Packages in file order.
    pub packages: Vec<Package>,
    /// Whether some entry used a letter this apk does not know (apk prints a warning).
    pub unknown_letters: bool,
    /// Whether some package is broken (invalid dependency, unknown uppercase letter).
    pub broken_packages: bool,
}

/// An `APKINDEX` syntax error.
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

/// Parse index text.
pub fn parse(text: &str) -> Result<Index, IndexError> {
    let mut idx = Index::default();
    let mut cur: Option<Package> = None;
    for (i, line) in text.split('\n').enumerate() {
        if line.len() < 2 {
            if let Some(p) = cur.take() {
                finish(&mut idx, p, i + 1)?;
            }
            continue;
        }
        let b = line.as_bytes();
        if b[1] != b':' {
            return Err(IndexError {
                line: i + 1,
                msg: format!("malformed line '{}'", truncate(line)),
            });
        }
        let p = cur.get_or_insert_with(Package::default);
        let letter = b[0];
        if INSTALLED_ONLY.contains(&letter) {
            continue;
        }
        match p.apply_letter(letter, &line[2..]) {
            Ok(true) => {}
            Ok(false) => {
                idx.unknown_letters = true;
                if letter.is_ascii_uppercase() {
                    p.broken = true;
                }
            }
            Err(e) => {
                return Err(IndexError {
                    line: i + 1,
                    msg: e.0,
                })
            }
        }
    }
    if let Some(p) = cur.take() {
        finish(&mut idx, p, text.lines().count())?;
    }
    Ok(idx)
}

fn finish(idx: &mut Index, p: Package, line: usize) -> Result<(), IndexError> {
    if p.name.is_empty() || p.version.is_empty() {
        return Err(IndexError {
            line,
            msg: "entry without P: or V:".into(),
        });
    }
    if !crate::version::is_valid(&p.version) {
        return Err(IndexError {
            line,
            msg: format!("{}: invalid version '{}'", p.name, p.version),
        });
    }
    idx.broken_packages |= p.broken;
    idx.packages.push(p);
    Ok(())
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
        let idx = parse(&f.text).unwrap();
        assert_eq!(idx.packages.len(), 100);
        assert!(!idx.unknown_letters);
        assert_eq!(write(&idx.packages), f.text);
    }

    #[test]
    fn errors_and_unknown_letters() {
        assert_eq!(
            parse("C:Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8=\nPx\n")
                .unwrap_err()
                .line,
            2
        );
        assert!(parse("P:a\nV:1\nS:abc\n\n").is_err());
        assert!(parse("P:a\n\n").is_err());
        assert!(parse("P:a\nV:1..2\n\n").is_err());
        let idx = parse("P:a\nV:1\nY:new\n\nP:b\nV:1\ny:x\nR:ignored\n\n").unwrap();
        assert!(idx.unknown_letters);
        assert!(idx.packages[0].broken);
        assert!(!idx.packages[1].broken);
        let idx = parse("P:a\nV:1\nD:ok bad==\n\n").unwrap();
        assert!(idx.packages[0].broken);
        assert!(idx.broken_packages);
    }
}
