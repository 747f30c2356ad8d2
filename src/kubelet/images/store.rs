//! The local image store: wasm blobs content-addressed under
//! `DATA/images/blobs/sha256/<hex>`, and `DATA/images/index.json` mapping normalized
//! references to them (with size, creation time and where each came from).
//!
//! Safe for the kubelet and a separate `minke image` process at once: blobs and the
//! index are written to a temporary file and renamed into place, so readers never
//! see half a file; the index's read-modify-write holds an exclusive lock on
//! `index.lock` for the few milliseconds it takes, never across a network call.
//! Blobs are checked against their digest whenever they are read.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::reference::{self, Reference};
use super::wasm;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `writing`, ...).
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `index.json` is not what this version writes.
    #[error("reading the image index {}: {source}", path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// No image has that reference.
    #[error("image \"{0}\" not found")]
    NotFound(String),
    /// A blob's content does not match its name (disk corruption or tampering).
    #[error("blob {digest} is corrupt (its content hashes to {actual})")]
    Corrupt {
        /// The digest it is stored under.
        digest: String,
        /// What its content hashes to.
        actual: String,
    },
    /// The bytes are not a wasm component or module.
    #[error(transparent)]
    Wasm(#[from] wasm::Error),
    /// The name is not an image reference.
    #[error("invalid image name: {0}")]
    Reference(#[from] reference::Error),
}

impl Error {
    /// Whether the image simply is not in the store.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }
}

/// Shorthand for store results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// `registry/repository`, e.g. `docker.io/library/app`.
    pub name: String,
    /// The tag, absent for images pulled by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `sha256:…` of the wasm bytes (the blob's name).
    pub digest: String,
    /// Size of the wasm bytes.
    pub size: u64,
    /// When it was stored (RFC 3339).
    pub created: String,
    /// Where it came from: `file:PATH` for imports, `registry` for pulls.
    pub source: String,
    /// The registry's manifest digest, for pulled images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_digest: Option<String>,
}

impl Image {
    /// Whether this entry answers to `r`: same name and tag, or (for a digest
    /// reference) same name and manifest or content digest.
    fn matches(&self, r: &Reference) -> bool {
        if self.name != r.name() {
            return false;
        }
        match r.digest() {
            Some(d) => self.repo_digest.as_deref() == Some(d) || self.digest == d,
            None => self.tag.as_deref() == r.tag(),
        }
    }

    /// The reference this entry is stored under.
    pub fn reference(&self) -> String {
        match (&self.tag, &self.repo_digest) {
            (Some(t), _) => format!("{}:{t}", self.name),
            (None, Some(d)) => format!("{}@{d}", self.name),
            (None, None) => format!("{}@{}", self.name, self.digest),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    version: u32,
    images: Vec<Image>,
}

/// A handle on the store under one directory; cheap to clone, holds no open files.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

/// Write `bytes` to `path` through a temporary file in the same dir and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(io("writing", path)(e));
    }
    Ok(())
}

