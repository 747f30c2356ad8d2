//! TLS for the Ingress proxy: the certificates of Ingresses' `spec.tls` entries,
//! read from `kubernetes.io/tls` Secrets in each Ingress's namespace and chosen by
//! SNI; a self-signed certificate answers names no Ingress covers (as
//! ingress-nginx's "fake certificate" does).

use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::hosts::{ByHost, normalize};

/// Why a certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The Secret does not exist (yet).
    #[error("secret {0} not found")]
    NotFound(String),
    /// The Secret lacks `tls.crt` or `tls.key`.
    #[error("secret {secret} has no {key}")]
    Missing {
        /// `namespace/name`.
        secret: String,
        /// The missing key.
        key: &'static str,
    },
    /// The PEM data does not hold a usable certificate chain or key.
    #[error("secret {secret}: {why}")]
    Invalid {
        /// `namespace/name`.
        secret: String,
        /// What is wrong.
        why: String,
    },
    /// The self-signed default certificate could not be made.
    #[error("generating the default certificate: {0}")]
    Generate(String),
}

/// The certificate and key of a `kubernetes.io/tls` Secret.
pub fn from_secret(secret: &Secret) -> Result<Arc<CertifiedKey>, CertError> {
    let name = format!(
        "{}/{}",
        secret.metadata.namespace.as_deref().unwrap_or_default(),
        secret.metadata.name.as_deref().unwrap_or_default()
    );
    let get = |key: &'static str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.as_slice())
            .filter(|b| !b.is_empty())
            .ok_or_else(|| CertError::Missing {
                secret: name.clone(),
                key,
            })
    };
    let invalid = |why: String| CertError::Invalid {
        secret: name.clone(),
        why,
    };
    let chain = rustls_pemfile::certs(&mut get("tls.crt")?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("tls.crt: {e}")))?;
    if chain.is_empty() {
        return Err(invalid("tls.crt holds no certificate".into()));
    }
    let key = rustls_pemfile::private_key(&mut get("tls.key")?)
        .map_err(|e| invalid(format!("tls.key: {e}")))?
        .ok_or_else(|| invalid("tls.key holds no private key".into()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| invalid(format!("tls.key: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

/// Certificates by the host names they serve.
#[derive(Debug, Default)]
pub struct Certs {
    hosts: ByHost<Option<Arc<CertifiedKey>>>,
    /// From a `tls` entry without hosts: for names nothing else covers.
    default: Option<Arc<CertifiedKey>>,
}

impl Certs {
    /// The certificates of `ingresses` (oldest first, which wins a shared host);
    /// `secret` finds a Secret by namespace and name. Entries whose Secret is
    /// missing or unusable are skipped and logged.
    pub fn build<'a, F>(ingresses: impl IntoIterator<Item = &'a Ingress>, secret: F) -> Certs
    where
        F: Fn(&str, &str) -> Option<Arc<Secret>>,
    {
        let mut certs = Certs::default();
        for ing in ingresses {
            let ns = ing.metadata.namespace.as_deref().unwrap_or_default();
            for tls in ing.spec.iter().flat_map(|s| s.tls.iter().flatten()) {
                let Some(name) = tls.secret_name.as_deref() else {
                    continue;
                };
                let key = secret(ns, name)
                    .ok_or_else(|| CertError::NotFound(format!("{ns}/{name}")))
                    .and_then(|s| from_secret(&s));
                let key = match key {
                    Ok(k) => k,
                    Err(e) => {
                        tracing::warn!(ingress = %format!("{ns}/{}", ing.metadata.name.as_deref().unwrap_or_default()), error = %e, "TLS entry not served");
                        continue;
                    }
                };
                let hosts = tls.hosts.as_deref().unwrap_or_default();
                if hosts.is_empty() && certs.default.is_none() {
                    certs.default = Some(key.clone());
                }
                for host in hosts {
                    certs.hosts.entry(host).get_or_insert_with(|| key.clone());
                }
            }
        }
        certs
    }

    /// The certificate for SNI name `name`.
    pub fn find(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        name.map(normalize)
            .and_then(|n| self.hosts.get(&n).cloned().flatten())
            .or_else(|| self.default.clone())
    }
}

/// Chooses the certificate for each TLS handshake from the current [`Certs`].
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Arc<Certs>>,
    fallback: Arc<CertifiedKey>,
}

impl Resolver {
    /// A resolver with no Ingress certificates yet, and a fresh self-signed one
    /// for names none covers.
    pub fn new() -> Result<Resolver, CertError> {
        let failed = |e: &dyn std::fmt::Display| CertError::Generate(e.to_string());
        let key = rcgen::KeyPair::generate().map_err(|e| failed(&e))?;
        let mut params = rcgen::CertificateParams::new(vec!["ingress.minke.local".into()])
            .map_err(|e| failed(&e))?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "minke ingress default certificate",
        );
        let cert = params.self_signed(&key).map_err(|e| failed(&e))?;
        let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| failed(&e))?;
        let signer =
            rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| failed(&e))?;
        Ok(Resolver {
            current: RwLock::default(),
            fallback: Arc::new(CertifiedKey::new(vec![cert.der().clone()], signer)),
        })
    }

    /// Serve `certs` from the next handshake on.
    pub fn set(&self, certs: Certs) {
        if let Ok(mut c) = self.current.write() {
            *c = Arc::new(certs);
        }
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = self.current.read().ok().map(|c| c.clone());
        certs
            .and_then(|c| c.find(hello.server_name()))
            .or_else(|| Some(self.fallback.clone()))
    }
}

