//! apimachinery types whose JSON form is not an object: times, durations, quantities, int-or-string.

use serde_json::Value;

use super::Error;
use super::wire::Fields;

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds: encoding/json prints `null`.
const GO_ZERO_SECONDS: i64 = -62_135_596_800;
/// metav1.Time refuses to marshal years outside 0000–9999; so do we.
const MIN_SECONDS: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
const MAX_SECONDS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// `metav1.Time` {seconds = 1, nanos = 2} (`micro` false) or `metav1.MicroTime` (true).
/// Empty bytes are Go's zero time, which prints as `null`.
pub(super) fn time(bytes: &[u8], micro: bool) -> Result<Value, Error> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let (mut seconds, mut nanos) = (0i64, 0i32);
    for item in Fields::new(bytes) {
        match item? {
            // Go reads both with plain integer conversions: truncation is its behaviour too.
            (1, w) => seconds = w.varint(1)? as i64,
            (2, w) => nanos = w.varint(2)? as i32,
            _ => {}
        }
    }
    // time.Unix normalises nanos outside [0, 1e9) into the seconds.
    let total = i128::from(seconds) * NANOS_PER_SECOND + i128::from(nanos);
    let seconds = i64::try_from(total.div_euclid(NANOS_PER_SECOND)).map_err(|_| Error::Time)?;
    // The remainder is in [0, 1e9), which fits an i64.
    let nanos = total.rem_euclid(NANOS_PER_SECOND) as i64;
    if seconds == GO_ZERO_SECONDS && nanos == 0 {
        return Ok(Value::Null);
    }
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&seconds) {
        return Err(Error::Time);
    }
    let ts = jiff::Timestamp::from_second(seconds).map_err(|_| Error::Time)?;
    let whole = ts.strftime("%Y-%m-%dT%H:%M:%S");
    // Go formats both in UTC and truncates (never rounds) the fraction.
    Ok(Value::String(if micro {
        format!("{whole}.{:06}Z", nanos / 1000)
    } else {
        format!("{whole}Z")
    }))
}

/// `metav1.Duration` {duration = 1 (nanoseconds)} as Go's `time.Duration.String()`.
pub(super) fn duration(bytes: &[u8]) -> Result<Value, Error> {
    let mut nanos = 0i64;
    for item in Fields::new(bytes) {
        if let (1, w) = item? {
            nanos = w.varint(1)? as i64;
        }
    }
    Ok(Value::String(go_duration(nanos)))
}

/// Go's `time.Duration.String()`: "1h2m3.5s", "1.5ms", "300µs", "0s".
fn go_duration(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u == 0 {
        return "0s".to_owned();
    }
    if u < 1_000_000_000 {
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (whole, frac) = split_fraction(u, prec);
        return format!("{sign}{whole}{frac}{unit}");
    }
    let (secs, frac) = split_fraction(u, 9);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{s}{frac}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}{frac}s")
    } else {
        format!("{sign}{s}{frac}s")
    }
}

