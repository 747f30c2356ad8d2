//! Built-in images: the guests under `guests/`, embedded in the binary as
//! `minke/<name>`; always present, never pulled.
//!
//! Each guest's component is committed next to its sources with a hash of them
//! (`guests/<name>/SOURCE_HASH`, written by `scripts/build-guests.sh`); a test fails
//! when sources change without a rebuild, so tests and CI never need the guest
//! toolchain.

/// Name and component bytes of every built-in image.
const BUILTINS: &[(&str, &[u8])] = &[
    (
        "crasher",
        include_bytes!("../../../guests/crasher/crasher.wasm"),
    ),
    ("echo", include_bytes!("../../../guests/echo/echo.wasm")),
    ("hello", include_bytes!("../../../guests/hello/hello.wasm")),
    ("hog", include_bytes!("../../../guests/hog/hog.wasm")),
    ("kv", include_bytes!("../../../guests/kv/kv.wasm")),
    (
        "spinner",
        include_bytes!("../../../guests/spinner/spinner.wasm"),
    ),
    (
        "toolbox",
        include_bytes!("../../../guests/toolbox/toolbox.wasm"),
    ),
];

/// The component of a built-in image reference: `minke/hello`, `minke/hello:latest`,
/// or `docker.io/minke/hello` style prefixes are not built-in.
pub fn builtin(image: &str) -> Option<&'static [u8]> {
    let rest = image.strip_prefix("minke/")?;
    let name = rest.split_once(':').map_or(rest, |(n, _)| n);
    BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// Names of the built-in images.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(n, _)| *n)
}

/// Name and bytes of every built-in image.
pub fn all() -> impl Iterator<Item = (&'static str, &'static [u8])> {
    BUILTINS.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::path::{Path, PathBuf};

    fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
    }

    /// The same hash as scripts/guest_hash.py.
    fn source_hash(root: &Path, name: &str) -> String {
        let mut files = vec![
            root.join("Cargo.toml"),
            root.join("Cargo.lock"),
            root.join(name).join("Cargo.toml"),
        ];
        files_under(&root.join(name).join("src"), &mut files);
        let rel = |p: &PathBuf| {
            p.strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/")
        };
        files.sort_by_key(rel);
        let mut h = Sha256::new();
        for f in &files {
            h.update(rel(f).as_bytes());
            h.update([0]);
            h.update(std::fs::read(f).expect("read source"));
            h.update([0]);
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn guest_wasm_files_match_their_sources() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("guests");
        for name in builtin_names() {
            let recorded =
                std::fs::read_to_string(root.join(name).join("SOURCE_HASH")).expect("SOURCE_HASH");
            assert_eq!(
                recorded.trim(),
                source_hash(&root, name),
                "guests/{name} changed since its .wasm was built: run scripts/build-guests.sh and commit the result"
            );
        }
    }

    #[test]
    fn builtin_images_resolve_with_or_without_a_tag() {
        assert!(builtin("minke/hello").is_some());
        assert!(builtin("minke/toolbox:latest").is_some());
        assert!(builtin("minke/nope").is_none());
        assert!(builtin("hello").is_none());
    }
}
