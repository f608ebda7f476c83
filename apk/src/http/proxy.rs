//! Which proxy a request goes through: `http_proxy` for `http://` URLs, `https_proxy` for
//! `https://` ones, `no_proxy` for the hosts that go direct, as curl, wget and apk-tools' libfetch
//! read them (lower case first, then the upper-case spelling; `HTTP_PROXY` is honoured too, as
//! apk-tools does, since apk never runs as a CGI script).

/// Proxies for the two schemes and the hosts that bypass them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Proxy URL for `http://` requests.
    pub http: Option<String>,
    /// Proxy URL for `https://` requests.
    pub https: Option<String>,
    /// `no_proxy` entries: `*`, a host name (also matching its subdomains), `.domain`, an IP
    /// address, each optionally with `:port`.
    pub no_proxy: Vec<String>,
}

impl ProxyConfig {
    /// Read the configuration from the process environment.
    pub fn from_env() -> ProxyConfig {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Read the configuration through `get` (a variable name to its value), for tests and for
    /// callers (the boot init) that keep their own environment.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> ProxyConfig {
        let var = |lower: &str, upper: &str| {
            get(lower)
                .or_else(|| get(upper))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let all = var("all_proxy", "ALL_PROXY");
        ProxyConfig {
            http: var("http_proxy", "HTTP_PROXY").or_else(|| all.clone()),
            https: var("https_proxy", "HTTPS_PROXY").or(all),
            no_proxy: var("no_proxy", "NO_PROXY")
                .map(|v| {
                    v.split([',', ' '])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The proxy URL for a request to `scheme://host:port`, if any.
    pub fn for_target(&self, scheme: &str, host: &str, port: u16) -> Option<&str> {
        let proxy = match scheme {
            "http" => self.http.as_deref(),
            "https" => self.https.as_deref(),
            _ => None,
        }?;
        (!self.bypass(host, port)).then_some(proxy)
    }

    fn bypass(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        self.no_proxy.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            let (pattern, want_port) = split_port(entry);
            if want_port.is_some_and(|p| p != port) {
                return false;
            }
            let pattern = pattern.trim_start_matches('*').trim_end_matches('.');
            match pattern.strip_prefix('.') {
                Some(domain) => host.ends_with(&format!(".{domain}")) || host == domain,
                None => host == pattern || host.ends_with(&format!(".{pattern}")),
            }
        })
    }
}

/// `host:port` -> (host, Some(port)); a bare IPv6 address keeps its colons.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            return (h, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> ProxyConfig {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyConfig::from_vars(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn per_scheme_and_lower_case_first() {
        let c = cfg(&[
            ("http_proxy", "http://p1:3128"),
            ("HTTP_PROXY", "http://ignored:1"),
            ("HTTPS_PROXY", "http://p2:3128"),
        ]);
        assert_eq!(c.for_target("http", "dl", 80), Some("http://p1:3128"));
        assert_eq!(c.for_target("https", "dl", 443), Some("http://p2:3128"));
        assert_eq!(c.for_target("ftp", "dl", 21), None);
        let only_http = cfg(&[("http_proxy", "http://p1:3128")]);
        assert_eq!(only_http.for_target("https", "dl", 443), None);
        let all = cfg(&[("ALL_PROXY", "http://p3:8080")]);
        assert_eq!(all.for_target("https", "dl", 443), Some("http://p3:8080"));
        assert_eq!(cfg(&[("http_proxy", "  ")]).http, None);
    }

    #[test]
    fn no_proxy_rules() {
        let c = cfg(&[
            ("http_proxy", "http://p:1"),
            (
                "no_proxy",
                "localhost, .internal,example.org,10.0.2.2,*.wild,mirror:8080,[::1]",
            ),
        ]);
        let via = |h: &str, p: u16| c.for_target("http", h, p).is_some();
        assert!(!via("localhost", 80));
        assert!(!via("LOCALHOST", 80));
        assert!(!via("a.internal", 80));
        assert!(!via("internal", 80));
        assert!(!via("example.org", 80));
        assert!(!via("dl.example.org", 80));
        assert!(via("badexample.org", 80));
        assert!(!via("10.0.2.2", 80));
        assert!(!via("x.wild", 80));
        assert!(!via("mirror", 8080));
        assert!(via("mirror", 80));
        assert!(!via("[::1]", 80));
        assert!(via("dl-cdn.alpinelinux.org", 443));
        let star = cfg(&[("https_proxy", "http://p:1"), ("NO_PROXY", "*")]);
        assert_eq!(star.for_target("https", "anything", 443), None);
    }
}
