//! Resource quantities ("500m", "1Gi"): parsing for comparisons and the canonical form Go's `Quantity.String()` prints.

use std::cmp::Ordering;

/// The notation a quantity was written in; the canonical form keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// A parsed quantity, held exactly as nano-units (10^-9), which covers every
/// suffix up to `E`/`Ei` inside an i128.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// Quantities compare by amount, whatever notation they were written in.
impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// The decoder's complaint for a string that is not a quantity.
pub const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

impl Quantity {
    /// Parses a quantity (surrounding whitespace ignored); None if it is not one or does not fit.
    pub fn parse(s: &str) -> Option<Quantity> {
        let s = s.trim();
        let (neg, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let num_len = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        let (num, suffix) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        // mantissa as an integer plus the count of fractional digits.
        let digits = format!("{int_part}{frac_part}");
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        let frac_digits = frac_part.len() as i32;
        let (format, mult_num, exp10): (Format, i128, i32) = match suffix {
            "" => (Format::DecimalSi, 1, 0),
            "n" => (Format::DecimalSi, 1, -9),
            "u" => (Format::DecimalSi, 1, -6),
            "m" => (Format::DecimalSi, 1, -3),
            "k" => (Format::DecimalSi, 1, 3),
            "M" => (Format::DecimalSi, 1, 6),
            "G" => (Format::DecimalSi, 1, 9),
            "T" => (Format::DecimalSi, 1, 12),
            "P" => (Format::DecimalSi, 1, 15),
            "E" => (Format::DecimalSi, 1, 18),
            "Ki" => (Format::BinarySi, 1 << 10, 0),
            "Mi" => (Format::BinarySi, 1 << 20, 0),
            "Gi" => (Format::BinarySi, 1 << 30, 0),
            "Ti" => (Format::BinarySi, 1 << 40, 0),
            "Pi" => (Format::BinarySi, 1 << 50, 0),
            "Ei" => (Format::BinarySi, 1 << 60, 0),
            other => {
                let exp = other
                    .strip_prefix('e')
                    .or_else(|| other.strip_prefix('E'))?;
                let e: i32 = exp.parse().ok()?;
                (Format::DecimalExponent, 1, e)
            }
        };
        // value = mantissa * mult * 10^(exp10 - frac) ; in nanos: * 10^9
        let shift = exp10 - frac_digits + 9;
        let scaled = mantissa.checked_mul(mult_num)?;
        let nanos = if shift >= 0 {
            scaled.checked_mul(10i128.checked_pow(shift as u32)?)?
        } else {
            // Go rounds sub-nano precision up.
            let div = 10i128.checked_pow((-shift) as u32)?;
            scaled.checked_add(div - 1)? / div
        };
        Some(Quantity {
            nanos: if neg { -nanos } else { nanos },
            format,
        })
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }
    /// Whether the value is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }
    /// Whether the value is a whole number (integer resources such as pods).
    pub fn is_integer(&self) -> bool {
        self.nanos % 1_000_000_000 == 0
    }

    /// The amount in thousandths, rounded up (millicores for cpu).
    pub fn ceil_millis(&self) -> i128 {
        self.nanos.div_euclid(1_000_000) + i128::from(self.nanos.rem_euclid(1_000_000) != 0)
    }

    /// The amount in whole units, rounded up (bytes for memory, cores for cpu).
    pub fn ceil_units(&self) -> i128 {
        (self.nanos + 999_999_999).div_euclid(1_000_000_000)
    }

    /// A whole number of units, written in decimal SI (how Go's `NewQuantity(n,
    /// DecimalSI)` makes object counts).
    pub fn from_units(n: i64) -> Quantity {
        Quantity {
            nanos: i128::from(n) * 1_000_000_000,
            format: Format::DecimalSi,
        }
    }

    /// The zero quantity in decimal SI (Go's `Quantity{Format: DecimalSI}`).
    pub fn zero() -> Quantity {
        Quantity::from_units(0)
    }

    /// The sum, keeping the notation of `self` unless `self` is zero, as Go's
    /// `Quantity.Add` does (so `0 + 64Mi` prints `64Mi`); saturates instead of
    /// overflowing.
    #[must_use]
    pub fn add(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
            format: if self.nanos == 0 {
                other.format
            } else {
                self.format
            },
        }
    }

    /// The difference, in the notation of `self` (Go's `Quantity.Sub`).
    #[must_use]
    pub fn sub(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_sub(other.nanos),
            format: if self.nanos == 0 {
                other.format
            } else {
                self.format
            },
        }
    }

    /// Go's `Quantity.Value()`: whole units, rounded up, clamped to i64.
    pub fn value(&self) -> i64 {
        clamp_i64(self.ceil_units())
    }

    /// Go's `Quantity.MilliValue()`: thousandths, rounded up, clamped to i64.
    pub fn milli_value(&self) -> i64 {
        clamp_i64(self.ceil_millis())
    }

    /// Go's canonical `Quantity.String()`.
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySi {
            // Small or fractional binary values print in decimal form, like Go.
            let whole = self.nanos % 1_000_000_000 == 0;
            if !whole || self.nanos.abs() < 1024 * 1_000_000_000 {
                format = Format::DecimalSi;
            }
        }
        match format {
            Format::BinarySi => {
                let mut n = self.nanos / 1_000_000_000;
                let mut exp = 0;
                while exp < 6 && n % 1024 == 0 {
                    n /= 1024;
                    exp += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
                format!("{n}{suffix}")
            }
            Format::DecimalSi | Format::DecimalExponent => {
                // Largest power of 1000 that divides the value exactly.
                let mut n = self.nanos;
                let mut exp3 = -9;
                while exp3 < 18 && n % 1000 == 0 {
                    n /= 1000;
                    exp3 += 3;
                }
                if format == Format::DecimalExponent {
                    return if exp3 == 0 {
                        n.to_string()
                    } else {
                        format!("{n}e{exp3}")
                    };
                }
                let suffix = match exp3 {
                    -9 => "n",
                    -6 => "u",
                    -3 => "m",
                    3 => "k",
                    6 => "M",
                    9 => "G",
                    12 => "T",
                    15 => "P",
                    18 => "E",
                    _ => "",
                };
                format!("{n}{suffix}")
            }
        }
    }
}

fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Reads a quantity written as a JSON string or number.
pub fn from_json(v: &serde_json::Value) -> Option<Quantity> {
    match v {
        serde_json::Value::String(s) => Quantity::parse(s),
        serde_json::Value::Number(n) => Quantity::parse(&n.to_string()),
        _ => None,
    }
}

/// The quantity as the user wrote it, for messages about unparsable values.
pub fn raw(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).expect("quantity")
    }

    #[test]
    fn sums_keep_the_left_notation_unless_it_is_zero() {
        assert_eq!(Quantity::zero().add(&q("64Mi")).canonical(), "64Mi");
        assert_eq!(q("64Mi").add(&q("64Mi")).canonical(), "128Mi");
        assert_eq!(q("500m").add(&q("1")).canonical(), "1500m");
        assert_eq!(q("1").add(&q("1")).canonical(), "2");
        assert_eq!(q("1Gi").sub(&q("512Mi")).canonical(), "512Mi");
    }

    #[test]
    fn value_and_milli_value_round_up_like_go() {
        assert_eq!(q("1500m").value(), 2);
        assert_eq!(q("1500m").milli_value(), 1500);
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(Quantity::from_units(3).canonical(), "3");
    }
}