/// `v / 10^prec` and its fraction as ".ddd" without trailing zeros ("" when zero).
fn split_fraction(v: u64, prec: u32) -> (u64, String) {
    let scale = 10u64.pow(prec);
    let frac = v % scale;
    if frac == 0 {
        return (v / scale, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (v / scale, format!(".{}", digits.trim_end_matches('0')))
}

/// `resource.Quantity` {string = 1}. Go marshals the canonical string it parsed, which
/// is what kubectl put on the wire; unset is the zero quantity, "0".
pub(super) fn quantity(bytes: &[u8]) -> Result<Value, Error> {
    let mut s = String::from("0");
    for item in Fields::new(bytes) {
        if let (1, w) = item? {
            let raw = String::from_utf8_lossy(w.bytes(1)?);
            if !raw.is_empty() {
                s = raw.into_owned();
            }
        }
    }
    Ok(Value::String(s))
}

/// `intstr.IntOrString` {type = 1 (0 int, 1 string), intVal = 2, strVal = 3}.
pub(super) fn int_or_string(bytes: &[u8]) -> Result<Value, Error> {
    let (mut kind, mut int, mut string) = (0u64, 0i32, String::new());
    for item in Fields::new(bytes) {
        match item? {
            (1, w) => kind = w.varint(1)?,
            (2, w) => int = w.varint(2)? as i32,
            (3, w) => string = String::from_utf8_lossy(w.bytes(3)?).into_owned(),
            _ => {}
        }
    }
    match kind {
        0 => Ok(Value::from(int)),
        1 => Ok(Value::String(string)),
        other => Err(Error::IntOrString(other)),
    }
}

/// The bytes of field 1 of a one-field wrapper (`RawExtension.raw`, `FieldsV1.Raw`).
pub(super) fn raw(bytes: &[u8]) -> Result<&[u8], Error> {
    let mut raw: &[u8] = &[];
    for item in Fields::new(bytes) {
        if let (1, w) = item? {
            raw = w.bytes(1)?;
        }
    }
    Ok(raw)
}

/// A wrapper {repeated string items = 1} (`ExtraValue`, `Verbs`): a JSON array, `null` when
/// empty as Go's nil slice.
pub(super) fn string_list(bytes: &[u8]) -> Result<Value, Error> {
    let mut items = Vec::new();
    for item in Fields::new(bytes) {
        if let (1, w) = item? {
            items.push(Value::String(
                String::from_utf8_lossy(w.bytes(1)?).into_owned(),
            ));
        }
    }
    Ok(if items.is_empty() {
        Value::Null
    } else {
        Value::Array(items)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// seconds = 1, nanos = 2 as varints (negative numbers as 10-byte two's complement).
    fn timestamp(seconds: i64, nanos: i32) -> Vec<u8> {
        let mut out = vec![0x08];
        varint(&mut out, seconds as u64);
        out.push(0x10);
        varint(&mut out, i64::from(nanos) as u64);
        out
    }

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    #[test]
    fn times_print_in_utc_with_whole_seconds_and_micro_times_with_six_digits() {
        let t = timestamp(1_795_460_400, 123_456_789);
        assert_eq!(
            time(&t, false).ok(),
            Some(Value::from("2026-11-23T19:00:00Z"))
        );
        assert_eq!(
            time(&t, true).ok(),
            Some(Value::from("2026-11-23T19:00:00.123456Z"))
        );
    }

    #[test]
    fn zero_times_are_null_and_the_epoch_is_not() {
        assert_eq!(time(&[], false).ok(), Some(Value::Null));
        assert_eq!(
            time(&timestamp(GO_ZERO_SECONDS, 0), true).ok(),
            Some(Value::Null)
        );
        assert_eq!(
            time(&timestamp(0, 0), false).ok(),
            Some(Value::from("1970-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn times_before_1970_and_nanos_past_a_second_normalise_like_go() {
        let t = timestamp(-1, 1_500_000_000);
        assert_eq!(
            time(&t, true).ok(),
            Some(Value::from("1970-01-01T00:00:00.500000Z"))
        );
        let t = timestamp(-1, 250_000_000);
        assert_eq!(
            time(&t, true).ok(),
            Some(Value::from("1969-12-31T23:59:59.250000Z"))
        );
    }

    #[test]
    fn times_outside_years_0_to_9999_are_errors() {
        assert!(time(&timestamp(MAX_SECONDS + 1, 0), false).is_err());
        assert!(time(&timestamp(MIN_SECONDS - 1, 0), false).is_err());
        assert!(time(&timestamp(i64::MAX, 0), false).is_err());
    }

    #[test]
    fn durations_print_like_go() {
        for (nanos, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (1_000_000_000, "1s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-1_500_000_000, "-1.5s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(go_duration(nanos), want, "{nanos}");
        }
    }

    #[test]
    fn int_or_string_is_a_number_or_a_string() {
        assert_eq!(
            int_or_string(&[0x08, 0, 0x10, 80]).ok(),
            Some(Value::from(80))
        );
        let s = [0x08, 1, 0x1a, 4, b'h', b't', b't', b'p'];
        assert_eq!(int_or_string(&s).ok(), Some(Value::from("http")));
        assert_eq!(int_or_string(&[]).ok(), Some(Value::from(0)));
        assert!(int_or_string(&[0x08, 2]).is_err());
    }

    #[test]
    fn an_unset_quantity_is_zero() {
        assert_eq!(quantity(&[]).ok(), Some(Value::from("0")));
        assert_eq!(
            quantity(&[0x0a, 3, b'1', b'G', b'i']).ok(),
            Some(Value::from("1Gi"))
        );
    }
}
