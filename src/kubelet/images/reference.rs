//! Image references (`name[:tag][@digest]`), normalized as Kubernetes and containerd
//! normalize them: `busybox` is `docker.io/library/busybox:latest`.
//!
//! The grammar is the distribution project's (`reference.ParseNormalizedNamed`): the
//! first path component is a registry when it contains `.` or `:` or is `localhost`;
//! otherwise the registry is `docker.io`, and one-component names live under
//! `library/`. A reference without tag or digest gets the tag `latest`.
//!
//! ```
//! use minke::kubelet::images::Reference;
//! let r: Reference = "127.0.0.1:5000/demo/hello:v1".parse().unwrap();
//! assert_eq!(r.registry(), "127.0.0.1:5000");
//! assert_eq!(r.to_string(), "127.0.0.1:5000/demo/hello:v1");
//! assert_eq!("busybox".parse::<Reference>().unwrap().to_string(), "docker.io/library/busybox:latest");
//! ```

use std::fmt;
use std::str::FromStr;

/// Docker Hub, the registry of names without one.
pub const DEFAULT_REGISTRY: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The string breaks the reference grammar (the wording is the distribution
    /// library's, which the kubelet reports).
    #[error("invalid reference format")]
    Invalid,
    /// Upper-case letters in the repository name.
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
}

/// A normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// The registry host (with port), e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `registry/repository`, the name `minke image ls` shows.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag; `latest` when neither a tag nor a digest was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest digest (`sha256:…`) when the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Whether the registry is on this machine (`localhost` or a loopback address),
    /// which, as containerd does, is spoken to over plain HTTP.
    pub fn is_loopback_registry(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            // `[::1]:5000`
            Some(rest) => rest.split(']').next().unwrap_or(rest),
            None => self.registry.split(':').next().unwrap_or(&self.registry),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        parse(s)
    }
}

fn parse(s: &str) -> Result<Reference, Error> {
    if s.is_empty() || s.len() > 4096 {
        return Err(Error::Invalid);
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) if valid_digest(d) => (r, Some(d.to_string())),
        Some(_) => return Err(Error::Invalid),
        None => (s, None),
    };
    // A tag is a `:` after the last `/` (a `:` before it is a registry port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let (n, t) = rest.split_at(last_slash + i);
            (n, Some(&t[1..]))
        }
        None => (rest, None),
    };
    if let Some(t) = tag
        && !valid_tag(t)
    {
        return Err(Error::Invalid);
    }
    let (registry, repository) = match name.split_once('/') {
        Some((first, path))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first != first.to_lowercase() =>
        {
            (first.to_string(), path.to_string())
        }
        _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
    };
    let registry = if registry == "index.docker.io" {
        DEFAULT_REGISTRY.to_string()
    } else {
        registry
    };
    if !valid_registry(&registry) {
        return Err(Error::Invalid);
    }
    let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    if repository != repository.to_lowercase() {
        return Err(Error::Uppercase);
    }
    if !repository.split('/').all(valid_component) {
        return Err(Error::Invalid);
    }
    let tag = match (tag, &digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_TAG.to_string()),
    };
    Ok(Reference {
        registry,
        repository,
        tag,
        digest,
    })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `host[:port]`, host being DNS labels, an IPv4 address or a bracketed IPv6 one.
fn valid_registry(r: &str) -> bool {
    if let Some(rest) = r.strip_prefix('[') {
        let Some((ip, port)) = rest.split_once(']') else {
            return false;
        };
        return ip.parse::<std::net::Ipv6Addr>().is_ok()
            && (port.is_empty() || port.strip_prefix(':').is_some_and(valid_port));
    }
    let (host, port) = match r.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (r, None),
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !host.is_empty() && host.split('.').all(label) && port.is_none_or(valid_port)
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|x| x.is_ascii_digit())
}

/// `sha256:` and 64 lower-case hex digits (the only algorithm registries use).
pub(crate) fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|x| matches!(x, b'0'..=b'9' | b'a'..=b'f')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        s.parse::<Reference>().expect(s).to_string()
    }

    #[test]
    fn short_names_live_in_docker_hub_library_with_tag_latest() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("minke/hello"), "docker.io/minke/hello:latest");
        assert_eq!(norm("index.docker.io/foo/bar"), "docker.io/foo/bar:latest");
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn a_first_component_with_a_dot_colon_or_localhost_is_a_registry() {
        let r: Reference = "127.0.0.1:5000/demo/hello:v1".parse().expect("ref");
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "demo/hello", Some("v1"))
        );
        assert!(r.is_loopback_registry());
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("ghcr.io/o/app:1.0"), "ghcr.io/o/app:1.0");
        assert!(
            "localhost:5000/x"
                .parse::<Reference>()
                .expect("ref")
                .is_loopback_registry()
        );
        assert!(
            "[::1]:5000/x"
                .parse::<Reference>()
                .expect("ref")
                .is_loopback_registry()
        );
        assert!(
            !"ghcr.io/x"
                .parse::<Reference>()
                .expect("ref")
                .is_loopback_registry()
        );
    }

    #[test]
    fn digests_pin_a_manifest_and_drop_the_default_tag() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r: Reference = format!("ghcr.io/o/app@{d}").parse().expect("ref");
        assert_eq!((r.tag(), r.digest()), (None, Some(d.as_str())));
        let r: Reference = format!("app:v2@{d}").parse().expect("ref");
        assert_eq!(r.tag(), Some("v2"));
        assert!("app@sha256:123".parse::<Reference>().is_err());
    }

    #[test]
    fn malformed_references_are_refused() {
        for bad in [
            "",
            "UPPER",
            "a//b",
            "a:",
            ":tag",
            "a:b:c",
            "-a",
            "a/b-",
            "host:port/x",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} accepted");
        }
        assert_eq!("Busybox".parse::<Reference>(), Err(Error::Uppercase));
    }
}