/// A TLS server configuration (HTTP/1.1) that picks certificates with `resolver`.
pub fn server_config(resolver: Arc<Resolver>) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tls_secret(ns: &str, name: &str, host: &str) -> Arc<Secret> {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![host.into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let b64 = |s: String| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": ns},
                "type": "kubernetes.io/tls",
                "data": {"tls.crt": b64(cert.pem()), "tls.key": b64(key.serialize_pem())}
            }))
            .expect("secret"),
        )
    }

    #[test]
    fn sni_picks_the_certificate_of_the_host_then_wildcard_then_default() {
        let secrets = [
            tls_secret("default", "exact", "a.example.com"),
            tls_secret("default", "wild", "*.example.com"),
            tls_secret("default", "plain", "anything"),
        ];
        let find = |ns: &str, name: &str| {
            secrets
                .iter()
                .find(|s| {
                    s.metadata.namespace.as_deref() == Some(ns)
                        && s.metadata.name.as_deref() == Some(name)
                })
                .cloned()
        };
        let ing: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "i", "namespace": "default"},
            "spec": {"tls": [
                {"hosts": ["a.example.com"], "secretName": "exact"},
                {"hosts": ["*.example.com"], "secretName": "wild"},
                {"secretName": "plain"},
                {"hosts": ["gone.example.org"], "secretName": "missing"},
            ]}
        }))
        .expect("ingress");
        let certs = Certs::build([&ing], find);
        let chain = |n: Option<&str>| certs.find(n).map(|k| k.cert[0].clone());
        let of = |s: &str| {
            from_secret(&find("default", s).expect("secret"))
                .expect("usable")
                .cert[0]
                .clone()
        };
        assert_eq!(chain(Some("A.example.com")), Some(of("exact")));
        assert_eq!(chain(Some("b.example.com")), Some(of("wild")));
        assert_eq!(chain(Some("b.c.example.com")), Some(of("plain")));
        assert_eq!(chain(Some("gone.example.org")), Some(of("plain")));
        assert_eq!(chain(None), Some(of("plain")));
    }

    #[test]
    fn unusable_secrets_say_why() {
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": "bad", "namespace": "ns"},
            "data": {"tls.key": "bm8ga2V5"}
        }))
        .expect("secret");
        let e = from_secret(&s).expect_err("no certificate");
        assert_eq!(e.to_string(), "secret ns/bad has no tls.crt");
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": "bad", "namespace": "ns"},
            "data": {"tls.crt": "bm90IGEgY2VydA==", "tls.key": "bm8ga2V5"}
        }))
        .expect("secret");
        let e = from_secret(&s).expect_err("no cert");
        assert_eq!(e.to_string(), "secret ns/bad: tls.crt holds no certificate");
    }
}
