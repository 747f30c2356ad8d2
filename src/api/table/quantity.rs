//! Resource quantities in their canonical spelling, as resource.Quantity.String() prints them ("1536Mi", "1500m", "2G").

use serde_json::Value;

/// The suffix family a quantity was written in; canonical output keeps the family where it can.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// Why a quantity string could not be read; the printers then show it as written.
#[derive(Debug, thiserror::Error, PartialEq)]
enum QuantityError {
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format,
    #[error("unable to parse quantity's suffix")]
    Suffix,
    #[error("quantity is too large to represent")]
    Overflow,
}

/// A parsed quantity: `mantissa * 10^exp10`, already rounded up to nano precision as Go does.
#[derive(Debug)]
struct Quantity {
    mantissa: i128,
    exp10: i32,
    format: Format,
}

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
    parse(s.trim())
        .and_then(|q| q.canonical())
        .unwrap_or_else(|_| s.to_string())
}

fn parse(s: &str) -> Result<Quantity, QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::Format);
    }
    let (negative, num, denom, suffix) = split(s)?;
    let (base, exponent, format) = interpret(suffix).ok_or(QuantityError::Suffix)?;
    let digits = format!("{num}{denom}");
    let mut mantissa: i128 = digits.parse().map_err(|_| QuantityError::Overflow)?;
    let mut exp10 = -i32::try_from(denom.len()).map_err(|_| QuantityError::Overflow)?;
    if base == 10 {
        exp10 = exp10.checked_add(exponent).ok_or(QuantityError::Overflow)?;
    } else {
        let factor =
            1i128.checked_shl(u32::try_from(exponent).map_err(|_| QuantityError::Overflow)?);
        mantissa = factor
            .and_then(|f| mantissa.checked_mul(f))
            .ok_or(QuantityError::Overflow)?;
    }
    // Anything finer than a nano is rounded up (away from zero), so that asking for a sliver of a
    // resource still asks for some.
    if exp10 < -9 {
        let shift = u32::try_from(-9 - exp10).map_err(|_| QuantityError::Overflow)?;
        mantissa = match 10i128.checked_pow(shift) {
            Some(div) => mantissa / div + i128::from(mantissa % div != 0),
            None => i128::from(mantissa != 0),
        };
        exp10 = -9;
    }
    let format = if format == Format::BinarySi && exp10 < 0 && mantissa < pow10(-exp10) {
        // Binary suffixes cannot express a fraction of one; Go switches such values to decimal.
        Format::DecimalSi
    } else {
        format
    };
    Ok(Quantity {
        mantissa: if negative { -mantissa } else { mantissa },
        exp10,
        format,
    })
}

/// parseQuantityString: sign, digits, optional fraction, then the suffix.
fn split(s: &str) -> Result<(bool, &str, &str, &str), QuantityError> {
    let (negative, rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let rest = rest.trim_start_matches('0');
    let int_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (num, mut rest) = rest.split_at(int_end);
    let num = if num.is_empty() { "0" } else { num };
    let mut denom = "";
    if let Some(after_dot) = rest.strip_prefix('.') {
        let end = after_dot
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after_dot.len());
        (denom, rest) = after_dot.split_at(end);
    }
    // The suffix is letters from a fixed set, then an optional signed integer exponent.
    let letters = rest
        .find(|c: char| !"eEinumkKMGTP".contains(c))
        .unwrap_or(rest.len());
    let tail = &rest[letters..];
    let tail = tail.strip_prefix(['-', '+']).unwrap_or(tail);
    if !tail.bytes().all(|c| c.is_ascii_digit()) {
        return Err(QuantityError::Format);
    }
    Ok((negative, num, denom, rest))
}

/// suffixer.interpret: (base, exponent, format) of a suffix.
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(exp) = decimal {
        return Some((10, exp, Format::DecimalSi));
    }
    let binary = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
        .iter()
        .position(|s| *s == suffix);
    if let Some(i) = binary {
        return Some((2, 10 * (i as i32 + 1), Format::BinarySi));
    }
    let exp = suffix.strip_prefix(['e', 'E']).filter(|e| !e.is_empty())?;
    Some((10, exp.parse().ok()?, Format::DecimalExponent))
}

fn pow10(exp: i32) -> i128 {
    u32::try_from(exp)
        .ok()
        .and_then(|e| 10i128.checked_pow(e))
        .unwrap_or(i128::MAX)
}

impl Quantity {
    /// Quantity.CanonicalizeBytes: binary values that are whole and at least 1Ki keep a binary
    /// suffix; everything else is decimal with an exponent that is a multiple of three.
    fn canonical(&self) -> Result<String, QuantityError> {
        if self.mantissa == 0 {
            return Ok("0".to_string());
        }
        let mut format = self.format;
        let mut whole = None;
        if format == Format::BinarySi {
            let (m, e) = (self.mantissa, self.exp10);
            let integer = if e >= 0 {
                pow10(e).checked_mul(m).filter(|_| pow10(e) != i128::MAX)
            } else {
                (m % pow10(-e) == 0).then(|| m / pow10(-e))
            };
            match integer {
                Some(v) if v.abs() >= 1024 => whole = Some(v),
                _ => format = Format::DecimalSi,
            }
        }
        if let Some(value) = whole {
            let (number, times) = remove_factors(value, 1024);
            let suffix = match times {
                1..=6 => ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][times as usize - 1],
                // Go's suffix table has no entry here and prints the bare number.
                _ => "",
            };
            return Ok(format!("{number}{suffix}"));
        }
        let (mut number, times) = remove_factors(self.mantissa, 10);
        let mut exp = self.exp10 + times as i32;
        while exp % 3 != 0 {
            number = number.checked_mul(10).ok_or(QuantityError::Overflow)?;
            exp -= 1;
        }
        let suffix = match format {
            Format::DecimalExponent if exp == 0 => String::new(),
            Format::DecimalExponent => format!("e{exp}"),
            _ => match exp {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                18 => "E",
                // 0, and exponents past the table, where Go also prints no suffix.
                _ => "",
            }
            .to_string(),
        };
        Ok(format!("{number}{suffix}"))
    }
}

/// removeInt64Factors: divides out `base` while it divides evenly, counting how often.
fn remove_factors(value: i128, base: i128) -> (i128, u32) {
    let (mut v, mut times) = (value.abs(), 0);
    while v >= base && v % base == 0 {
        v /= base;
        times += 1;
    }
    (if value < 0 { -v } else { v }, times)
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
