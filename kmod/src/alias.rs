//! `modules.alias`: `alias PATTERN MODULE` lines that depmod extracts from the modules
//! (`pci:v00008086d*...`, `fs-vfat`, `crypto-crc32c`, ...). A device's `MODALIAS` or a name that
//! is not a module is matched against every pattern as `fnmatch(3)` without flags, after both
//! sides are normalised ([`crate::normalize_alias`]), as kmod does.
//!
//! The file of a distribution kernel has some 30,000 lines of which a boot uses a handful, so
//! the text is kept whole with the byte ranges of each line's two words instead of 60,000 small
//! strings; the normalised copy has the same length (normalising replaces one ASCII byte by
//! another), so the ranges serve both.

use std::ops::Range;

use apk::fnmatch::fnmatch_noflags;

use crate::error::ParseError;
use crate::name::normalize;

/// A parsed `modules.alias`.
#[derive(Debug, Clone, Default)]
pub struct Aliases {
    /// The text as written (for rendering).
    text: String,
    /// The same text with every pattern and module name normalised (for matching).
    normalized: String,
    /// Per line: the byte ranges of the pattern and the module name.
    spans: Vec<(Range<usize>, Range<usize>)>,
    /// Per line: the length of the pattern's literal prefix (before its first `*`, `?`, `[`
    /// or `\\`): a query that does not start with it cannot match, and most lines of a lookup
    /// end there (`pci:v00008086d` against `pci:v00001AF4d...`) without running `fnmatch`.
    literal: Vec<usize>,
}

