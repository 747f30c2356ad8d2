//! Writing the `minke` cluster, user and context into a kubeconfig, as kind does:
//! other entries are left alone, and `current-context` moves to `minke`.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_yaml::{Mapping, Value};

/// Kubeconfig failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the file.
    #[error("kubeconfig {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// The default kubeconfig path: the first entry of `$KUBECONFIG`, else `~/.kube/config`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("KUBECONFIG").filter(|k| !k.is_empty()) {
        return std::env::split_paths(&k).next();
    }
    dirs::home_dir().map(|h| h.join(".kube").join("config"))
}

fn named(name: &str, key: &str, body: Value) -> Value {
    let mut m = Mapping::new();
    m.insert("name".into(), name.into());
    m.insert(key.into(), body);
    Value::Mapping(m)
}

/// Insert or replace the entry called `name` in the list at `key`.
fn upsert(doc: &mut Mapping, key: &str, entry: Value, name: &str) {
    let list = doc
        .entry(key.into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if !list.is_sequence() {
        *list = Value::Sequence(Vec::new());
    }
    if let Value::Sequence(items) = list {
        items.retain(|i| i.get("name").and_then(Value::as_str) != Some(name));
        items.push(entry);
    }
}

/// A kubeconfig document holding only the `minke` context.
pub fn render(context: &str, server: &str, ca_pem: &str, token: &str) -> String {
    let mut doc = Mapping::new();
    merge_into(&mut doc, context, server, ca_pem, token);
    serde_yaml::to_string(&Value::Mapping(doc)).unwrap_or_default()
}

fn merge_into(doc: &mut Mapping, context: &str, server: &str, ca_pem: &str, token: &str) {
    doc.insert("apiVersion".into(), "v1".into());
    doc.insert("kind".into(), "Config".into());
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let mut cluster = Mapping::new();
    cluster.insert("server".into(), server.into());
    cluster.insert("certificate-authority-data".into(), ca.into());
    upsert(
        doc,
        "clusters",
        named(context, "cluster", Value::Mapping(cluster)),
        context,
    );
    let mut user = Mapping::new();
    user.insert("token".into(), token.into());
    upsert(
        doc,
        "users",
        named(context, "user", Value::Mapping(user)),
        context,
    );
    let mut ctx = Mapping::new();
    ctx.insert("cluster".into(), context.into());
    ctx.insert("user".into(), context.into());
    upsert(
        doc,
        "contexts",
        named(context, "context", Value::Mapping(ctx)),
        context,
    );
    doc.insert("current-context".into(), context.into());
    doc.entry("preferences".into())
        .or_insert_with(|| Value::Mapping(Mapping::new()));
}

/// Merge the context into the kubeconfig at `path` (created if missing).
pub fn merge(
    path: &Path,
    context: &str,
    server: &str,
    ca_pem: &str,
    token: &str,
) -> Result<(), Error> {
    let err = |m: String| Error::File {
        path: path.into(),
        message: m,
    };
    let mut doc = match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Mapping::new(),
        Ok(text) => match serde_yaml::from_str::<Value>(&text)
            .map_err(|e| err(format!("not valid YAML: {e}")))?
        {
            Value::Mapping(m) => m,
            Value::Null => Mapping::new(),
            _ => return Err(err("not a kubeconfig document".into())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Mapping::new(),
        Err(e) => return Err(err(e.to_string())),
    };
    merge_into(&mut doc, context, server, ca_pem, token);
    let text = serde_yaml::to_string(&Value::Mapping(doc)).map_err(|e| err(e.to_string()))?;
    crate::pki::write_private(path, &text).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_other_contexts_and_switches_current_context() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster: {server: https://prod}\ncontexts:\n- name: prod\n  context: {cluster: prod, user: prod}\ncurrent-context: prod\nusers:\n- name: prod\n  user: {token: x}\n",
        )
        .expect("write");
        merge(&path, "minke", "https://127.0.0.1:1", "PEM", "tok").expect("merge");
        merge(&path, "minke", "https://127.0.0.1:2", "PEM", "tok").expect("merge again");
        let doc: Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).expect("read")).expect("yaml");
        assert_eq!(doc["current-context"], "minke");
        let clusters = doc["clusters"].as_sequence().expect("clusters");
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[1]["cluster"]["server"], "https://127.0.0.1:2");
        assert_eq!(clusters[0]["name"], "prod");
    }
}
