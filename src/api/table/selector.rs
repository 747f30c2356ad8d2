//! Label selectors written the way metav1.FormatLabelSelector writes them: "app=web", "env in (a,b)", "!canary", "<none>".

use serde_json::Value;

use super::format::{NONE, Obj};

/// Why Go's LabelSelectorAsSelector would refuse a selector; the printers then show a marker instead.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(super) enum SelectorError {
    #[error("{0:?} is not a valid label selector operator")]
    Operator(String),
    #[error("invalid label key {0:?}")]
    Key(String),
    #[error("invalid label value {0:?}")]
    Value(String),
    #[error("wrong number of values for operator {0}")]
    Values(&'static str),
}

/// metav1.FormatLabelSelector: the selector, "<none>" when it selects everything or nothing,
/// "<error>" when Go could not have parsed it.
pub(super) fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => NONE.to_string(),
        Ok(s) => s,
        Err(_) => "<error>".to_string(),
    }
}

/// LabelSelectorAsSelector(sel).String(): requirements in key order, "" for a nil or empty selector.
pub(super) fn selector_string(sel: Option<&Value>) -> Result<String, SelectorError> {
    let Some(sel) = sel else {
        return Ok(String::new());
    };
    let sel = Obj(sel);
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (key, value) in sel.map(&["matchLabels"]).into_iter().flatten() {
        let value = value.as_str().unwrap_or("");
        check_key(key)?;
        check_value(value)?;
        reqs.push((key.clone(), format!("{key}={value}")));
    }
    for expr in sel.items(&["matchExpressions"]) {
        let key = expr.str(&["key"]);
        let mut values = expr.strings(&["values"]);
        check_key(key)?;
        let text = match expr.str(&["operator"]) {
            op @ ("In" | "NotIn") => {
                if values.is_empty() {
                    return Err(SelectorError::Values("in/notin"));
                }
                values.iter().try_for_each(|v| check_value(v))?;
                // Requirement.String() prints the values sorted, whatever order they were given in.
                values.sort_unstable();
                let word = if op == "In" { "in" } else { "notin" };
                format!("{key} {word} ({})", values.join(","))
            }
            op @ ("Exists" | "DoesNotExist") => {
                if !values.is_empty() {
                    return Err(SelectorError::Values("exists/doesnotexist"));
                }
                if op == "Exists" {
                    key.to_string()
                } else {
                    format!("!{key}")
                }
            }
            other => return Err(SelectorError::Operator(other.to_string())),
        };
        reqs.push((key.to_string(), text));
    }
    // Go sorts by key with sort.Sort, an insertion sort (so stable) at selector sizes.
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(","))
}

/// validation.IsQualifiedName: an optional DNS-subdomain prefix and a short name.
fn check_key(key: &str) -> Result<(), SelectorError> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(is_dns_subdomain);
    if prefix_ok
        && !name.contains('/')
        && name.len() <= 63
        && is_qualified_word(name)
        && !name.is_empty()
    {
        Ok(())
    } else {
        Err(SelectorError::Key(key.to_string()))
    }
}

/// validation.IsValidLabelValue: empty, or a short qualified word.
fn check_value(value: &str) -> Result<(), SelectorError> {
    if value.is_empty() || (value.len() <= 63 && is_qualified_word(value)) {
        Ok(())
    } else {
        Err(SelectorError::Value(value.to_string()))
    }
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_word(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// validation.IsDNS1123Subdomain: lower-case labels joined by dots, at most 253 bytes.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            match (b.first(), b.last()) {
                (Some(first), Some(last)) => {
                    is_lower_alnum(*first)
                        && is_lower_alnum(*last)
                        && b.iter().all(|c| is_lower_alnum(*c) || *c == b'-')
                }
                _ => false,
            }
        })
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fmt(v: Value) -> String {
        format_label_selector(Some(&v))
    }

    #[test]
    fn match_labels_print_as_equalities_in_key_order() {
        assert_eq!(
            fmt(json!({"matchLabels": {"tier": "web", "app": "shop"}})),
            "app=shop,tier=web"
        );
    }

    #[test]
    fn set_based_requirements_print_sorted_values() {
        let sel = json!({"matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
            {"key": "app", "operator": "Exists"}
        ]});
        assert_eq!(fmt(sel), "app,!canary,env in (dev,prod),zone notin (b)");
    }

    #[test]
    fn a_missing_or_empty_selector_prints_none() {
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(fmt(json!({})), "<none>");
        assert_eq!(selector_string(None), Ok(String::new()));
    }

    #[test]
    fn selectors_go_could_not_parse_print_error() {
        assert_eq!(
            fmt(json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})),
            "<error>"
        );
        assert_eq!(
            fmt(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})),
            "<error>"
        );
        assert_eq!(fmt(json!({"matchLabels": {"bad key": "x"}})), "<error>");
        assert_eq!(fmt(json!({"matchLabels": {"app": "-x"}})), "<error>");
    }

    #[test]
    fn prefixed_keys_are_valid() {
        assert_eq!(
            fmt(json!({"matchLabels": {"app.kubernetes.io/name": "db"}})),
            "app.kubernetes.io/name=db"
        );
        assert_eq!(
            fmt(json!({"matchLabels": {"Bad.Prefix/name": "db"}})),
            "<error>"
        );
    }
}
