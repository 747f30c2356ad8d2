//! SPDY/3 header-block compression: zlib with the protocol's preset dictionary,
//! one compression context per direction for the whole connection (every header
//! block continues the same zlib stream and ends with a sync flush).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::Error;

/// The largest header block we inflate; kubectl's are a few dozen bytes, so
/// anything near this is a bomb, not headers.
const MAX_BLOCK: usize = 64 * 1024;

/// Header names SPDY/3's dictionary lists, each preceded on the wire by its
/// 32-bit length (draft-mbelshe-httpbis-spdy-00 §2.6.10.1).
const WORDS: [&str; 65] = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The dictionary's tail: status codes, reasons, dates and common values as
/// plain text.
const TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service Unavailable",
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,",
    "text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch",
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// SPDY/3's zlib dictionary (1423 bytes).
pub(crate) fn dictionary() -> &'static [u8] {
    static DICTIONARY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DICTIONARY.get_or_init(|| {
        let mut d = Vec::with_capacity(1423);
        for w in WORDS {
            d.extend_from_slice(&u32::try_from(w.len()).unwrap_or(0).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(TAIL.as_bytes());
        d
    })
}

/// Compresses the header blocks we send.
pub(crate) struct Deflater {
    z: Compress,
}

impl Deflater {
    /// A fresh context primed with the dictionary.
    pub(crate) fn new() -> Result<Deflater, Error> {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(dictionary())
            .map_err(|e| Error::Compression(e.to_string()))?;
        Ok(Deflater { z })
    }

    /// One header block, compressed and sync-flushed.
    pub(crate) fn deflate(&mut self, block: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(block.len() + 64);
        let mut input = block;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| Error::Compression(e.to_string()))?;
            let used = usize::try_from(self.z.total_in() - before).unwrap_or(input.len());
            input = input.get(used..).unwrap_or_default();
            // Done once the input is in and the flush left room to spare.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// Inflates the header blocks the peer sends.
pub(crate) struct Inflater {
    z: Decompress,
}

impl Inflater {
    /// A fresh context (the dictionary is set when the stream asks for it).
    pub(crate) fn new() -> Inflater {
        Inflater {
            z: Decompress::new(true),
        }
    }

    /// One header block's bytes, inflated.
    pub(crate) fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            if out.capacity() - out.len() < 64 {
                if out.len() >= MAX_BLOCK {
                    return Err(Error::HeadersTooLarge);
                }
                out.reserve(out.capacity().max(256));
            }
            let (in_before, out_before) = (self.z.total_in(), out.len());
            let status = self
                .z
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = usize::try_from(self.z.total_in() - in_before).unwrap_or(input.len());
            input = input.get(used..).unwrap_or_default();
            match status {
                Ok(Status::StreamEnd) => {
                    return Err(Error::Compression("the zlib stream ended".into()));
                }
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(dictionary())
                        .map_err(|e| Error::Compression(format!("the header dictionary: {e}")))?;
                    continue;
                }
                Err(e) => return Err(Error::Compression(e.to_string())),
            }
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
            if used == 0 && out.len() == out_before {
                return Err(Error::Compression("truncated header block".into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_has_the_size_and_checksum_spdy3_defines() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        assert_eq!(&d[..11], b"\0\0\0\x07options");
        assert!(d.ends_with(b"enq=0."));
    }

    #[test]
    fn blocks_round_trip_through_one_shared_context() {
        let (mut out, mut back) = (Deflater::new().expect("deflater"), Inflater::new());
        for block in [
            b"\0\0\0\x01\0\0\0\x0astreamtype\0\0\0\x04data".as_slice(),
            b"\0\0\0\0",
            &[7u8; 5000],
        ] {
            let z = out.deflate(block).expect("deflate");
            assert_eq!(back.inflate(&z).expect("inflate"), block);
        }
    }

    #[test]
    fn a_block_split_from_its_context_fails_cleanly() {
        let mut out = Deflater::new().expect("deflater");
        let _first = out.deflate(b"first block").expect("deflate");
        let second = out.deflate(b"second block").expect("deflate");
        // A fresh inflater never saw the zlib header: garbage, not a panic.
        assert!(Inflater::new().inflate(&second).is_err());
    }

    #[test]
    fn a_bomb_is_refused() {
        let mut out = Deflater::new().expect("deflater");
        let z = out.deflate(&vec![0u8; MAX_BLOCK * 4]).expect("deflate");
        assert!(matches!(
            Inflater::new().inflate(&z),
            Err(Error::HeadersTooLarge)
        ));
    }
}
