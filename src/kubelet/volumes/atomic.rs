//! The kubelet's atomic writer: a volume's payload is written to a fresh
//! timestamped dir, `..data` is switched to it by one rename, and each top-level
//! entry is a symlink through `..data`, so a guest reading the volume sees either
//! the old or the new content, never a mix.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::error::Cause;

/// One file of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct File {
    /// Its content.
    pub bytes: Vec<u8>,
    /// Its permission bits (`defaultMode` or the item's `mode`).
    pub mode: u32,
}

/// A volume's content: relative path → file.
pub(super) type Payload = BTreeMap<String, File>;

/// The kubelet's default mode for projected files (0644).
pub(super) const DEFAULT_MODE: u32 = 0o644;

/// `filepath.Clean` for relative payload paths: empty and `.` parts dropped.
pub(super) fn clean(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let joined = parts.join("/");
    if path.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// The atomic writer's `validatePath`: relative, no `..` part, and not starting
/// with `..` (those names are the writer's own).
pub(super) fn validate(path: &str) -> Result<(), Cause> {
    const MAX_PATH: usize = 4096;
    const MAX_NAME: usize = 255;
    if path.is_empty() {
        return Err(Cause::InvalidPath(format!("must not be empty: {path:?}")));
    }
    if path.starts_with('/') {
        return Err(Cause::InvalidPath(format!("must be relative path: {path}")));
    }
    if path.len() > MAX_PATH {
        return Err(Cause::InvalidPath(format!(
            "must be less than or equal to {MAX_PATH} characters"
        )));
    }
    let items: Vec<&str> = path.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(Cause::InvalidPath(format!("must not contain '..': {path}")));
        }
        if item.len() > MAX_NAME {
            return Err(Cause::InvalidPath(format!(
                "filenames must be less than or equal to {MAX_NAME} characters"
            )));
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(Cause::InvalidPath(format!(
            "must not start with '..': {path}"
        )));
    }
    if items.iter().all(|i| i.is_empty() || *i == ".") {
        return Err(Cause::InvalidPath(format!("must name a file: {path}")));
    }
    Ok(())
}

/// The regular files under `dir`, by path relative to it.
fn read_tree(dir: &Path) -> Option<Payload> {
    fn walk(base: &Path, rel: &str, out: &mut Payload) -> Option<()> {
        for entry in std::fs::read_dir(base.join(rel)).ok()? {
            let entry = entry.ok()?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = entry.metadata().ok()?;
            if meta.is_dir() {
                walk(base, &path, out)?;
            } else {
                let bytes = std::fs::read(base.join(&path)).ok()?;
                let mode = meta.permissions().mode() & 0o7777;
                out.insert(path, File { bytes, mode });
            }
        }
        Some(())
    }
    let mut out = Payload::new();
    walk(dir, "", &mut out)?;
    Some(out)
}

/// Write `payload` into `dir` as the kubelet's atomic writer does. Unchanged
/// content is left alone (no new generation), so a steady volume costs reads only.
pub(super) fn write(dir: &Path, payload: &Payload) -> Result<(), Cause> {
    for path in payload.keys() {
        validate(path)?;
    }
    let current = dir.join("..data");
    if current.exists() && read_tree(&current).as_ref() == Some(payload) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(Cause::io)?;
    let stamp = format!(
        "..{}_{}",
        jiff::Timestamp::now().as_nanosecond(),
        uuid::Uuid::new_v4().simple()
    );
    let fresh = dir.join(&stamp);
    std::fs::create_dir_all(&fresh).map_err(Cause::io)?;
    for (path, file) in payload {
        let target = fresh.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(Cause::io)?;
        }
        std::fs::write(&target, &file.bytes).map_err(Cause::io)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(file.mode))
            .map_err(Cause::io)?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp).map_err(Cause::io)?;
    std::fs::rename(&tmp, &current).map_err(Cause::io)?;
    let tops: BTreeSet<&str> = payload.keys().filter_map(|k| k.split('/').next()).collect();
    for entry in std::fs::read_dir(dir).map_err(Cause::io)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") {
            if name != "..data" && name != stamp {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        } else if !tops.contains(name.as_str()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    for top in tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{top}"), &link).map_err(Cause::io)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> Payload {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    File {
                        bytes: v.as_bytes().to_vec(),
                        mode: DEFAULT_MODE,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn projection_swaps_data_atomically_and_drops_removed_keys() {
        let dir = tempfile::tempdir().expect("tmp");
        let vol = dir.path().join("config");
        write(&vol, &files(&[("a", "1"), ("b", "2")])).expect("first");
        assert_eq!(std::fs::read_to_string(vol.join("a")).expect("a"), "1");
        let first = std::fs::read_link(vol.join("..data")).expect("link");
        write(&vol, &files(&[("a", "1"), ("b", "2")])).expect("unchanged");
        assert_eq!(
            std::fs::read_link(vol.join("..data")).expect("link"),
            first,
            "unchanged content is not rewritten"
        );
        write(&vol, &files(&[("a", "9")])).expect("second");
        assert_eq!(std::fs::read_to_string(vol.join("a")).expect("a"), "9");
        assert!(!vol.join("b").exists(), "a removed key disappears");
        let stamps = std::fs::read_dir(&vol)
            .expect("dir")
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("..") && n != "..data"
            })
            .count();
        assert!(stamps <= 1, "old generations are removed");
    }

    #[test]
    fn modes_are_applied_and_a_mode_change_is_a_new_generation() {
        let dir = tempfile::tempdir().expect("tmp");
        let vol = dir.path().join("v");
        let mut payload = files(&[("nested/key", "x")]);
        write(&vol, &payload).expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&vol.join("nested/key")), 0o644);
        if let Some(f) = payload.get_mut("nested/key") {
            f.mode = 0o400;
        }
        write(&vol, &payload).expect("rewrite");
        assert_eq!(mode(&vol.join("nested/key")), 0o400);
    }

    #[test]
    fn payload_paths_cannot_leave_the_volume() {
        let dir = tempfile::tempdir().expect("tmp");
        let vol = dir.path().join("v");
        for bad in [
            "../escape",
            "/etc/passwd",
            "a/../../b",
            "..data",
            "..x/y",
            "",
        ] {
            assert!(
                write(&vol, &files(&[(bad, "x")])).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(!dir.path().join("escape").exists());
        assert_eq!(clean("./a//b/"), "a/b");
    }
}
