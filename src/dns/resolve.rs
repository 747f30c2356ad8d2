//! Name-to-address lookups as a pod's stub resolver makes them: the search list
//! `<ns>.svc.<zone> svc.<zone> <zone>` with `ndots:5` (a name with fewer than five
//! dots tries the search list first; a trailing dot makes it absolute), A then AAAA,
//! CNAMEs followed, names outside the zone asked upstream when egress is allowed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RData, RecordType};

use super::Inner;
use super::upstream::{self, Upstream};

/// `options ndots:5`, as the kubelet writes into every ClusterFirst pod's resolv.conf.
pub const NDOTS: usize = 5;

/// Why a name did not resolve.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name cannot be a DNS name (empty, a label over 63 bytes, over 253 bytes, ...).
    #[error("invalid DNS name {name:?}: {reason}")]
    InvalidName {
        /// The name asked for.
        name: String,
        /// Why it is not one.
        reason: String,
    },
    /// No candidate name has an address (NXDOMAIN or NODATA for all of them).
    #[error("{name}: no such host")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// The upstream nameservers could not be asked.
    #[error(transparent)]
    Upstream(#[from] upstream::Error),
    /// An upstream nameserver answered with an error code (SERVFAIL, REFUSED, ...).
    #[error("upstream DNS answered {code} for {name}")]
    Failed {
        /// The name asked for.
        name: String,
        /// The response code.
        code: ResponseCode,
    },
}

impl Error {
    /// The name does not exist (or is not a name): retrying will not help.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. } | Error::InvalidName { .. })
    }
}

/// The names a resolver with search list `search` and ndots [`NDOTS`] tries for `name`,
/// in order (all fully qualified).
pub(crate) fn candidates(name: &str, search: &[Name]) -> Result<Vec<Name>, Error> {
    let invalid = |reason: String| Error::InvalidName {
        name: name.to_string(),
        reason,
    };
    let relative = name.strip_suffix('.').unwrap_or(name);
    if relative.is_empty() || relative.starts_with('.') || relative.contains("..") {
        return Err(invalid("empty label".into()));
    }
    let mut base = Name::from_str_relaxed(relative).map_err(|e| invalid(e.to_string()))?;
    base.set_fqdn(false);
    let mut absolute = base.clone();
    absolute.set_fqdn(true);
    if absolute.len() > 254 {
        return Err(invalid("longer than 253 characters".into()));
    }
    if name.ends_with('.') {
        return Ok(vec![absolute]);
    }
    let searched = search
        .iter()
        .filter_map(|domain| base.clone().append_domain(domain).ok());
    let dots = relative.matches('.').count();
    Ok(if dots >= NDOTS {
        std::iter::once(absolute).chain(searched).collect()
    } else {
        searched.chain(std::iter::once(absolute)).collect()
    })
}

