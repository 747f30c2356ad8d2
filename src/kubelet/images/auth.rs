//! Registry credentials from `imagePullSecrets`: `kubernetes.io/dockerconfigjson`
//! (and the older `kubernetes.io/dockercfg`) secrets, matched to a registry host as
//! the kubelet's keyring matches them.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;

use super::registry::Credentials;

#[derive(Debug, Default, Deserialize)]
struct Entry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    /// `base64(user:password)`.
    #[serde(default)]
    auth: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

impl Entry {
    fn credentials(&self) -> Option<Credentials> {
        if let (Some(u), Some(p)) = (&self.username, &self.password)
            && !u.is_empty()
        {
            return Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            });
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.auth.as_deref()?.trim())
            .ok()?;
        let (u, p) = std::str::from_utf8(&raw).ok()?.split_once(':')?;
        Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        })
    }
}

/// The host a docker config key names: `https://index.docker.io/v1/` and
/// `registry-1.docker.io` are `docker.io`; scheme and path are dropped.
fn key_host(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        _ => host,
    }
}

/// The entries of one pull secret, by key.
fn entries(secret: &Secret) -> BTreeMap<String, Entry> {
    let data = secret.data.clone().unwrap_or_default();
    match secret.type_.as_deref() {
        Some("kubernetes.io/dockerconfigjson") => data
            .get(".dockerconfigjson")
            .and_then(|b| serde_json::from_slice::<DockerConfig>(&b.0).ok())
            .map(|c| c.auths)
            .unwrap_or_default(),
        Some("kubernetes.io/dockercfg") => data
            .get(".dockercfg")
            .and_then(|b| serde_json::from_slice(&b.0).ok())
            .unwrap_or_default(),
        _ => BTreeMap::new(),
    }
}

/// Every credential the secrets hold for `registry` (`host[:port]`), in secret
/// order; the kubelet tries each until one works.
pub fn credentials_for(registry: &str, secrets: &[Secret]) -> Vec<Credentials> {
    let want = key_host(registry);
    let mut out: Vec<Credentials> = Vec::new();
    for s in secrets {
        for (key, entry) in entries(s) {
            if key_host(&key) == want
                && let Some(c) = entry.credentials()
                && !out.contains(&c)
            {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(type_: &str, key: &str, json: serde_json::Value) -> Secret {
        Secret {
            type_: Some(type_.into()),
            data: Some(BTreeMap::from([(
                key.to_string(),
                ByteString(serde_json::to_vec(&json).expect("json")),
            )])),
            ..Secret::default()
        }
    }

    #[test]
    fn docker_config_json_entries_match_by_registry_host() {
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:s3cret");
        let s = secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            serde_json::json!({"auths": {
                "http://127.0.0.1:5000/v2/": {"auth": auth},
                "https://index.docker.io/v1/": {"username": "hub", "password": "pw"},
            }}),
        );
        let got = credentials_for("127.0.0.1:5000", std::slice::from_ref(&s));
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].username.as_str(), got[0].password.as_str()),
            ("bob", "s3cret")
        );
        assert_eq!(
            credentials_for("docker.io", std::slice::from_ref(&s))[0].username,
            "hub"
        );
        assert!(credentials_for("ghcr.io", &[s]).is_empty());
    }

    #[test]
    fn legacy_dockercfg_and_other_secret_types() {
        let s = secret(
            "kubernetes.io/dockercfg",
            ".dockercfg",
            serde_json::json!({"ghcr.io": {"username": "u", "password": "p"}}),
        );
        assert_eq!(credentials_for("ghcr.io", &[s]).len(), 1);
        let opaque = secret(
            "Opaque",
            ".dockercfg",
            serde_json::json!({"ghcr.io": {"username": "u", "password": "p"}}),
        );
        assert!(credentials_for("ghcr.io", &[opaque]).is_empty());
    }
}
