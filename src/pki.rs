//! Cluster credentials: a CA and API serving certificate, and the admin bearer token.
//!
//! The CA key and the token are generated on first start and kept in `DATA/pki`, so
//! kubeconfigs stay valid across restarts; the serving certificate is re-issued by
//! the CA at every start, for whatever address the server listens on.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// PKI failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing files under the data dir.
    #[error("pki file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Generating or parsing keys and certificates.
    #[error("generating certificates: {0}")]
    Certificate(String),
}

/// Shorthand for PKI results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn cert_err(e: impl std::fmt::Display) -> Error {
    Error::Certificate(e.to_string())
}

/// The credentials a cluster serves and hands to clients.
#[derive(Clone)]
pub struct Credentials {
    /// CA certificate (PEM) clients trust.
    pub ca_pem: String,
    /// Serving certificate chain and key for the TLS listener.
    pub server_config: Arc<rustls::ServerConfig>,
    /// The admin bearer token.
    pub token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

fn ca_params() -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    p.distinguished_name.push(DnType::CommonName, "minke-ca");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(p)
}

fn read_or_create(path: &Path, create: impl FnOnce() -> Result<String>) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let s = create()?;
            write_private(path, &s)?;
            Ok(s)
        }
        Err(source) => Err(Error::Io {
            path: path.into(),
            source,
        }),
    }
}

/// Write a file readable by its owner only.
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<()> {
    let io = |source| Error::Io {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(contents.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Load (or create) the credentials; `dir = None` keeps everything in memory.
/// `hosts` are extra names and addresses the serving certificate must cover.
pub fn load(dir: Option<&Path>, hosts: &[String]) -> Result<Credentials> {
    let ca_key_pem = match dir {
        Some(d) => read_or_create(&d.join("ca.key"), || {
            KeyPair::generate()
                .map(|k| k.serialize_pem())
                .map_err(cert_err)
        })?,
        None => KeyPair::generate().map_err(cert_err)?.serialize_pem(),
    };
    let token = match dir {
        Some(d) => read_or_create(&d.join("admin.token"), || Ok(random_token()))?
            .trim()
            .to_string(),
        None => random_token(),
    };
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(cert_err)?;
    let ca_cert = ca_params()?.self_signed(&ca_key).map_err(cert_err)?;
    let ca_pem = match dir {
        Some(d) => read_or_create(&d.join("ca.crt"), || Ok(ca_cert.pem()))?,
        None => ca_cert.pem(),
    };
    let issuer = Issuer::new(ca_params()?, ca_key);

    let mut names: Vec<String> = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut ips: Vec<IpAddr> = vec![
        "127.0.0.1".parse().map_err(cert_err)?,
        "::1".parse().map_err(cert_err)?,
        "10.96.0.1".parse().map_err(cert_err)?,
    ];
    for h in hosts {
        match h.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if !names.contains(h) => names.push(h.clone()),
            Err(_) => {}
        }
    }
    let mut params = CertificateParams::new(names).map_err(cert_err)?;
    params
        .subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let server_key = KeyPair::generate().map_err(cert_err)?;
    let server_cert = params.signed_by(&server_key, &issuer).map_err(cert_err)?;

    let chain = vec![server_cert.der().clone()];
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).map_err(cert_err)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(cert_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(cert_err)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Credentials {
        ca_pem,
        server_config: Arc::new(config),
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_persist_in_the_data_dir() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = load(Some(dir.path()), &[]).expect("first");
        let b = load(Some(dir.path()), &[]).expect("second");
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_eq!(a.token, b.token);
        assert_eq!(a.token.len(), 64);
    }
}
