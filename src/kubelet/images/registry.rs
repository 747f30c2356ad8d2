//! Pulling and pushing wasm images over the OCI distribution protocol (`oci-client`).
//!
//! Accepted on pull, in this order:
//! - one layer whose media type says wasm: the CNCF wasm OCI artifact (config
//!   `application/vnd.wasm.config.v0+json`, layer `application/wasm`, as `wkg` and
//!   `oci-wasm` write it), runwasi's `application/vnd.bytecodealliance.wasm.
//!   component.layer.v0+wasm`, and the older `application/vnd.wasm.content.layer.
//!   v1+wasm` (wasm-to-oci, Krustlet);
//! - a single layer that is itself a wasm component or module;
//! - a `wasi/wasm` container image as runwasi's shims run it (`docker buildx
//!   --platform wasi/wasm`, `FROM scratch` + `COPY app.wasm /`): tar layers (plain or
//!   gzip), the file the config's `Entrypoint` names — or, without one, the only
//!   `.wasm` file — being the component.
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
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
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

/// Where the wasm is in an image.
#[derive(Debug)]
enum Source<'m> {
    /// This layer is the wasm.
    Raw(&'m OciDescriptor),
    /// These layers are a root filesystem (tar, maybe gzipped), uppermost first;
    /// the wasm is the file at this path, or the only `.wasm` file.
    Rootfs(Vec<&'m OciDescriptor>, Option<String>),
}

fn is_tar(media_type: &str) -> bool {
    media_type.contains(".tar") || media_type.ends_with("rootfs.diff.tar.gzip")
}

/// Which layer(s) hold the wasm; `config` is the image config (for `Entrypoint`).
fn wasm_source<'m>(
    r: &Reference,
    manifest: &'m OciImageManifest,
    config: &str,
) -> Result<Source<'m>> {
    let wasm: Vec<_> = manifest
        .layers
        .iter()
        .filter(|l| WASM_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()))
        .collect();
    match (wasm.as_slice(), manifest.layers.as_slice()) {
        ([one], _) => Ok(Source::Raw(one)),
        ([], [one]) if !is_tar(&one.media_type) => Ok(Source::Raw(one)),
        ([], layers) if !layers.is_empty() && layers.iter().all(|l| is_tar(&l.media_type)) => {
            let entrypoint = serde_json::from_str::<serde_json::Value>(config)
                .ok()
                .and_then(|c| {
                    c.pointer("/config/Entrypoint/0")
                        .or_else(|| c.pointer("/config/Cmd/0"))
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_string)
                });
            Ok(Source::Rootfs(layers.iter().rev().collect(), entrypoint))
        }
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

/// A file in a tar layer (gzipped or not): the one at `path`, or (without a path)
/// the only `.wasm` file.
fn file_in_tar(layer: &[u8], path: Option<&str>) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let clean = |p: &str| {
        p.trim_start_matches("./")
            .trim_start_matches('/')
            .to_string()
    };
    let want = path.map(clean);
    let reader: Box<dyn Read + '_> = if layer.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(layer))
    } else {
        Box::new(layer)
    };
    let mut archive = tar::Archive::new(reader);
    let mut found = None;
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = clean(&entry.path()?.to_string_lossy());
        let hit = match &want {
            Some(w) => &name == w,
            None => name.ends_with(".wasm"),
        };
        if hit {
            if want.is_none() && found.is_some() {
                return Ok(None); // more than one: ambiguous without an entrypoint
            }
            let limit = u64::try_from(MAX_LAYER).unwrap_or(u64::MAX);
            let mut bytes = Vec::new();
            entry.by_ref().take(limit).read_to_end(&mut bytes)?;
            found = Some(bytes);
            if want.is_some() {
                break;
            }
        }
    }
    Ok(found)
}