impl Inner {
    /// The search list of a pod in `namespace`.
    fn search(&self, namespace: &str) -> Vec<Name> {
        let svc = self.domain.prepend_label("svc").ok();
        let ns_svc = svc.as_ref().and_then(|s| s.prepend_label(namespace).ok());
        [ns_svc, svc, Some(self.domain.clone())]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Resolve `name` for a pod in `namespace`.
    pub(crate) async fn lookup_ip(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<Vec<IpAddr>, Error> {
        let trimmed = name.strip_suffix('.').unwrap_or(name);
        if let Ok(ip) = trimmed.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        // Every pod's /etc/hosts maps localhost to the loopback addresses.
        if trimmed.eq_ignore_ascii_case("localhost") {
            return Ok(vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]);
        }
        let mut failure = None;
        for candidate in candidates(name, &self.search(namespace))? {
            match self.addresses(&candidate).await {
                Ok(ips) if !ips.is_empty() => return Ok(ips),
                Ok(_) => {}
                // As glibc: a failing candidate does not end the search.
                Err(e) => failure = Some(e),
            }
        }
        Err(failure.unwrap_or_else(|| Error::NotFound {
            name: name.to_string(),
        }))
    }

    /// The A and AAAA addresses of one fully qualified name (empty: NXDOMAIN/NODATA).
    async fn addresses(&self, name: &Name) -> Result<Vec<IpAddr>, Error> {
        let zone = self.zone().await;
        let lower = LowerName::new(name);
        let mut ips = Vec::new();
        let mut external = None;
        let mut known = false;
        for rtype in [RecordType::A, RecordType::AAAA] {
            if let Some(answer) = zone.lookup(&lower, rtype) {
                known = true;
                ips.extend(answer.addresses());
                if let Some(target) = answer.external {
                    external = Some(target.clone());
                }
            }
        }
        let ask = match (known, external) {
            (false, _) => name.clone(),
            (true, Some(target)) => target,
            (true, None) => return Ok(ips),
        };
        let Some(upstream) = &self.upstream else {
            return Ok(ips);
        };
        let (v4, v6) = tokio::join!(
            ask_upstream(upstream, &ask, RecordType::A),
            ask_upstream(upstream, &ask, RecordType::AAAA)
        );
        for answer in [v4?, v6?] {
            match answer.metadata.response_code {
                ResponseCode::NoError | ResponseCode::NXDomain => {}
                code => {
                    return Err(Error::Failed {
                        name: ask.to_string(),
                        code,
                    });
                }
            }
            ips.extend(answer.answers.iter().filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            }));
        }
        Ok(ips)
    }
}

/// Ask `upstream` for `rtype` records of `name` (recursion desired).
pub(crate) async fn ask_upstream(
    upstream: &Upstream,
    name: &Name,
    rtype: RecordType,
) -> Result<Message, Error> {
    let mut query = Message::query();
    query.metadata.id = rand::random();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name.clone(), rtype));
    let bytes = query.to_vec().map_err(|e| Error::InvalidName {
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    let answer = upstream.exchange(&bytes).await?;
    Message::from_vec(&answer).map_err(|_| Error::Failed {
        name: name.to_string(),
        code: ResponseCode::FormErr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search() -> Vec<Name> {
        [
            "default.svc.cluster.local.",
            "svc.cluster.local.",
            "cluster.local.",
        ]
        .iter()
        .map(|s| Name::from_ascii(s).unwrap())
        .collect()
    }

    fn tried(name: &str) -> Vec<String> {
        candidates(name, &search())
            .expect("valid")
            .iter()
            .map(|n| n.to_string())
            .collect()
    }

    #[test]
    fn a_short_name_tries_the_search_list_before_itself() {
        assert_eq!(
            tried("web"),
            [
                "web.default.svc.cluster.local.",
                "web.svc.cluster.local.",
                "web.cluster.local.",
                "web."
            ]
        );
        assert_eq!(
            tried("web.other")[0],
            "web.other.default.svc.cluster.local."
        );
        assert_eq!(tried("web.other").len(), 4);
    }

    #[test]
    fn a_name_with_five_dots_is_tried_as_is_first_and_a_trailing_dot_makes_it_absolute() {
        assert_eq!(tried("a.b.c.d.e.f")[0], "a.b.c.d.e.f.");
        assert_eq!(tried("a.b.c.d.e.f").len(), 4);
        assert_eq!(
            tried("web.default.svc.cluster.local")[0],
            "web.default.svc.cluster.local.default.svc.cluster.local."
        );
        assert_eq!(tried("example.com."), ["example.com."]);
    }

    #[test]
    fn names_that_cannot_be_dns_names_are_refused() {
        for bad in ["", ".", "a..b", &"x".repeat(64), &"abcdefgh.".repeat(32)] {
            let err = candidates(bad, &search()).expect_err(bad);
            assert!(err.is_not_found(), "{bad}: {err}");
        }
    }
}
