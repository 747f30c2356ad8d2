//! Pulling and pushing wasm images over the OCI distribution protocol (`oci-client`).
//!
//! Accepted on pull, in this order:
//! - the CNCF wasm OCI artifact (config `application/vnd.wasm.config.v0+json`, one
//!   `application/wasm` layer), as `wkg`, `oci-wasm` and runwasi's wasm artifacts
//!   are written, and the older `application/vnd.wasm.content.layer.v1+wasm` layers
//!   (wasm-to-oci, Krustlet);
//! - any single-layer image whose layer is itself a wasm component or module.
//!
//! Index manifests resolve to their `wasm` architecture entry (os `wasip1`, `wasip2`
//! or `wasi`). Blobs are checked against their digest (by `oci-client`, and again
//! here). Registries on `localhost` or a loopback address are spoken to over plain
//! HTTP, as containerd does; all others over HTTPS (rustls, system roots).
//! [`push`] writes the CNCF layout, so an image moves unchanged to a cluster with a
//! wasm shim.

use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{ImageIndexEntry, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use serde_json::json;

use super::reference::Reference;
use super::store::digest;
use super::wasm;

/// Media type of the CNCF wasm artifact's config.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Media type of the CNCF wasm artifact's layer.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Layer media types that hold raw wasm.
const WASM_LAYER_MEDIA_TYPES: &[&str] = &[
    WASM_LAYER_MEDIA_TYPE,
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/vnd.module.wasm.content.layer.v1+wasm",
];
/// Larger layers are refused rather than read into memory.
const MAX_LAYER: i64 = 512 << 20;

/// Why a pull or push failed. The messages follow containerd's, which the kubelet
/// shows in `kubectl describe`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry has no such tag or digest (or repository).
    #[error("failed to resolve reference \"{reference}\": {reference}: not found")]
    NotFound {
        /// The normalized reference.
        reference: String,
    },
    /// The registry refused the credentials (or wanted some).
    #[error(
        "failed to resolve reference \"{reference}\": pull access denied, repository does not exist or may require authorization: {detail}"
    )]
    Unauthorized {
        /// The normalized reference.
        reference: String,
        /// What the registry said.
        detail: String,
    },
    /// The registry could not be reached or answered with an error.
    #[error("failed to resolve reference \"{reference}\": {detail}")]
    Resolve {
        /// The normalized reference.
        reference: String,
        /// Why.
        detail: String,
    },
    /// A blob could not be fetched or stored.
    #[error("failed to fetch {digest}: {detail}")]
    Fetch {
        /// The blob.
        digest: String,
        /// Why.
        detail: String,
    },
    /// The image holds no wasm minke can run.
    #[error("{0}")]
    NotWasm(String),
    /// Pushing failed.
    #[error("failed to push \"{reference}\": {detail}")]
    Push {
        /// The normalized reference.
        reference: String,
        /// Why.
        detail: String,
    },
}

impl Error {
    /// Whether the registry does not have the image.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

/// Shorthand for registry results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Basic-auth credentials for one registry (from an `imagePullSecret`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A pulled image.
#[derive(Debug)]
pub struct Pulled {
    /// The wasm bytes, checked against their digest and validated.
    pub bytes: Vec<u8>,
    /// The manifest's digest (what `name@digest` pins).
    pub manifest_digest: String,
}

fn auth(c: Option<&Credentials>) -> RegistryAuth {
    c.map_or(RegistryAuth::Anonymous, |c| {
        RegistryAuth::Basic(c.username.clone(), c.password.clone())
    })
}

/// The index entry for wasm, if the image is multi-platform.
fn wasm_platform(entries: &[ImageIndexEntry]) -> Option<String> {
    entries
        .iter()
        .find(|e| {
            e.platform.as_ref().is_some_and(|p| {
                p.architecture.to_string() == "wasm"
                    && matches!(p.os.to_string().as_str(), "wasip1" | "wasip2" | "wasi")
            })
        })
        .or_else(|| entries.first())
        .map(|e| e.digest.clone())
}

fn client(r: &Reference) -> oci_client::Client {
    // reqwest is built without a default crypto provider; use ring, as kube does.
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let protocol = if r.is_loopback_registry() {
        ClientProtocol::HttpsExcept(vec![r.registry().to_string()])
    } else {
        ClientProtocol::Https
    };
    oci_client::Client::new(ClientConfig {
        protocol,
        platform_resolver: Some(Box::new(wasm_platform)),
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        user_agent: concat!("minke/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    })
}

fn oci_ref(r: &Reference) -> oci_client::Reference {
    let (registry, repo) = (r.registry().to_string(), r.repository().to_string());
    match (r.tag(), r.digest()) {
        (_, Some(d)) => oci_client::Reference::with_digest(registry, repo, d.to_string()),
        (Some(t), None) => oci_client::Reference::with_tag(registry, repo, t.to_string()),
        (None, None) => oci_client::Reference::with_tag(registry, repo, "latest".into()),
    }
}

/// An error and its causes on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn resolve_error(r: &Reference, e: OciDistributionError) -> Error {
    let reference = r.to_string();
    let codes: Vec<&OciErrorCode> = match &e {
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().map(|e| &e.code).collect()
        }
        _ => Vec::new(),
    };
    let not_found = matches!(e, OciDistributionError::ImageManifestNotFoundError(_))
        || codes.iter().any(|c| {
            matches!(
                c,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        });
    let denied = matches!(
        e,
        OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_)
    ) || codes
        .iter()
        .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied));
    if not_found {
        Error::NotFound { reference }
    } else if denied {
        Error::Unauthorized {
            reference,
            detail: chain(&e),
        }
    } else {
        Error::Resolve {
            reference,
            detail: chain(&e),
        }
    }
}

