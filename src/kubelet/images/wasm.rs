//! What an image's bytes are: a wasm component or core module, checked with
//! `wasmparser` before anything is stored, and the top-level imports and exports of
//! a component (for the OCI wasm config).

use wasmparser::{Encoding, Parser, Payload, Validator, WasmFeatures};

/// Why bytes are not a runnable image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not even the wasm magic number.
    #[error("not a wasm component or module (no \\0asm header)")]
    NotWasm,
    /// The binary is malformed.
    #[error("invalid wasm: {0}")]
    Invalid(String),
}

/// A component or a core module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A component (`wasi:cli/command`, `wasi:http/proxy`, ...).
    Component,
    /// A core module (wasip1).
    Module,
}

/// Check that `bytes` are a valid component or core module and say which.
pub fn validate(bytes: &[u8]) -> Result<Kind, Error> {
    let kind = kind(bytes).ok_or(Error::NotWasm)?;
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(bytes)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(kind)
}

/// Component or module, judged by the header alone.
pub fn kind(bytes: &[u8]) -> Option<Kind> {
    if !bytes.starts_with(b"\0asm") {
        return None;
    }
    match Parser::new(0).parse(bytes, true).ok()? {
        wasmparser::Chunk::Parsed {
            payload: Payload::Version { encoding, .. },
            ..
        } => Some(match encoding {
            Encoding::Component => Kind::Component,
            Encoding::Module => Kind::Module,
        }),
        _ => None,
    }
}

/// The names a component imports and exports at its top level (nested components
/// and modules are skipped), in the order they appear.
pub fn component_interfaces(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { break };
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(s) if depth == 0 => {
                imports.extend(s.into_iter().flatten().map(|i| i.name.name.to_string()));
            }
            Payload::ComponentExportSection(s) if depth == 0 => {
                exports.extend(s.into_iter().flatten().map(|e| e.name.name.to_string()));
            }
            _ => {}
        }
    }
    (imports, exports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_guests_are_components_and_junk_is_refused() {
        let hello = super::super::builtin("minke/hello").expect("built-in");
        assert_eq!(validate(hello).expect("valid"), Kind::Component);
        let (imports, exports) = component_interfaces(hello);
        assert!(
            exports.iter().any(|e| e.starts_with("wasi:cli/run")),
            "{exports:?}"
        );
        assert!(
            imports.iter().any(|i| i.starts_with("wasi:cli/")),
            "{imports:?}"
        );
        assert!(matches!(validate(b"hello"), Err(Error::NotWasm)));
        assert!(matches!(
            validate(b"\0asm\x01\0\0\0\x01\xff"),
            Err(Error::Invalid(_))
        ));
        // The smallest core module.
        assert_eq!(validate(b"\0asm\x01\0\0\0").expect("valid"), Kind::Module);
    }
}
