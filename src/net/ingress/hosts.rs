//! Ingress host names: a request's host normalized, and values kept by rule host,
//! exact (`foo.example.com`) or wildcard (`*.example.com`, standing for exactly one
//! DNS label), looked up exact first.

use std::collections::HashMap;

/// Values by the hosts of Ingress rules or TLS entries.
#[derive(Debug, Clone)]
pub struct ByHost<T> {
    exact: HashMap<String, T>,
    /// By the suffix after `*.`.
    wildcard: HashMap<String, T>,
}

impl<T> Default for ByHost<T> {
    fn default() -> ByHost<T> {
        ByHost {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        }
    }
}

impl<T: Default> ByHost<T> {
    /// The value for rule host `host` (`*.` for a wildcard; case-insensitive),
    /// made empty if there was none.
    pub fn entry(&mut self, host: &str) -> &mut T {
        let host = host.to_ascii_lowercase();
        match host.strip_prefix("*.") {
            Some(suffix) => self.wildcard.entry(suffix.to_string()).or_default(),
            None => self.exact.entry(host).or_default(),
        }
    }
}

impl<T> ByHost<T> {
    /// The value for request host `host` (normalized): its exact entry, else the
    /// wildcard covering its first label.
    pub fn get(&self, host: &str) -> Option<&T> {
        self.exact.get(host).or_else(|| {
            let (label, suffix) = host.split_once('.')?;
            (!label.is_empty())
                .then(|| self.wildcard.get(suffix))
                .flatten()
        })
    }

    /// Every value.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.exact.values_mut().chain(self.wildcard.values_mut())
    }
}

/// `Example.COM:8080` → `example.com`; `[::1]:80` → `::1`; a trailing dot dropped.
pub fn normalize(host: &str) -> String {
    let bare = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    };
    bare.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_normalize() {
        assert_eq!(normalize("Example.COM:8080"), "example.com");
        assert_eq!(normalize("example.com."), "example.com");
        assert_eq!(normalize("[::1]:80"), "::1");
        assert_eq!(normalize("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn a_wildcard_stands_for_exactly_one_label_and_exact_names_win() {
        let mut m: ByHost<u8> = ByHost::default();
        *m.entry("*.Example.com") = 1;
        *m.entry("foo.example.com") = 2;
        assert_eq!(m.get("foo.example.com"), Some(&2));
        assert_eq!(m.get("bar.example.com"), Some(&1));
        assert_eq!(m.get("a.bar.example.com"), None);
        assert_eq!(m.get("example.com"), None);
        assert_eq!(m.get(".example.com"), None);
    }
}