impl Aliases {
    /// Parses the text of `modules.alias`; comments and empty lines are skipped, any other line
    /// must be `alias PATTERN MODULE`.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let base = text.as_ptr() as usize;
        let span = |s: &str| {
            let start = s.as_ptr() as usize - base;
            start..start + s.len()
        };
        let mut spans = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("alias"), Some(pattern), Some(module), None) => {
                    spans.push((span(pattern), span(module)))
                }
                _ => {
                    return Err(ParseError::new(
                        index + 1,
                        "expected \"alias PATTERN MODULE\"",
                    ))
                }
            }
        }
        let mut bytes = text.as_bytes().to_vec();
        for (pattern, module) in &spans {
            let mut in_class = false;
            for b in &mut bytes[pattern.clone()] {
                match *b {
                    b'[' => in_class = true,
                    b']' => in_class = false,
                    b'-' if !in_class => *b = b'_',
                    _ => {}
                }
            }
            for b in &mut bytes[module.clone()] {
                if *b == b'-' {
                    *b = b'_';
                }
            }
        }
        // Only ASCII '-' was replaced by ASCII '_', so the bytes are still the UTF-8 they were.
        let normalized = String::from_utf8(bytes).unwrap_or_else(|_| text.to_string());
        let literal = spans
            .iter()
            .map(|(pattern, _)| literal_prefix(&normalized.as_bytes()[pattern.clone()]))
            .collect();
        Ok(Aliases {
            text: text.to_string(),
            normalized,
            spans,
            literal,
        })
    }

    /// The (normalised) names of the modules whose pattern matches `query` (a modalias or a
    /// name), in file order, each once.
    pub fn lookup(&self, query: &str) -> Vec<&str> {
        let query = crate::normalize_alias(query);
        let mut out: Vec<&str> = Vec::new();
        for ((pattern, module), &literal) in self.spans.iter().zip(&self.literal) {
            let pattern = &self.normalized[pattern.clone()];
            if !query.as_bytes().starts_with(&pattern.as_bytes()[..literal]) {
                continue;
            }
            if fnmatch_noflags(pattern, &query) {
                let name = &self.normalized[module.clone()];
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Every line as written: (pattern, module).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.spans
            .iter()
            .map(|(p, m)| (&self.text[p.clone()], &self.text[m.clone()]))
    }

    /// The number of alias lines.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there is no alias line.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// `modules.alias` text of the lines whose module `keep` accepts (given the normalised module
    /// name), as written, under depmod's header line.
    pub fn render(&self, keep: impl Fn(&str) -> bool) -> String {
        let mut out = String::from("# Aliases extracted from modules themselves.\n");
        for (pattern, module) in self.iter() {
            if keep(&normalize(module)) {
                out.push_str("alias ");
                out.push_str(pattern);
                out.push(' ');
                out.push_str(module);
                out.push('\n');
            }
        }
        out
    }
}

/// The length of `pattern`'s leading literal bytes: up to its first wildcard (`*`, `?`), class
/// (`[`) or escape (`\\`). Without flags, `fnmatch` matches those bytes one for one.
fn literal_prefix(pattern: &[u8]) -> usize {
    pattern
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The literal prefix only skips what `fnmatch` would refuse: every lookup equals matching
    /// every line.
    #[test]
    fn the_literal_prefix_skips_only_non_matches() {
        assert_eq!(literal_prefix(b"pci:v00008086d*"), 14);
        assert_eq!(literal_prefix(b"fs_vfat"), 7);
        assert_eq!(literal_prefix(b"a?b"), 1);
        assert_eq!(literal_prefix(b"[ab]x"), 0);
        assert_eq!(literal_prefix(b"x\\*y"), 1);
        let text =
            format!("{ALIAS}alias x\\*y escaped\nalias * everything\nalias pci:v0000* anypci\n");
        let a = Aliases::parse(&text).unwrap();
        for q in [
            "virtio:d00000002v00001AF4",
            "pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00",
            "pci:v0000DEADd0000BEEF",
            "fs-vfat",
            "devname:b-x",
            "x*y",
            "xzy",
            "",
            "crypto_crc32c",
        ] {
            let n = crate::normalize_alias(q);
            let mut all: Vec<&str> = Vec::new();
            for (p, m) in &a.spans {
                let name = &a.normalized[m.clone()];
                if fnmatch_noflags(&a.normalized[p.clone()], &n) && !all.contains(&name) {
                    all.push(name);
                }
            }
            assert_eq!(a.lookup(q), all, "{q:?}");
        }
        assert_eq!(a.lookup("x*y"), ["escaped", "everything"]);
        assert_eq!(a.lookup("pci:v0000DEADd0000BEEF"), ["everything", "anypci"]);
    }

    const ALIAS: &str = "\
# Aliases extracted from modules themselves.
alias fs-vfat vfat
alias virtio:d00000002v* virtio_blk
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb-storage
alias pci:v00001234d00001111sv*sd*bc03sc00i00* bochs
alias pci:v00001234d00001111sv*sd*bc03sc*i* bochs
alias crypto-crc32c crc32c_generic
alias crypto-crc32c crc32c-intel
alias devname:[a-c]-x somedev
";

    #[test]
    fn lookups_match_patterns_in_file_order_once() {
        let a = Aliases::parse(ALIAS).unwrap();
        assert_eq!(a.len(), 8);
        assert_eq!(a.lookup("virtio:d00000002v00001AF4"), ["virtio_blk"]);
        assert_eq!(
            a.lookup("usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00"),
            ["usb_storage"]
        );
        assert_eq!(
            a.lookup("pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00"),
            ["bochs"]
        );
        assert!(a.lookup("pci:v0000DEADd0000BEEF").is_empty());
        assert_eq!(a.lookup("fs-vfat"), ["vfat"]);
        // A class range keeps its dash.
        assert_eq!(a.lookup("devname:b-x"), ["somedev"]);
        assert!(a.lookup("devname:_-x").is_empty());
    }

    /// Regression: mkinitfs matched softdep names against the patterns as written, so
    /// `softdep ext4 pre: crypto_crc32c` found nothing where the alias is `crypto-crc32c` (and
    /// the init, which normalised, then had no crc32c module to load).
    #[test]
    fn dashed_and_underscored_aliases_are_one() {
        let a = Aliases::parse(ALIAS).unwrap();
        assert_eq!(
            a.lookup("crypto_crc32c"),
            ["crc32c_generic", "crc32c_intel"]
        );
        assert_eq!(
            a.lookup("crypto-crc32c"),
            ["crc32c_generic", "crc32c_intel"]
        );
    }

    #[test]
    fn renders_the_kept_lines_as_written() {
        let a = Aliases::parse(ALIAS).unwrap();
        assert_eq!(
            a.render(|m| m == "usb_storage" || m == "crc32c_intel"),
            "# Aliases extracted from modules themselves.\n\
             alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb-storage\n\
             alias crypto-crc32c crc32c-intel\n"
        );
        assert_eq!(a.iter().next(), Some(("fs-vfat", "vfat")));
    }

    #[test]
    fn bad_lines_are_errors() {
        for text in ["alias onlyone\n", "alias a b c\n", "options x y\n"] {
            assert_eq!(
                Aliases::parse(text).unwrap_err().to_string(),
                "line 1: expected \"alias PATTERN MODULE\""
            );
        }
    }
}
