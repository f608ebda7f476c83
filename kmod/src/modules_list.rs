//! Alpine's `/etc/modules`: modules to load at boot, one per line with optional parameters,
//! `#` starting a comment. `mkinitfs` writes the boot modules there (its `modules=` config key);
//! the init loads them before it looks for the boot medium.

/// The (module, parameters) of each line, in order; parameters are empty when none are given.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((m, p)) => (m.to_string(), p.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// The file's text for `modules` (one name, with its parameters if any, per line).
pub fn render<S: AsRef<str>>(modules: &[S]) -> String {
    let mut out = String::new();
    for m in modules {
        out.push_str(m.as_ref().trim());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_parameters() {
        assert_eq!(
            parse("# boot\naf_packet\nipv6 # net\n  loop max_loop=8 \n\n"),
            vec![
                ("af_packet".to_string(), String::new()),
                ("ipv6".to_string(), String::new()),
                ("loop".to_string(), "max_loop=8".to_string())
            ]
        );
        let text = render(&["e1000", "loop max_loop=8"]);
        assert_eq!(text, "e1000\nloop max_loop=8\n");
        assert_eq!(parse(&text).len(), 2);
    }
}