/// Pull the wasm of `r`: manifest (resolving an index to its wasm entry) and config,
/// then the layer(s) holding the wasm, each checked against its digest; the result
/// is validated as wasm.
pub async fn pull(r: &Reference, creds: Option<&Credentials>) -> Result<Pulled> {
    let client = client(r);
    let oref = oci_ref(r);
    let (manifest, manifest_digest, config) = client
        .pull_manifest_and_config(&oref, &auth(creds))
        .await
        .map_err(|e| resolve_error(r, e))?;
    let fetch = async |layer: &OciDescriptor| {
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
        Ok(bytes)
    };
    let (bytes, from) = match wasm_source(r, &manifest, &config)? {
        Source::Raw(layer) => (
            fetch(layer).await?,
            format!("layer {} ({})", layer.digest, layer.media_type),
        ),
        Source::Rootfs(layers, entrypoint) => {
            let mut found = None;
            for layer in layers {
                let tar = fetch(layer).await?;
                let file = file_in_tar(&tar, entrypoint.as_deref()).map_err(|e| Error::Fetch {
                    digest: layer.digest.clone(),
                    detail: format!("reading the tar layer: {e}"),
                })?;
                if let Some(bytes) = file {
                    found = Some(bytes);
                    break;
                }
            }
            let what = entrypoint.map_or_else(
                || "the only .wasm file".to_string(),
                |e| format!("entrypoint {e}"),
            );
            let bytes = found.ok_or_else(|| {
                Error::NotWasm(format!("image \"{r}\" has no {what} in its layers"))
            })?;
            (bytes, what)
        }
    };
    wasm::validate(&bytes).map_err(|e| {
        Error::NotWasm(format!(
            "{from} of \"{r}\" is not a wasm component or module: {e}"
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
    fn the_wasm_is_found_by_media_type_as_the_only_layer_or_in_a_rootfs() {
        let r: Reference = "127.0.0.1:5000/x:v1".parse().expect("ref");
        let tar = "application/vnd.oci.image.layer.v1.tar+gzip";
        let m = manifest(&[tar, WASM_LAYER_MEDIA_TYPE]);
        assert!(
            matches!(wasm_source(&r, &m, "{}"), Ok(Source::Raw(l)) if l.media_type == WASM_LAYER_MEDIA_TYPE)
        );
        let m = manifest(&["application/octet-stream"]);
        assert!(matches!(wasm_source(&r, &m, "{}"), Ok(Source::Raw(_))));
        let m = manifest(&[tar, tar]);
        let config =
            r#"{"architecture": "wasm", "os": "wasip1", "config": {"Entrypoint": ["/app.wasm"]}}"#;
        assert!(
            matches!(wasm_source(&r, &m, config), Ok(Source::Rootfs(l, Some(e))) if l.len() == 2 && e == "/app.wasm")
        );
        let m = manifest(&["a/b", "c/d"]);
        assert!(matches!(wasm_source(&r, &m, "{}"), Err(Error::NotWasm(_))));
        let m = manifest(&[WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE]);
        assert!(matches!(wasm_source(&r, &m, "{}"), Err(Error::NotWasm(_))));
    }

    fn tar_of(files: &[(&str, &[u8])], gzip: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, *data).expect("append");
        }
        let raw = b.into_inner().expect("tar");
        if !gzip {
            return raw;
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).expect("gzip");
        gz.finish().expect("gzip")
    }

    #[test]
    fn a_rootfs_layer_yields_the_entrypoint_or_the_only_wasm_file() {
        let layer = tar_of(
            &[
                ("etc/x", b"x"),
                ("app.wasm", b"\0asm1"),
                ("lib/b.wasm", b"\0asm2"),
            ],
            true,
        );
        assert_eq!(
            file_in_tar(&layer, Some("/app.wasm")).expect("read"),
            Some(b"\0asm1".to_vec())
        );
        assert_eq!(
            file_in_tar(&layer, Some("missing.wasm")).expect("read"),
            None
        );
        assert_eq!(
            file_in_tar(&layer, None).expect("read"),
            None,
            "two .wasm files"
        );
        let layer = tar_of(&[("./only.wasm", b"\0asm3")], false);
        assert_eq!(
            file_in_tar(&layer, None).expect("read"),
            Some(b"\0asm3".to_vec())
        );
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