/// The manifest digest `r` resolves to now (a HEAD request: nothing downloaded).
pub async fn resolve(r: &Reference, creds: Option<&Credentials>) -> Result<String> {
    client(r)
        .fetch_manifest_digest(&oci_ref(r), &auth(creds))
        .await
        .map_err(|e| resolve_error(r, e))
}

/// Which layer holds the wasm.
fn wasm_layer<'m>(r: &Reference, manifest: &'m OciImageManifest) -> Result<&'m OciDescriptor> {
    let wasm: Vec<_> = manifest
        .layers
        .iter()
        .filter(|l| WASM_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()))
        .collect();
    match (wasm.as_slice(), manifest.layers.as_slice()) {
        ([one], _) => Ok(one),
        ([], [one]) => Ok(one),
        ([], layers) => Err(Error::NotWasm(format!(
            "image \"{r}\" has {} layers and none is wasm (media types: {})",
            layers.len(),
            layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        (many, _) => Err(Error::NotWasm(format!(
            "image \"{r}\" has {} wasm layers; a container image holds one component",
            many.len()
        ))),
    }
}

/// Pull the wasm of `r`: manifest (resolving an index to its wasm entry), then the
/// one wasm layer, checked against its digest and validated as wasm.
pub async fn pull(r: &Reference, creds: Option<&Credentials>) -> Result<Pulled> {
    let client = client(r);
    let oref = oci_ref(r);
    let (manifest, manifest_digest) = client
        .pull_image_manifest(&oref, &auth(creds))
        .await
        .map_err(|e| resolve_error(r, e))?;
    let layer = wasm_layer(r, &manifest)?;
    if layer.size > MAX_LAYER {
        return Err(Error::NotWasm(format!(
            "layer {} of \"{r}\" is {} bytes, more than the {MAX_LAYER} a wasm image may have",
            layer.digest, layer.size
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(layer.size).unwrap_or(0));
    client
        .pull_blob(&oref, layer, &mut bytes)
        .await
        .map_err(|e| Error::Fetch {
            digest: layer.digest.clone(),
            detail: chain(&e),
        })?;
    let actual = digest(&bytes);
    if actual != layer.digest {
        return Err(Error::Fetch {
            digest: layer.digest.clone(),
            detail: format!("content hashes to {actual}"),
        });
    }
    wasm::validate(&bytes).map_err(|e| {
        Error::NotWasm(format!(
            "layer {} ({}) of \"{r}\" is not a wasm component or module: {e}",
            layer.digest, layer.media_type
        ))
    })?;
    Ok(Pulled {
        bytes,
        manifest_digest,
    })
}

/// Push `bytes` (a validated component or module) to `r` as a CNCF wasm OCI
/// artifact; returns the manifest digest.
pub async fn push(r: &Reference, bytes: &[u8], creds: Option<&Credentials>) -> Result<String> {
    let push_error = |detail: String| Error::Push {
        reference: r.to_string(),
        detail,
    };
    let kind = wasm::validate(bytes).map_err(|e| push_error(e.to_string()))?;
    let layer_digest = digest(bytes);
    let mut config = json!({
        "created": jiff::Timestamp::now().to_string(),
        "architecture": "wasm",
        "os": if kind == wasm::Kind::Component { "wasip2" } else { "wasip1" },
        "layerDigests": [layer_digest],
    });
    if kind == wasm::Kind::Component {
        let (imports, exports) = wasm::component_interfaces(bytes);
        config["component"] = json!({"imports": imports, "exports": exports, "target": null});
    }
    let config = Config {
        data: serde_json::to_vec(&config)
            .map_err(|e| push_error(e.to_string()))?
            .into(),
        media_type: WASM_CONFIG_MEDIA_TYPE.to_string(),
        annotations: None,
    };
    let layers = vec![ImageLayer {
        data: bytes.to_vec().into(),
        media_type: WASM_LAYER_MEDIA_TYPE.to_string(),
        annotations: None,
    }];
    let mut manifest = OciImageManifest::build(&layers, &config, None);
    manifest.media_type = Some("application/vnd.oci.image.manifest.v1+json".into());
    let client = client(r);
    let oref = oci_ref(r);
    client
        .push(&oref, &layers, config, &auth(creds), Some(manifest))
        .await
        .map_err(|e| push_error(chain(&e)))?;
    client
        .fetch_manifest_digest(&oref, &auth(creds))
        .await
        .map_err(|e| push_error(chain(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(layers: &[&str]) -> OciImageManifest {
        OciImageManifest {
            layers: layers
                .iter()
                .map(|m| OciDescriptor {
                    media_type: (*m).to_string(),
                    ..OciDescriptor::default()
                })
                .collect(),
            ..OciImageManifest::default()
        }
    }

    #[test]
    fn the_wasm_layer_is_chosen_by_media_type_or_as_the_only_layer() {
        let r: Reference = "127.0.0.1:5000/x:v1".parse().expect("ref");
        let m = manifest(&[
            "application/vnd.oci.image.layer.v1.tar",
            WASM_LAYER_MEDIA_TYPE,
        ]);
        assert_eq!(
            wasm_layer(&r, &m).expect("layer").media_type,
            WASM_LAYER_MEDIA_TYPE
        );
        let m = manifest(&["application/octet-stream"]);
        assert!(wasm_layer(&r, &m).is_ok());
        let m = manifest(&["a/tar", "b/tar"]);
        assert!(matches!(wasm_layer(&r, &m), Err(Error::NotWasm(_))));
        let m = manifest(&[WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE]);
        assert!(matches!(wasm_layer(&r, &m), Err(Error::NotWasm(_))));
    }

    #[test]
    fn credentials_never_show_their_password() {
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
