//! Bounds on what a hostile file can make a reader hold: [`BoundedRead`] refuses a run of bytes
//! without a boundary (`<`/`>` in XML, a newline in CSV) longer than a limit, so no single text
//! node, tag or line is buffered beyond it, however large the file. It also drops a UTF-8 byte
//! order mark at the start.

use std::io::{self, Read};

/// The message of the `io::Error` a [`BoundedRead`] returns; readers turn it into
/// [`Refusal::TooLarge`](crate::Refusal::TooLarge).
pub(crate) const RUN_TOO_LONG: &str = "a text, tag or line is longer than the limit";

/// A reader that fails once more than `max_run` bytes pass without one of its boundary bytes.
#[derive(Debug)]
pub struct BoundedRead<R> {
    inner: R,
    boundaries: &'static [u8],
    max_run: usize,
    run: usize,
    at_start: bool,
}

impl<R: Read> BoundedRead<R> {
    pub fn new(inner: R, boundaries: &'static [u8], max_run: usize) -> BoundedRead<R> {
        BoundedRead {
            inner,
            boundaries,
            max_run,
            run: 0,
            at_start: true,
        }
    }
}

impl<R: Read> Read for BoundedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = self.inner.read(buf)?;
        if self.at_start && n > 0 {
            self.at_start = false;
            // A byte order mark may only come first; read at least three bytes to see it.
            while n < 3 && n < buf.len() {
                let more = self.inner.read(&mut buf[n..])?;
                if more == 0 {
                    break;
                }
                n += more;
            }
            if buf[..n].starts_with(b"\xEF\xBB\xBF") {
                buf.copy_within(3..n, 0);
                n -= 3;
            }
        }
        for &b in &buf[..n] {
            if self.boundaries.contains(&b) {
                self.run = 0;
            } else {
                self.run += 1;
                if self.run > self.max_run {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, RUN_TOO_LONG));
                }
            }
        }
        Ok(n)
    }
}

/// Maps a read error to a refusal, recognising the limit of [`BoundedRead`].
pub(crate) fn read_refusal(e: &io::Error) -> crate::Refusal {
    if e.kind() == io::ErrorKind::InvalidData && e.to_string() == RUN_TOO_LONG {
        crate::Refusal::TooLarge {
            limit: RUN_TOO_LONG.into(),
        }
    } else {
        crate::Refusal::Read {
            problem: crate::reason::detail(&e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_bom_and_passes_short_runs() {
        let mut out = String::new();
        BoundedRead::new(&b"\xEF\xBB\xBFa,b\nc\n"[..], b"\n", 10)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "a,b\nc\n");
    }

    #[test]
    fn refuses_a_long_run() {
        let long = [b'x'; 100];
        let mut out = Vec::new();
        let e = BoundedRead::new(&long[..], b"\n", 50)
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(read_refusal(&e).code(), "file_too_large");
    }
}
