//! The few URL operations the client needs: split `scheme://[user@]host[:port]/path`, resolve a
//! redirect's `Location` against the request URL, and print a URL with its password masked (as
//! apk-tools does: `http://user:*@host/...`).

/// A parsed `http`/`https` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url<'a> {
    /// `http` or `https` (lower case as written).
    pub scheme: &'a str,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: &'a str,
    /// Explicit or default port.
    pub port: u16,
    /// Path with query, starting with `/`.
    pub path: &'a str,
}

/// Parse an absolute URL; `None` when it is not one.
pub fn parse(url: &str) -> Option<Url<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        "ftp" => 21,
        _ => return None,
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, tail) = v6.split_once(']')?;
        (h, tail.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) if !p.is_empty() => p.parse().ok()?,
        _ => default_port,
    };
    Some(Url {
        scheme,
        host,
        port,
        path,
    })
}

/// Resolve `location` (from a redirect) against `base`.
pub fn join(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    if let Some(net) = location.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = &rest[auth_end..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{scheme}://{authority}{dir}{location}")
}

/// The URL as shown in messages: a password in it becomes `*`, and so does a user name given
/// without a password (an access token).
pub fn display(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:*@{host}{tail}"),
                // A user name alone is often a token (`https://TOKEN@host/`): masked too.
                None => format!("{scheme}://*@{host}{tail}"),
            }
        }
        // A password with an unencoded `/`, `?` or `#` ends the authority early for the parser;
        // mask up to the last `@` anyway (over-masking a port is the safe mistake).
        None => match (authority.split_once(':'), rest.rfind('@')) {
            (Some((user, _)), Some(at)) => format!("{scheme}://{user}:*@{}", &rest[at + 1..]),
            _ => url.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_urls() {
        let u = parse("https://dl-cdn.alpinelinux.org/alpine/v3.19/main").unwrap();
        assert_eq!(
            (u.scheme, u.host, u.port),
            ("https", "dl-cdn.alpinelinux.org", 443)
        );
        assert_eq!(u.path, "/alpine/v3.19/main");
        let u = parse("http://u:p@10.0.2.2:8080").unwrap();
        assert_eq!((u.host, u.port, u.path), ("10.0.2.2", 8080, "/"));
        let u = parse("http://[::1]:81/x").unwrap();
        assert_eq!((u.host, u.port), ("::1", 81));
        assert!(parse("/srv/apks").is_none());
        assert!(parse("http://:80/").is_none());
        assert!(parse("gopher://h/").is_none());
        assert!(parse("http://h:99999/").is_none());
    }

    #[test]
    fn joins_and_masks() {
        let b = "http://h:1/a/b/APKINDEX.tar.gz?x=1";
        assert_eq!(join(b, "https://o/x"), "https://o/x");
        assert_eq!(join(b, "//o/x"), "http://o/x");
        assert_eq!(join(b, "/x"), "http://h:1/x");
        assert_eq!(join(b, "c.tar.gz"), "http://h:1/a/b/c.tar.gz");
        assert_eq!(join("http://h", "x"), "http://h/x");
        assert_eq!(display("http://user:secret@h/x"), "http://user:*@h/x");
        assert_eq!(display("http://user@h/x@y"), "http://*@h/x@y");
        assert_eq!(
            display("https://ghp_T0KEN@h/alpine/main"),
            "https://*@h/alpine/main"
        );
        assert_eq!(display("http://h/x"), "http://h/x");
        // Review finding: these passwords were shown in clear.
        assert_eq!(display("https://u:pa/ss@h/x"), "https://u:*@h/x");
        assert_eq!(display("https://u:p?w#d@h/x"), "https://u:*@h/x");
        assert_eq!(display("/local/path"), "/local/path");
    }
}
