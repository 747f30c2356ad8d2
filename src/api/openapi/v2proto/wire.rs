//! Protobuf wire-format primitives: varints, field keys and the three wire types the document needs.

/// Wire type of `bool` and `int64` fields.
const VARINT: u64 = 0;
/// Wire type of `double` fields.
const FIXED64: u64 = 1;
/// Wire type of strings and nested messages.
const LEN: u64 = 2;

pub(super) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        // Truncation is the point: the low seven bits go out with the continuation bit set.
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_key(out: &mut Vec<u8>, number: u32, wire_type: u64) {
    put_varint(out, (u64::from(number) << 3) | wire_type);
}

/// A length-delimited field: a string's UTF-8 or an already encoded message.
pub(super) fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(super) fn put_bool(out: &mut Vec<u8>, number: u32, value: bool) {
    put_key(out, number, VARINT);
    put_varint(out, u64::from(value));
}

pub(super) fn put_int64(out: &mut Vec<u8>, number: u32, value: i64) {
    put_key(out, number, VARINT);
    // `int64` (not `sint64`) carries negatives as their 64-bit two's complement, ten bytes long.
    put_varint(out, value as u64);
}

pub(super) fn put_double(out: &mut Vec<u8>, number: u32, value: f64) {
    put_key(out, number, FIXED64);
    out.extend_from_slice(&value.to_bits().to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_use_seven_bits_a_byte_low_group_first() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
    }

    #[test]
    fn negative_int64_takes_ten_bytes() {
        let mut out = Vec::new();
        put_int64(&mut out, 1, -1);
        assert_eq!(
            out,
            [
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]
        );
    }

    #[test]
    fn keys_carry_the_field_number_and_wire_type() {
        let mut out = Vec::new();
        put_bytes(&mut out, 31, b"x");
        put_double(&mut out, 7, 1.0);
        assert_eq!(out[..3], [0xfa, 0x01, 0x01]);
        assert_eq!(out[4], 0x39);
        assert_eq!(out[5..], 1.0f64.to_le_bytes());
    }
}
