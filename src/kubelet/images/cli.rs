//! What `minke image` does and prints: `import`, `ls` (a table like `crictl images`)
//! and `rm`, over the [`Store`] of a data dir plus the built-in images.

use std::path::Path;

use super::builtin;
use super::reference::Reference;
use super::store::{self, Store, digest};

/// Import a wasm file as `name`; returns the line to print (the digest).
pub fn import(store: &Store, file: &Path, name: &str) -> store::Result<String> {
    let image = store.import_file(file, name)?;
    Ok(format!("{}: {}", image.reference(), image.digest))
}

/// Remove `name`; built-in images cannot be removed.
pub fn rm(store: &Store, name: &str) -> store::Result<String> {
    if builtin::builtin(name).is_some() {
        return Err(store::Error::NotFound(format!(
            "{name} (built-in images cannot be removed)"
        )));
    }
    let r: Reference = name.parse()?;
    let image = store.remove(&r)?;
    Ok(format!("Deleted: {}", image.reference()))
}

/// The image table: built-in images first, then the store's.
pub fn ls(store: &Store) -> store::Result<String> {
    let mut rows = vec![["IMAGE", "TAG", "DIGEST", "SIZE"].map(String::from)];
    for (name, bytes) in builtin::all() {
        rows.push([
            format!("minke/{name}"),
            "latest".into(),
            short(&digest(bytes)),
            human_size(bytes.len() as u64),
        ]);
    }
    for image in store.list()? {
        rows.push([
            image.name.clone(),
            image.tag.clone().unwrap_or_else(|| "<none>".into()),
            short(&image.digest),
            human_size(image.size),
        ]);
    }
    Ok(render(&rows))
}

fn render(rows: &[[String; 4]]) -> String {
    let mut widths = [0usize; 4];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The first 12 hex digits of a digest, as `docker images` shows IDs.
fn short(digest: &str) -> String {
    digest
        .strip_prefix("sha256:")
        .unwrap_or(digest)
        .chars()
        .take(12)
        .collect()
}

/// Decimal units with three significant digits, as crictl prints sizes
/// (`go-units.HumanSizeWithPrecision(size, 3)`): `512B`, `45.7kB`, `2.14MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    #[allow(clippy::cast_precision_loss)] // display only
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    // `%.3g`: three significant digits, trailing zeros dropped.
    let decimals = if size >= 100.0 {
        0
    } else if size >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{size:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_crictl() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(45_678), "45.7kB");
        assert_eq!(human_size(2_140_000), "2.14MB");
        assert_eq!(human_size(1_000_000), "1MB");
    }

    #[test]
    fn ls_lists_built_ins_and_imports_and_rm_refuses_unknown_names() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::new(dir.path());
        let file = dir.path().join("m.wasm");
        std::fs::write(&file, b"\0asm\x01\0\0\0").expect("write");
        let printed = import(&store, &file, "demo/m:v1").expect("import");
        assert!(
            printed.starts_with("docker.io/demo/m:v1: sha256:"),
            "{printed}"
        );
        let table = ls(&store).expect("ls");
        let lines: Vec<_> = table.lines().collect();
        assert!(
            lines[0].starts_with("IMAGE") && lines[0].ends_with("SIZE"),
            "{table}"
        );
        assert!(table.contains("minke/hello"), "{table}");
        let row = lines
            .iter()
            .find(|l| l.contains("docker.io/demo/m"))
            .expect(&table);
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>()[1..],
            ["v1", &short(&digest(b"\0asm\x01\0\0\0")), "8B"]
        );
        assert!(rm(&store, "demo/m:v2").expect_err("unknown").is_not_found());
        assert!(rm(&store, "minke/hello").is_err());
        assert_eq!(
            rm(&store, "demo/m:v1").expect("rm"),
            "Deleted: docker.io/demo/m:v1"
        );
    }
}
