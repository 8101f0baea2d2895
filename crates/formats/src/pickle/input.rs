//! The unpickler's input: a cursor over the stream that never panics, with Python's
//! `_Unframer` emulated when asked.
//!
//! The C unpickler behind `pickle.load` treats `FRAME` as a prefetch hint and reads
//! opcodes linearly. The pure-Python `_Unpickler` (which joblib's `NumpyUnpickler`
//! subclasses) reads each frame into a buffer: opcodes come from the buffer until it is
//! spent, while `file_handle.read` (joblib's raw array reads) comes from the file after the
//! frame. [`Input::load_frame`] switches to that behaviour.

use crate::error::{ParseError, Result};

/// `_Unframer` state: the current frame's end, and where the underlying file stands (past
/// the whole frame, which was read at once).
#[derive(Debug, Clone, Copy)]
struct Frame {
    end: usize,
    file_pos: usize,
}

/// A cursor over the stream.
#[derive(Debug)]
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
    frame: Option<Frame>,
    /// Longest text argument line (module names, protocol-0 strings).
    max_line: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8], start: usize, max_line: usize) -> Self {
        Self {
            data,
            pos: start,
            frame: None,
            max_line,
        }
    }

    /// The whole input (the stream and what follows it).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Bytes after the read position.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// Python's `_Unframer.load_frame`: buffers the next `len` bytes of the file (fewer if
    /// the file ends first) as the current frame. Returns how many bytes it holds.
    pub fn load_frame(&mut self, offset: u64, len: u64) -> Result<usize> {
        if let Some(f) = self.frame {
            if self.pos < f.end {
                return Err(ParseError::malformed(
                    offset,
                    "beginning of a new frame before end of current frame",
                ));
            }
        }
        let start = self.file_pos();
        let left = self.data.len().saturating_sub(start);
        let size = usize::try_from(len).unwrap_or(usize::MAX).min(left);
        let end = start.saturating_add(size);
        self.frame = Some(Frame { end, file_pos: end });
        self.pos = start;
        Ok(size)
    }

    /// Where the underlying file stands (differs from `pos` inside a buffered frame).
    pub fn file_pos(&self) -> usize {
        match self.frame {
            Some(f) if self.pos < f.end => f.file_pos,
            Some(f) => f.file_pos.max(self.pos),
            None => self.pos,
        }
    }

    /// `_Unframer`: an exhausted frame hands reading back to the file.
    pub fn leave_spent_frame(&mut self, n: usize) {
        if let Some(f) = self.frame {
            if self.pos >= f.end && n != 0 {
                self.pos = f.file_pos;
                self.frame = None;
            }
        }
    }

    pub fn next_opcode(&mut self) -> Result<(u64, u8)> {
        self.leave_spent_frame(1);
        let offset = self.pos as u64;
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos = self.pos.saturating_add(1);
                Ok((offset, b))
            }
            None => Err(ParseError::truncated(offset, "pickle opcode (no STOP)", 1)),
        }
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        self.leave_spent_frame(n);
        let end = self.pos.checked_add(n);
        if let (Some(f), Some(end)) = (self.frame, end) {
            if end > f.end {
                return Err(ParseError::malformed(
                    self.pos as u64,
                    format!("{what} runs past the end of its frame (pickle exhausted before end of frame)"),
                ));
            }
        }
        match end.and_then(|e| self.data.get(self.pos..e)) {
            Some(s) => {
                self.pos = self.pos.saturating_add(n);
                Ok(s)
            }
            None => Err(ParseError::truncated(
                self.pos as u64,
                what,
                (n as u64).saturating_sub(self.data.len().saturating_sub(self.pos) as u64),
            )),
        }
    }

    pub fn take_u64(&mut self, n: u64, what: &'static str) -> Result<&'a [u8]> {
        match usize::try_from(n) {
            Ok(n) => self.take(n, what),
            Err(_) => Err(ParseError::truncated(self.pos as u64, what, n)),
        }
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        let s = self.take(1, what)?;
        s.first()
            .copied()
            .ok_or_else(|| ParseError::truncated(self.pos as u64, what, 1))
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// A newline-terminated argument, without the newline.
    pub fn line(&mut self, what: &'static str) -> Result<&'a [u8]> {
        self.leave_spent_frame(1);
        let limit = self
            .frame
            .map_or(self.data.len(), |f| f.end.min(self.data.len()));
        let max = self.max_line;
        let rest = self.data.get(self.pos..limit).unwrap_or_default();
        let window = rest.get(..max.min(rest.len())).unwrap_or(rest);
        match memchr::memchr(b'\n', window) {
            Some(i) => {
                let line = window.get(..i).unwrap_or_default();
                self.pos = self.pos.saturating_add(i).saturating_add(1);
                Ok(line)
            }
            None if window.len() >= max => Err(ParseError::limit(
                self.pos as u64,
                "pickle text argument length",
                window.len() as u64,
                max as u64,
            )),
            None if self.frame.is_some() => Err(ParseError::malformed(
                self.pos as u64,
                format!(
                    "{what} runs past the end of its frame (pickle exhausted before end of frame)"
                ),
            )),
            None => Err(ParseError::truncated(self.pos as u64, what, 1)),
        }
    }

    /// Reads raw bytes from the underlying file, as joblib's `file_handle.read` does.
    pub fn take_raw(&mut self, n: u64, what: &'static str) -> Result<(u64, &'a [u8])> {
        let start = self.file_pos();
        let slice = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .and_then(|end| self.data.get(start..end));
        let Some(slice) = slice else {
            return Err(ParseError::truncated(
                start as u64,
                what,
                n.saturating_sub(self.data.len().saturating_sub(start) as u64),
            ));
        };
        self.set_file_pos(start.saturating_add(slice.len()));
        Ok((start as u64, slice))
    }

    pub fn set_file_pos(&mut self, to: usize) {
        match &mut self.frame {
            Some(f) if self.pos < f.end => f.file_pos = to,
            _ => {
                self.frame = None;
                self.pos = to;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_buffer_opcodes_and_raw_reads_come_from_the_file() {
        // FRAME holding "ab", then "XY" outside it.
        let data = b"abXY";
        let mut input = Input::new(data, 0, 64);
        assert_eq!(input.load_frame(0, 2).unwrap(), 2);
        assert_eq!(input.take(1, "t").unwrap(), b"a");
        // A raw read inside an unfinished frame comes from after the frame.
        assert_eq!(input.take_raw(1, "raw").unwrap(), (2, &b"X"[..]));
        assert_eq!(input.take(1, "t").unwrap(), b"b");
        // The spent frame hands reading back to the file, past the raw read.
        assert_eq!(input.take(1, "t").unwrap(), b"Y");
        // Reads may not straddle a frame's end.
        let mut input = Input::new(data, 0, 64);
        input.load_frame(0, 1).unwrap();
        assert!(input.take(2, "t").is_err());
        // A frame may not start inside another.
        let mut input = Input::new(data, 0, 64);
        input.load_frame(0, 2).unwrap();
        assert!(input.load_frame(0, 1).is_err());
    }

    #[test]
    fn lines_are_bounded_and_framed() {
        let mut input = Input::new(b"os\nsystem\n", 0, 64);
        assert_eq!(input.line("m").unwrap(), b"os");
        assert_eq!(input.line("n").unwrap(), b"system");
        assert!(input.line("x").is_err());
        let mut long = Input::new(b"aaaaaaaaaa\n", 0, 4);
        assert!(long.line("x").unwrap_err().is_limit());
        let mut framed = Input::new(b"ab\ncd", 0, 64);
        framed.load_frame(0, 2).unwrap();
        assert!(framed.line("x").is_err());
    }
}
