//! Splitting the command line into words exactly as the kernel's `next_arg()` does
//! (`lib/cmdline.c`; docs/boot.md, "Kernel command line"): whitespace separates words except
//! inside double quotes; a value that starts with `"` loses that quote and a trailing one, and so
//! does a word that starts with one.

/// One kernel command-line word: `name` or `name=value` (quotes already removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Text before the first `=` (the whole word when there is no `=`).
    pub name: String,
    /// Text after the first `=`, if any.
    pub value: Option<String>,
}

/// Splits a command line into words with the kernel's `next_arg()` rules.
pub fn split_kernel_words(line: &str) -> Vec<Param> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        while pos < b.len() && b[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= b.len() {
            break;
        }
        let mut start = pos;
        let mut in_quote = false;
        let mut quoted = false;
        if b[start] == b'"' {
            start += 1;
            in_quote = true;
            quoted = true;
        }
        let mut i = start;
        let mut equals: Option<usize> = None;
        while i < b.len() {
            if b[i].is_ascii_whitespace() && !in_quote {
                break;
            }
            // The kernel's `equals == 0` test means an `=` as the very first byte is not a separator.
            if equals.is_none() && b[i] == b'=' && i > start {
                equals = Some(i);
            }
            if b[i] == b'"' {
                in_quote = !in_quote;
            }
            i += 1;
        }
        let end = i;
        // The kernel drops a trailing quote when the word or its value started with one.
        let mut word_end = end;
        let param = match equals {
            None => {
                if quoted && word_end > start && b[word_end - 1] == b'"' {
                    word_end -= 1;
                }
                Param {
                    name: line[start..word_end].to_string(),
                    value: None,
                }
            }
            Some(eq) => {
                let mut vstart = eq + 1;
                let value_quoted = vstart < end && b[vstart] == b'"';
                if value_quoted {
                    vstart += 1;
                }
                if (value_quoted || quoted) && word_end > vstart && b[word_end - 1] == b'"' {
                    word_end -= 1;
                }
                Param {
                    name: line[start..eq].to_string(),
                    value: Some(line[vstart..word_end.max(vstart)].to_string()),
                }
            }
        };
        out.push(param);
        pos = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<(String, Option<String>)> {
        split_kernel_words(line)
            .into_iter()
            .map(|p| (p.name, p.value))
            .collect()
    }

    fn w(n: &str, v: Option<&str>) -> (String, Option<String>) {
        (n.to_string(), v.map(str::to_string))
    }

    #[test]
    fn splits_on_whitespace() {
        assert_eq!(
            words("  a=1\tb  c=\n"),
            vec![w("a", Some("1")), w("b", None), w("c", Some(""))]
        );
        assert!(words("").is_empty());
        assert!(words(" \n ").is_empty());
    }

    #[test]
    fn double_quotes_group_words_and_are_removed_from_values() {
        assert_eq!(
            words(r#"ssh_key="ssh-ed25519 AAAAC3 me@host" quiet"#),
            vec![
                w("ssh_key", Some("ssh-ed25519 AAAAC3 me@host")),
                w("quiet", None)
            ]
        );
    }

    #[test]
    fn quoted_whole_word() {
        assert_eq!(
            words(r#""a=b c" d"#),
            vec![w("a", Some("b c")), w("d", None)]
        );
        assert_eq!(words(r#""bare word""#), vec![w("bare word", None)]);
    }

    #[test]
    fn inner_quotes_are_kept_like_the_kernel() {
        // next_arg() only strips a quote that starts the value; inner ones toggle grouping but stay.
        assert_eq!(
            words(r#"a=x"y z"w b"#),
            vec![w("a", Some(r#"x"y z"w"#)), w("b", None)]
        );
    }

    #[test]
    fn unterminated_quote_runs_to_the_end() {
        assert_eq!(words(r#"a="x y z"#), vec![w("a", Some("x y z"))]);
        assert_eq!(words(r#"a="#), vec![w("a", Some(""))]);
        assert_eq!(words(r#"""#), vec![w("", None)]);
    }

    #[test]
    fn value_keeps_later_equals_and_leading_equals_is_not_a_separator() {
        assert_eq!(
            words("apkovl=UUID=ab:x=y"),
            vec![w("apkovl", Some("UUID=ab:x=y"))]
        );
        assert_eq!(words("=x"), vec![w("=x", None)]);
        assert_eq!(
            words("xen-pciback.hide=(01:00.0)"),
            vec![w("xen-pciback.hide", Some("(01:00.0)"))]
        );
    }
}