impl Store {
    /// The store under `root` (usually `DATA/images`); created on first write.
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Where the blob with `digest` lives.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs").join("sha256").join(hex)
    }

    fn read_index(&self) -> Result<Index> {
        let path = self.index_path();
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| Error::Index { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(io("reading", &path)(e)),
        }
    }

    /// Read-modify-write the index under the store's lock.
    fn update<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        fs::create_dir_all(&self.root).map_err(io("creating", &self.root))?;
        let lock_path = self.root.join("index.lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("opening", &lock_path))?;
        lock.lock().map_err(io("locking", &lock_path))?;
        let mut index = self.read_index()?;
        let out = f(&mut index)?;
        index.version = 1;
        index.images.sort_by_key(Image::reference);
        let bytes = serde_json::to_vec_pretty(&index).map_err(|source| Error::Index {
            path: self.index_path(),
            source,
        })?;
        write_atomically(&self.index_path(), &bytes)?;
        drop(lock); // unlocks
        Ok(out)
    }

    /// Every stored image, sorted by reference.
    pub fn list(&self) -> Result<Vec<Image>> {
        Ok(self.read_index()?.images)
    }

    /// The image stored under `r`, if any.
    pub fn get(&self, r: &Reference) -> Result<Option<Image>> {
        Ok(self.read_index()?.images.into_iter().find(|i| i.matches(r)))
    }

    /// The wasm bytes of `image`, checked against its digest.
    pub fn read(&self, image: &Image) -> Result<Vec<u8>> {
        let path = self.blob_path(&image.digest);
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(image.reference()),
            _ => io("reading", &path)(e),
        })?;
        let actual = digest(&bytes);
        if actual != image.digest {
            return Err(Error::Corrupt {
                digest: image.digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Whether a blob with `digest` is stored.
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }

    fn write_blob(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let path = self.blob_path(digest);
        if path.is_file() {
            return Ok(());
        }
        write_atomically(&path, bytes)
    }

    /// Store `bytes` (already validated as wasm) under `r`, replacing what `r` named
    /// before. `source` says where they came from; `repo_digest` is the registry's
    /// manifest digest for pulled images.
    pub fn put(
        &self,
        r: &Reference,
        bytes: &[u8],
        source: &str,
        repo_digest: Option<&str>,
    ) -> Result<Image> {
        let digest = digest(bytes);
        self.write_blob(&digest, bytes)?;
        let image = Image {
            name: r.name(),
            tag: if r.digest().is_some() {
                None
            } else {
                r.tag().map(str::to_string)
            },
            digest: digest.clone(),
            size: bytes.len() as u64,
            created: crate::api::clock::now(),
            source: source.to_string(),
            repo_digest: repo_digest.or(r.digest()).map(str::to_string),
        };
        self.update(|index| {
            // A concurrent `rm` of the last image using this blob may have removed it
            // between the write above and taking the lock.
            self.write_blob(&digest, bytes)?;
            index.images.retain(|i| !i.matches(r));
            index.images.push(image.clone());
            Ok(())
        })?;
        Ok(image)
    }

    /// Point `r` at an image already stored (`repo_digest` identifies it): the
    /// registry answered with a manifest we already have, so nothing is downloaded.
    pub fn tag_existing(&self, r: &Reference, existing: &Image) -> Result<Image> {
        let image = Image {
            name: r.name(),
            tag: if r.digest().is_some() {
                None
            } else {
                r.tag().map(str::to_string)
            },
            created: crate::api::clock::now(),
            ..existing.clone()
        };
        self.update(|index| {
            if !self.has_blob(&image.digest) {
                return Err(Error::NotFound(image.reference()));
            }
            index.images.retain(|i| !i.matches(r));
            index.images.push(image.clone());
            Ok(())
        })?;
        Ok(image)
    }

    /// Validate and store a wasm file under `name` (`NAME[:TAG]`).
    pub fn import_file(&self, file: &Path, name: &str) -> Result<Image> {
        let r: Reference = name.parse()?;
        let bytes = fs::read(file).map_err(io("reading", file))?;
        wasm::validate(&bytes)?;
        let abs = fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        self.put(&r, &bytes, &format!("file:{}", abs.display()), None)
    }

    /// Remove the image `r` names; its blob goes too once no other image uses it.
    pub fn remove(&self, r: &Reference) -> Result<Image> {
        self.update(|index| {
            let Some(pos) = index.images.iter().position(|i| i.matches(r)) else {
                return Err(Error::NotFound(r.to_string()));
            };
            let gone = index.images.remove(pos);
            if !index.images.iter().any(|i| i.digest == gone.digest) {
                let path = self.blob_path(&gone.digest);
                if let Err(e) = fs::remove_file(&path)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    return Err(io("removing", &path)(e));
                }
            }
            Ok(gone)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().expect("reference")
    }

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn images_are_stored_by_content_and_found_by_normalized_reference() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::new(dir.path().join("images"));
        let img = store.put(&r("app:v1"), MODULE, "test", None).expect("put");
        assert_eq!(img.name, "docker.io/library/app");
        assert_eq!(img.tag.as_deref(), Some("v1"));
        assert_eq!(img.size, 8);
        assert!(store.blob_path(&img.digest).is_file());
        let found = store.get(&r("docker.io/library/app:v1")).expect("get");
        assert_eq!(found, Some(img.clone()));
        assert_eq!(store.read(&img).expect("read"), MODULE);
        assert_eq!(store.get(&r("app:v2")).expect("get"), None);
        // Another name for the same bytes shares the blob.
        store.put(&r("other"), MODULE, "test", None).expect("put");
        assert_eq!(store.list().expect("list").len(), 2);
        store.remove(&r("app:v1")).expect("rm");
        assert!(
            store.blob_path(&img.digest).is_file(),
            "still used by other"
        );
        store.remove(&r("other:latest")).expect("rm");
        assert!(!store.blob_path(&img.digest).is_file());
        assert!(store.remove(&r("other")).expect_err("gone").is_not_found());
        let on_disk: serde_json::Value =
            serde_json::from_slice(&fs::read(store.index_path()).expect("index")).expect("json");
        assert_eq!(on_disk, serde_json::json!({"version": 1, "images": []}));
    }

    #[test]
    fn a_digest_reference_finds_the_pulled_manifest() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::new(dir.path());
        let manifest = format!("sha256:{}", "b".repeat(64));
        store
            .put(&r("ghcr.io/o/app:1.0"), MODULE, "registry", Some(&manifest))
            .expect("put");
        let by_digest = store
            .get(&r(&format!("ghcr.io/o/app@{manifest}")))
            .expect("get")
            .expect("found");
        assert_eq!(by_digest.tag.as_deref(), Some("1.0"));
        assert!(
            store
                .get(&r(&format!("ghcr.io/o/other@{manifest}")))
                .expect("get")
                .is_none()
        );
    }

    #[test]
    fn a_corrupt_blob_is_reported_not_run() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::new(dir.path());
        let img = store.put(&r("app:v1"), MODULE, "test", None).expect("put");
        fs::write(store.blob_path(&img.digest), b"\0asm\x01\0\0\0\0").expect("tamper");
        assert!(matches!(store.read(&img), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn import_refuses_files_that_are_not_wasm() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::new(dir.path().join("images"));
        let file = dir.path().join("x.wasm");
        fs::write(&file, b"#!/bin/sh").expect("write");
        assert!(matches!(
            store.import_file(&file, "x:v1"),
            Err(Error::Wasm(_))
        ));
        fs::write(&file, MODULE).expect("write");
        assert!(matches!(
            store.import_file(&file, "Bad"),
            Err(Error::Reference(_))
        ));
        let img = store.import_file(&file, "x:v1").expect("import");
        assert!(img.source.starts_with("file:"), "{}", img.source);
    }

    #[test]
    fn concurrent_writers_lose_no_entries() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::new(dir.path());
        std::thread::scope(|s| {
            for t in 0..4 {
                let store = store.clone();
                s.spawn(move || {
                    for n in 0..10 {
                        store
                            .put(&r(&format!("app{t}:v{n}")), MODULE, "test", None)
                            .expect("put");
                    }
                });
            }
        });
        assert_eq!(store.list().expect("list").len(), 40);
    }
}
