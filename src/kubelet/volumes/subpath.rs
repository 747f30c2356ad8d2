//! `subPath` and `subPathExpr`: part of a volume mounted on its own, resolved
//! inside the volume without following a symlink out of it (the kubelet's
//! `SafeMakeDir` and `PrepareSafeSubpath`).
//!
//! WASI preopens are dirs only, so a subPath naming a file (a configMap key
//! mounted at `/etc/game.properties`) is offered as a per-container dir holding a
//! hard link to just that file, preopened at the mountPath's parent. The link
//! keeps the file as it was when the container started: a later configMap edit
//! does not reach it, which is Kubernetes' own subPath behaviour.

use std::path::{Component, Path, PathBuf};

use super::error::Error;

/// The kubelet's checks on a (possibly expanded) subPath.
pub(super) fn validate(sub: &str) -> Result<(), Error> {
    if sub.starts_with('/') {
        return Err(Error::SubPath(format!(
            "error SubPath `{sub}` must not be an absolute path"
        )));
    }
    if sub.split(['/', '\\']).any(|p| p == "..") {
        return Err(Error::SubPath(format!(
            "unable to provision SubPath `{sub}`: must not contain '..'"
        )));
    }
    Ok(())
}

/// `ExpandContainerVolumeMounts`: `$(VAR)` from the container's env; a reference
/// to an unset or empty variable is an error.
pub(super) fn expand(expr: &str, env: &[(String, String)]) -> Result<String, Error> {
    let mut missing = std::collections::BTreeSet::new();
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after.strip_prefix('(').and_then(|a| a.split_once(')')) {
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) if !v.is_empty() => out.push_str(v),
                _ => {
                    missing.insert(name.to_string());
                }
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(Error::SubPath(format!(
            "missing value for {}",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        )))
    }
}

/// Resolve `sub` inside the volume dir `root`, creating missing dirs one at a
/// time; an existing symlink is followed only when it stays inside the volume.
/// Returns the canonical path (a dir, or the file a subPath names).
pub(super) fn resolve(root: &Path, sub: &str) -> std::io::Result<PathBuf> {
    let root = root.canonicalize()?;
    let escape = |p: &Path| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} leads out of the volume", p.display()),
        )
    };
    let parts: Vec<Component> = Path::new(sub).components().collect();
    let mut current = root.clone();
    for (i, part) in parts.iter().enumerate() {
        let Component::Normal(name) = part else {
            if matches!(part, Component::CurDir) {
                continue;
            }
            return Err(escape(Path::new(sub)));
        };
        let next = current.join(name);
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = next.canonicalize()?;
                if !target.starts_with(&root) {
                    return Err(escape(&next));
                }
                current = target;
            }
            Ok(m) if m.is_dir() => current = next,
            Ok(_) if i + 1 == parts.len() => current = next,
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", next.display()),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // create_dir does not follow a symlink raced into place: it fails.
                std::fs::create_dir(&next)?;
                current = next;
            }
            Err(e) => return Err(e),
        }
    }
    let resolved = current.canonicalize()?;
    if resolved.starts_with(&root) {
        Ok(resolved)
    } else {
        Err(escape(&resolved))
    }
}

/// Offer the file `file` at the guest path `dir/name` through the per-container
/// host dir `host_dir` (preopened at `dir`): a hard link, or a copy when the file
/// is on another filesystem. Returns whether it had to be copied (the mount is
/// then read-only, since writes would not reach the original).
pub(super) fn link_file(file: &Path, host_dir: &Path, name: &str) -> std::io::Result<bool> {
    std::fs::create_dir_all(host_dir)?;
    let target = host_dir.join(name);
    match std::fs::remove_file(&target) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    match std::fs::hard_link(file, &target) {
        Ok(()) => Ok(false),
        Err(e) => {
            tracing::debug!(file = %file.display(), error = %e, "hard link failed; copying the subPath file");
            std::fs::copy(file, &target)?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_paths_are_created_inside_and_symlinks_out_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let vol = dir.path().join("vol");
        std::fs::create_dir_all(&vol).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("secret")).expect("mkdir");
        std::os::unix::fs::symlink(dir.path().join("secret"), vol.join("out")).expect("ln");
        std::os::unix::fs::symlink("../secret", vol.join("rel")).expect("ln");
        std::fs::create_dir_all(vol.join("in")).expect("mkdir");
        std::os::unix::fs::symlink("in", vol.join("ok")).expect("ln");

        let made = resolve(&vol, "a/b").expect("made");
        assert!(made.is_dir() && made.ends_with("vol/a/b"));
        assert!(resolve(&vol, "out").is_err());
        assert!(resolve(&vol, "out/x").is_err());
        assert!(
            !dir.path().join("secret/x").exists(),
            "nothing created outside"
        );
        assert!(resolve(&vol, "rel").is_err());
        assert!(resolve(&vol, "ok/").expect("inside").ends_with("vol/in"));
    }

    #[test]
    fn sub_path_exprs_expand_from_env_and_missing_values_fail() {
        let env = vec![
            ("POD".to_string(), "web-0".to_string()),
            ("E".to_string(), String::new()),
        ];
        assert_eq!(expand("logs/$(POD)", &env).expect("expand"), "logs/web-0");
        let err = expand("$(NOPE)/$(E)", &env).expect_err("missing");
        assert_eq!(err.to_string(), "missing value for E, NOPE");
        assert!(validate("/abs").is_err());
        assert!(validate("a/../b").is_err());
        assert!(validate("a/b").is_ok());
    }
}
