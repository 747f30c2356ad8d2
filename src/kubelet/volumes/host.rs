//! Host directories as volumes: `hostPath` (only under the cluster's allowed root,
//! checked after canonicalization so neither `..` nor a symlink leads out) with
//! its `type` checks, and `persistentVolumeClaim` resolved to the bound PV's
//! `hostPath` or `local` path.

use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource,
};
use kube::api::Api;

use super::error::{Cause, Error};

/// The path with every existing prefix resolved (symlinks, `.`), the missing
/// rest appended as written. `..` parts are refused before this is called.
fn canonical_prefix(path: &Path) -> std::io::Result<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(c) => {
                return Ok(rest.iter().rev().fold(c, |acc: PathBuf, p| acc.join(p)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(name) = existing.file_name().map(ToOwned::to_owned) else {
                    return Err(e);
                };
                rest.push(name);
                if !existing.pop() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Refuse a path outside `root` (both canonical).
fn inside(path: &Path, root: &Path, original: &str) -> Result<(), Cause> {
    if path.starts_with(root) {
        Ok(())
    } else {
        Err(Cause::Forbidden(format!(
            "hostPath \"{original}\" is outside the allowed host path root \"{}\"",
            root.display()
        )))
    }
}

/// `checkTypeInternal` of the hostPath plugin, creating what `…OrCreate` asks for.
/// An empty type performs no check; a missing path is then created as a dir, as
/// containerd does for bind mounts.
fn check_type(path: &Path, kind: &str) -> Result<(), Cause> {
    let meta = std::fs::metadata(path).ok();
    let shown = path.display().to_string();
    let fail = |what| {
        Err(Cause::HostPathType {
            path: shown.clone(),
            what,
        })
    };
    match kind {
        "" => {
            if meta.is_none() {
                std::fs::create_dir_all(path).map_err(Cause::io)?;
            }
            Ok(())
        }
        "DirectoryOrCreate" if meta.is_none() => std::fs::create_dir_all(path).map_err(Cause::io),
        "DirectoryOrCreate" | "Directory" => match meta {
            Some(m) if m.is_dir() => Ok(()),
            _ => fail("directory"),
        },
        "FileOrCreate" if meta.is_none() => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map(drop)
            .map_err(Cause::io),
        "FileOrCreate" | "File" => match meta {
            Some(m) if m.is_file() => Ok(()),
            _ => fail("file"),
        },
        "Socket" => match meta {
            Some(m) if m.file_type().is_socket() => Ok(()),
            _ => fail("socket file"),
        },
        "CharDevice" => match meta {
            Some(m) if m.file_type().is_char_device() => Ok(()),
            _ => fail("character device"),
        },
        "BlockDevice" => match meta {
            Some(m) if m.file_type().is_block_device() => Ok(()),
            _ => fail("block device"),
        },
        other => Err(Cause::Io(format!("{other} is an invalid volume type"))),
    }
}

/// A `hostPath` volume's dir or file, canonical, once it passed the root and type
/// checks. `root` is the canonical allowed root; `None` allows nothing.
pub(super) fn host_path(path: &str, kind: &str, root: Option<&Path>) -> Result<PathBuf, Cause> {
    let Some(root) = root else {
        return Err(Cause::Forbidden(format!(
            "hostPath \"{path}\" is not allowed: no host path root is configured (minke up --host-path-root)"
        )));
    };
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(Cause::Forbidden(format!(
            "hostPath \"{path}\" must be an absolute path"
        )));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(Cause::Forbidden(format!(
            "hostPath \"{path}\" must not contain '..'"
        )));
    }
    let resolved = canonical_prefix(p).map_err(Cause::io)?;
    inside(&resolved, root, path)?;
    if matches!(kind, "" | "DirectoryOrCreate") && !resolved.exists() {
        // Create one component at a time, never through a symlink raced into place.
        let rel = resolved.strip_prefix(root).map_err(Cause::io)?;
        super::subpath::resolve(root, &rel.to_string_lossy()).map_err(Cause::io)?;
    }
    check_type(&resolved, kind)?;
    // Check again now that it exists: a symlink may have appeared on the way.
    let resolved = resolved.canonicalize().map_err(Cause::io)?;
    inside(&resolved, root, path)?;
    Ok(resolved)
}

/// The dir of a `persistentVolumeClaim` volume: the claim must be Bound to a PV
/// whose `claimRef` points back at it, and the PV must be a `hostPath` or `local`
/// volume. PVs are cluster-scoped objects only an admin creates, so their paths
/// are trusted (no root check), as in Kubernetes. Returns the dir and whether the
/// claim source asks for read-only.
pub(super) async fn claim(
    client: &kube::Client,
    namespace: &str,
    volume: &str,
    src: &PersistentVolumeClaimVolumeSource,
) -> Result<PathBuf, Error> {
    let err = |reason: String| Error::Claim {
        volume: volume.to_string(),
        namespace: namespace.to_string(),
        claim: src.claim_name.clone(),
        reason,
    };
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let pvc = claims
        .get_opt(&src.claim_name)
        .await
        .map_err(|e| err(format!("failed to fetch PVC from API server: {e}")))?
        .ok_or_else(|| {
            err(format!(
                "failed to fetch PVC from API server: persistentvolumeclaims \"{}\" not found",
                src.claim_name
            ))
        })?;
    if pvc.metadata.deletion_timestamp.is_some() {
        return Err(err("PVC is being deleted".into()));
    }
    let phase = pvc.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase != Some("Bound") {
        return Err(err("PVC is not bound".into()));
    }
    let pv_name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| err("PVC has empty pvc.Spec.VolumeName".into()))?;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = pvs
        .get_opt(&pv_name)
        .await
        .map_err(|e| err(format!("failed to fetch PV {pv_name} from API server: {e}")))?
        .ok_or_else(|| {
            err(format!(
                "failed to fetch PV {pv_name} from API server: persistentvolumes \"{pv_name}\" not found"
            ))
        })?;
    let spec = pv.spec.unwrap_or_default();
    let Some(claim_ref) = &spec.claim_ref else {
        return Err(err(format!(
            "found PV object {pv_name} but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim"
        )));
    };
    // An admin pre-binding a PV may leave claimRef.uid empty (the PV binder fills
    // it in); name and namespace must match then.
    let uid = claim_ref.uid.as_deref().unwrap_or_default();
    let names_match = claim_ref.name.as_deref() == Some(src.claim_name.as_str())
        && claim_ref.namespace.as_deref() == Some(namespace);
    if (!uid.is_empty() && Some(uid) != pvc.metadata.uid.as_deref()) || !names_match {
        return Err(err(format!(
            "found PV object {pv_name} but its pv.Spec.ClaimRef.UID ({uid}) does not point to claim.UID ({})",
            pvc.metadata.uid.clone().unwrap_or_default()
        )));
    }
    let setup = |cause: Cause| Error::SetUp {
        volume: pv_name.clone(),
        cause,
    };
    if let Some(hp) = &spec.host_path {
        let p = Path::new(&hp.path);
        if !p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
            return Err(setup(Cause::Forbidden(format!(
                "hostPath \"{}\" must be an absolute path without '..'",
                hp.path
            ))));
        }
        check_type(p, hp.type_.as_deref().unwrap_or_default()).map_err(setup)?;
        return p.canonicalize().map_err(|e| setup(Cause::io(e)));
    }
    if let Some(local) = &spec.local {
        let p = Path::new(&local.path);
        if !p.exists() {
            return Err(setup(Cause::Io(format!(
                "path \"{}\" does not exist",
                local.path
            ))));
        }
        return p.canonicalize().map_err(|e| setup(Cause::io(e)));
    }
    Err(setup(Cause::Unsupported("this type of persistent".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_outside_the_root_are_refused_even_through_symlinks() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("data")).expect("mkdir");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, root.join("link")).expect("symlink");
        let root = root.canonicalize().expect("canon");
        let p = |s: &Path| s.display().to_string();

        assert!(host_path(&p(&root.join("data")), "Directory", Some(&root)).is_ok());
        assert!(
            host_path(&p(&root.join("data")), "", None).is_err(),
            "no root: nothing"
        );
        let through_link = host_path(&p(&root.join("link")), "", Some(&root));
        assert!(
            matches!(through_link, Err(Cause::Forbidden(_))),
            "{through_link:?}"
        );
        let below_link = host_path(&p(&root.join("link/new")), "DirectoryOrCreate", Some(&root));
        assert!(
            matches!(below_link, Err(Cause::Forbidden(_))),
            "{below_link:?}"
        );
        assert!(!outside.join("new").exists(), "nothing created outside");
        let dotdot = host_path(&format!("{}/../outside", p(&root)), "", Some(&root));
        assert!(matches!(dotdot, Err(Cause::Forbidden(_))), "{dotdot:?}");
        assert!(host_path("relative", "", Some(&root)).is_err());
    }

    #[test]
    fn type_checks_follow_the_host_path_plugin() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().canonicalize().expect("canon");
        let p = |s: &str| root.join(s).display().to_string();
        let missing = host_path(&p("missing"), "Directory", Some(&root)).expect_err("missing");
        assert_eq!(
            missing.to_string(),
            format!(
                "hostPath type check failed: {} is not a directory",
                p("missing")
            )
        );
        host_path(&p("made/deep"), "DirectoryOrCreate", Some(&root)).expect("created");
        assert!(root.join("made/deep").is_dir());
        host_path(&p("made/file"), "FileOrCreate", Some(&root)).expect("file");
        assert!(root.join("made/file").is_file());
        assert!(host_path(&p("made/file"), "Directory", Some(&root)).is_err());
        assert!(host_path(&p("made/deep"), "File", Some(&root)).is_err());
        assert!(host_path(&p("made"), "Socket", Some(&root)).is_err());
        assert!(host_path(&p("made"), "Bogus", Some(&root)).is_err());
    }
}
