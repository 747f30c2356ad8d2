//! Protobuf wire format: a field iterator over one message's bytes.

use super::Error;

/// One field value as it sits on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
    /// A (deprecated) group, already skipped: no Kubernetes field is one.
    Group,
}

impl Wire<'_> {
    /// The wire type number, for error messages.
    fn number(&self) -> u8 {
        match self {
            Wire::Varint(_) => 0,
            Wire::Fixed64(_) => 1,
            Wire::Bytes(_) => 2,
            Wire::Group => 3,
            Wire::Fixed32(_) => 5,
        }
    }
}

impl<'a> Wire<'a> {
    /// The value of a varint field (bool, int32, int64).
    pub(super) fn varint(self, field: u32) -> Result<u64, Error> {
        match self {
            Wire::Varint(v) => Ok(v),
            other => Err(other.mismatch(field, 0)),
        }
    }

    /// The value of a length-delimited field (string, bytes, message).
    pub(super) fn bytes(self, field: u32) -> Result<&'a [u8], Error> {
        match self {
            Wire::Bytes(b) => Ok(b),
            other => Err(other.mismatch(field, 2)),
        }
    }

    fn mismatch(&self, field: u32, expected: u8) -> Error {
        Error::WrongWireType {
            field,
            got: self.number(),
            expected,
        }
    }
}

/// Groups nest; a bound keeps hostile input from recursing without end.
const MAX_GROUP_DEPTH: usize = 32;

/// Iterates `(field number, value)` over a message; stops at the first malformed byte.
pub(super) struct Fields<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Fields { buf, failed: false }
    }

    fn varint(&mut self) -> Result<u64, Error> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(Error::Truncated)?;
            self.buf = rest;
            // The tenth byte may only carry the top bit of a u64.
            if i == 9 && b > 1 {
                return Err(Error::Varint);
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::Varint)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.buf.len() {
            return Err(Error::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn key(&mut self) -> Result<(u32, u8), Error> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| Error::FieldNumber(key >> 3))?;
        if number == 0 || number > 0x1fff_ffff {
            return Err(Error::FieldNumber(key >> 3));
        }
        // The mask keeps the value below 8.
        Ok((number, (key & 7) as u8))
    }

    fn value(&mut self, number: u32, wire_type: u8, depth: usize) -> Result<Wire<'a>, Error> {
        Ok(match wire_type {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(fixed(self.take(8)?)?)),
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| Error::Truncated)?;
                Wire::Bytes(self.take(len)?)
            }
            3 => {
                self.skip_group(number, depth)?;
                Wire::Group
            }
            5 => Wire::Fixed32(u32::from_le_bytes(fixed(self.take(4)?)?)),
            other => return Err(Error::WireType(other)),
        })
    }

    fn skip_group(&mut self, number: u32, depth: usize) -> Result<(), Error> {
        if depth >= MAX_GROUP_DEPTH {
            return Err(Error::TooDeep);
        }
        loop {
            if self.buf.is_empty() {
                return Err(Error::Truncated);
            }
            match self.key()? {
                (n, 4) if n == number => return Ok(()),
                (_, 4) => return Err(Error::WireType(4)),
                (n, t) => {
                    self.value(n, t, depth + 1)?;
                }
            }
        }
    }

    fn field(&mut self) -> Result<(u32, Wire<'a>), Error> {
        let (number, wire_type) = self.key()?;
        if wire_type == 4 {
            // An end-group with no group open.
            return Err(Error::WireType(4));
        }
        Ok((number, self.value(number, wire_type, 0)?))
    }
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], Error> {
    bytes.try_into().map_err(|_| Error::Truncated)
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Wire<'a>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let item = self.field();
        self.failed = item.is_err();
        Some(item)
    }
}

/// The varints of a packed repeated field.
pub(super) fn packed_varints(bytes: &[u8]) -> impl Iterator<Item = Result<u64, Error>> + '_ {
    let mut reader = Fields::new(bytes);
    std::iter::from_fn(move || {
        if reader.failed || reader.buf.is_empty() {
            return None;
        }
        let v = reader.varint();
        reader.failed = v.is_err();
        Some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(buf: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, Error> {
        Fields::new(buf).collect()
    }

    #[test]
    fn every_wire_type_is_read() {
        let buf = [
            0x08, 0x96, 0x01, // 1: varint 150
            0x11, 1, 0, 0, 0, 0, 0, 0, 0, // 2: fixed64 1
            0x1a, 2, b'h', b'i', // 3: bytes "hi"
            0x25, 2, 0, 0, 0, // 4: fixed32 2
            0x2b, 0x08, 0x01, 0x2c, // 5: group holding 1: varint 1
        ];
        let got = all(&buf).expect("valid");
        assert_eq!(
            got,
            vec![
                (1, Wire::Varint(150)),
                (2, Wire::Fixed64(1)),
                (3, Wire::Bytes(b"hi")),
                (4, Wire::Fixed32(2)),
                (5, Wire::Group),
            ]
        );
    }

    #[test]
    fn a_ten_byte_varint_holds_a_negative_int64() {
        let buf = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(all(&buf).expect("valid"), vec![(1, Wire::Varint(u64::MAX))]);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for buf in [
            &[0x08][..],         // value missing
            &[0x08, 0x80],       // varint cut short
            &[0x0a, 0x05, 1, 2], // length past the end
            &[0x11, 1, 2, 3],    // fixed64 cut short
            &[0x0b, 0x08, 0x01], // group never closed
            &[0x0c],             // end-group without a group
            &[0x0e, 0x00],       // wire type 6
            &[0x00, 0x00],       // field number 0
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ], // > 64 bits
        ] {
            assert!(all(buf).is_err(), "{buf:?} accepted");
        }
    }

    #[test]
    fn iteration_stops_after_the_first_error() {
        let mut it = Fields::new(&[0x0e, 0x08, 0x01]);
        assert!(matches!(it.next(), Some(Err(_))));
        assert!(it.next().is_none());
    }

    #[test]
    fn packed_varints_are_split() {
        let got: Result<Vec<u64>, Error> = packed_varints(&[1, 0x96, 0x01, 3]).collect();
        assert_eq!(got.expect("valid"), vec![1, 150, 3]);
        assert!(
            packed_varints(&[0x80])
                .collect::<Result<Vec<_>, _>>()
                .is_err()
        );
    }
}
