//! Resource quantities in their canonical spelling, as resource.Quantity.String() prints them ("1536Mi", "1500m", "2G").

use serde_json::Value;

use crate::api::quantity::Quantity;

/// A quantity field of a map (capacity, used, hard): Go reads a missing key as the zero quantity.
pub(super) fn of_value(v: Option<&Value>) -> String {
    v.map_or_else(|| "0".to_string(), value_string)
}

/// A `*resource.Quantity`: Go's String() on a nil pointer prints "<nil>".
pub(super) fn of_pointer(v: Option<&Value>) -> String {
    v.map_or_else(|| "<nil>".to_string(), value_string)
}

/// Quantities arrive as strings, or as bare JSON numbers that Quantity also accepts.
fn value_string(v: &Value) -> String {
    match v {
        Value::String(s) => canonical(s),
        Value::Number(n) => canonical(&n.to_string()),
        _ => "0".to_string(),
    }
}

/// The canonical form of a quantity string; an unreadable one is shown as it was written.
pub(super) fn canonical(s: &str) -> String {
    Quantity::parse(s.trim()).map_or_else(|| s.to_string(), |q| q.canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_quantities_stay_as_written() {
        for s in [
            "1Gi", "100Mi", "500m", "2", "10G", "1Ki", "0", "250u", "1e3",
        ] {
            assert_eq!(canonical(s), s);
        }
    }

    #[test]
    fn binary_quantities_move_to_the_largest_whole_suffix() {
        assert_eq!(canonical("1024Mi"), "1Gi");
        assert_eq!(canonical("1.5Gi"), "1536Mi");
        assert_eq!(canonical("0.5Ki"), "512");
        assert_eq!(canonical("1536"), "1536");
        assert_eq!(canonical("-2048Ki"), "-2Mi");
    }

    #[test]
    fn decimal_quantities_use_an_exponent_that_is_a_multiple_of_three() {
        assert_eq!(canonical("1.5"), "1500m");
        assert_eq!(canonical("0.1"), "100m");
        assert_eq!(canonical("1000m"), "1");
        assert_eq!(canonical("2000M"), "2G");
        assert_eq!(canonical("12e6"), "12e6");
        assert_eq!(canonical("1.5e1"), "15");
        assert_eq!(canonical("+007"), "7");
    }

    #[test]
    fn precision_finer_than_a_nano_rounds_up() {
        assert_eq!(canonical("0.0000000001"), "1n");
        assert_eq!(canonical("1.0000000001"), "1000000001n");
    }

    #[test]
    fn unreadable_quantities_are_shown_as_written() {
        assert_eq!(canonical("lots"), "lots");
        assert_eq!(canonical("1Zi"), "1Zi");
    }

    #[test]
    fn missing_values_read_as_zero_or_nil() {
        assert_eq!(of_value(None), "0");
        assert_eq!(of_pointer(None), "<nil>");
        assert_eq!(of_value(Some(&json!(2))), "2");
        assert_eq!(of_value(Some(&json!("3Gi"))), "3Gi");
    }
}
