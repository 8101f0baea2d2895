//! A cursor over untrusted bytes that never panics: every read is bounds-checked and
//! reports the offset where the input ran out.

use crate::error::{ParseError, Result};

/// A forward-only cursor over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let rest = self.rest();
        match rest.split_at_checked(n) {
            Some((head, _)) => {
                self.pos = self.pos.saturating_add(n);
                Ok(head)
            }
            None => Err(ParseError::truncated(
                self.offset(),
                what,
                (n as u64).saturating_sub(rest.len() as u64),
            )),
        }
    }

    /// Takes `n` bytes where `n` came from the input as a u64.
    pub fn take_u64(&mut self, n: u64, what: &'static str) -> Result<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| {
            ParseError::truncated(
                self.offset(),
                what,
                n.saturating_sub(self.remaining() as u64),
            )
        })?;
        self.take(n, what)
    }

    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<()> {
        self.take(n, what).map(|_| ())
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16_le(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u32_le(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64_le(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub fn i32_le(&mut self, what: &'static str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    pub fn i64_le(&mut self, what: &'static str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    pub fn u32_be(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads up to and including the next `\n`, returning the line without it.
    /// At most `max` bytes are searched.
    pub fn line(&mut self, max: usize, what: &'static str) -> Result<&'a [u8]> {
        let rest = self.rest();
        let window = rest.get(..max.min(rest.len())).unwrap_or_default();
        match window.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = self.take(i, what)?;
                self.skip(1, what)?;
                Ok(line)
            }
            None if window.len() == max => Err(ParseError::limit(
                self.offset(),
                "line length",
                max as u64,
                max.saturating_sub(1) as u64,
            )),
            None => Err(ParseError::truncated(self.offset(), what, 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_past_end_reports_offset_and_shortfall() {
        let mut r = Reader::new(b"abc");
        assert_eq!(r.take(2, "x").unwrap(), b"ab");
        let err = r.take(5, "field").unwrap_err();
        assert_eq!(err.offset, 2);
        assert_eq!(err, ParseError::truncated(2, "field", 4));
    }

    #[test]
    fn huge_u64_length_is_an_error_not_a_panic() {
        let mut r = Reader::new(b"abc");
        assert!(r.take_u64(u64::MAX, "blob").is_err());
    }

    #[test]
    fn line_is_bounded() {
        let mut r = Reader::new(b"os\nsystem\n");
        assert_eq!(r.line(16, "m").unwrap(), b"os");
        assert_eq!(r.line(16, "n").unwrap(), b"system");
        let mut long = Reader::new(b"aaaaaaaaaaaaaaaaaaaaaaaa\n");
        assert!(long.line(8, "n").unwrap_err().is_limit());
    }
}
