//! `modules.softdep`: `softdep MODULE pre: NAMES post: NAMES`, modules to load before and after
//! a module that does not link against them (a filesystem's checksum driver, a FAT mount's
//! codepages). The names may be modules or aliases (Debian's `softdep ext4 pre: crypto-crc32c`),
//! resolved by the reader ([`crate::Index::resolve`]). Words before any `pre:`/`post:` tag are
//! ignored, as kmod ignores them (Debian ships `softdep cifs gcm`).

use crate::error::ParseError;
use crate::name::normalize;

/// One `softdep` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftDep {
    /// The module the line is about (normalised).
    pub module: String,
    /// Names to load before it, as written (module names or aliases).
    pub pre: Vec<String>,
    /// Names to load after it, as written.
    pub post: Vec<String>,
}

/// Parses the text of `modules.softdep`; comments and empty lines are skipped, any other line
/// must start with `softdep MODULE`.
pub fn parse(text: &str) -> Result<Vec<SoftDep>, ParseError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        if words.next() != Some("softdep") {
            return Err(ParseError::new(
                index + 1,
                "expected \"softdep MODULE pre: ... post: ...\"",
            ));
        }
        let Some(module) = words.next() else {
            return Err(ParseError::new(index + 1, "softdep without a module name"));
        };
        let mut sd = SoftDep {
            module: normalize(module),
            pre: Vec::new(),
            post: Vec::new(),
        };
        let mut list: Option<&mut Vec<String>> = None;
        for word in words {
            match word {
                "pre:" => list = Some(&mut sd.pre),
                "post:" => list = Some(&mut sd.post),
                name => {
                    if let Some(l) = list.as_mut() {
                        l.push(name.to_string());
                    }
                }
            }
        }
        out.push(sd);
    }
    Ok(out)
}

/// `modules.softdep` text of `lines`, under depmod's header line.
pub fn render<'a>(lines: impl IntoIterator<Item = &'a SoftDep>) -> String {
    let mut out = String::from("# Soft dependencies extracted from modules themselves.\n");
    for sd in lines {
        out.push_str("softdep ");
        out.push_str(&sd.module);
        for (tag, names) in [("pre:", &sd.pre), ("post:", &sd.post)] {
            if !names.is_empty() {
                out.push(' ');
                out.push_str(tag);
                for n in names {
                    out.push(' ');
                    out.push_str(n);
                }
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_kmod() {
        let sd = parse("# c\nsoftdep cifs gcm\nsoftdep a-b pre: x y post: z pre: w\n").unwrap();
        assert_eq!(
            sd,
            [
                SoftDep {
                    module: "cifs".into(),
                    pre: vec![],
                    post: vec![]
                },
                SoftDep {
                    module: "a_b".into(),
                    pre: vec!["x".into(), "y".into(), "w".into()],
                    post: vec!["z".into()]
                }
            ]
        );
        assert_eq!(
            parse("options x y\n").unwrap_err().to_string(),
            "line 1: expected \"softdep MODULE pre: ... post: ...\""
        );
        assert_eq!(
            parse("\nsoftdep\n").unwrap_err().to_string(),
            "line 2: softdep without a module name"
        );
    }

    #[test]
    fn render_then_parse_round_trips() {
        let lines =
            parse("softdep vfat pre: nls_cp437 nls_ascii\nsoftdep ext4 pre: crc32c post: x\n")
                .unwrap();
        let text = render(&lines);
        assert_eq!(
            text,
            "# Soft dependencies extracted from modules themselves.\n\
             softdep vfat pre: nls_cp437 nls_ascii\nsoftdep ext4 pre: crc32c post: x\n"
        );
        assert_eq!(parse(&text).unwrap(), lines);
    }
}
