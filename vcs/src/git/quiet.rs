//! Protocol v2 `fetch` requests that ask for no progress messages.
//!
//! git sends the `no-progress` argument whenever it shows no progress; gix
//! never does, though its progress here is discarded. A server asked
//! without it counts, formats and sends progress lines all through the
//! pack's preparation: for a depth-1 fetch of client_golang (1.2 MB),
//! `git upload-pack` answered in 53 ms with the argument and 56 ms without,
//! and sent 7.7 KB more. [`QuietFetch`] writes the argument into every
//! `fetch` command gix writes, on any transport.

use std::io::{self, Write};

use gix::protocol::transport::packetline::decode::{hex_prefix, PacketLineOrWantedSize};
use gix::protocol::transport::packetline::PacketLineRef;

/// The `no-progress` argument as a pkt-line.
const NO_PROGRESS: &[u8] = b"0010no-progress\n";

/// The first line of a protocol v2 `fetch` command, without its newline.
const FETCH_COMMAND: &[u8] = b"command=fetch";

/// A request writer that adds `no-progress` to the arguments of each
/// protocol v2 `fetch` command passing through, right after the delimiter
/// that ends the command's capabilities. Everything else (other commands,
/// protocol v0 and v1 requests, anything that is not pkt-lines) passes
/// through unchanged, however the writes split the lines.
pub(crate) struct QuietFetch<W> {
    inner: W,
    /// The length prefix of the pkt-line being written, while incomplete.
    prefix: [u8; 4],
    prefix_len: usize,
    /// Payload bytes still to come of the pkt-line being written.
    payload_left: usize,
    /// The payload of the command's first pkt-line, as far as needed to
    /// tell a `fetch`.
    first_line: Vec<u8>,
    place: Place,
}

/// Where the writer is in the stream of pkt-lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// At or in the first pkt-line of a command (or request).
    FirstLine,
    /// In the capabilities of a command; `fetch` when it is a `fetch`.
    Capabilities { fetch: bool },
    /// In the arguments of a command, or a request of protocol v0/v1.
    Rest,
    /// Not pkt-lines: everything passes through untouched.
    Opaque,
}

impl<W: Write> QuietFetch<W> {
    /// Wraps `inner`, which receives the request with the argument added.
    pub(crate) fn new(inner: W) -> QuietFetch<W> {
        QuietFetch {
            inner,
            prefix: [0; 4],
            prefix_len: 0,
            payload_left: 0,
            first_line: Vec::new(),
            place: Place::FirstLine,
        }
    }

    /// Follows the stream over the start of `bytes` (a payload's rest or a
    /// length prefix's): how many bytes that was, and whether the argument
    /// belongs right after them.
    fn follow(&mut self, bytes: &[u8]) -> (usize, bool) {
        if self.payload_left > 0 {
            let n = self.payload_left.min(bytes.len());
            self.payload_left -= n;
            if self.place == Place::FirstLine {
                let room = (FETCH_COMMAND.len() + 1).saturating_sub(self.first_line.len());
                self.first_line.extend_from_slice(&bytes[..n.min(room)]);
                if self.payload_left == 0 {
                    let line = self
                        .first_line
                        .strip_suffix(b"\n")
                        .unwrap_or(&self.first_line);
                    self.place = Place::Capabilities {
                        fetch: line == FETCH_COMMAND,
                    };
                }
            }
            return (n, false);
        }
        let n = (4 - self.prefix_len).min(bytes.len());
        self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(&bytes[..n]);
        self.prefix_len += n;
        if self.prefix_len < 4 {
            return (n, false);
        }
        self.prefix_len = 0;
        let quiet = match hex_prefix(&self.prefix) {
            Ok(PacketLineOrWantedSize::Wanted(size)) => {
                self.payload_left = usize::from(size);
                false
            }
            // A flush ends the command (or a v0/v1 request's part).
            Ok(PacketLineOrWantedSize::Line(PacketLineRef::Flush)) => {
                self.place = Place::FirstLine;
                self.first_line.clear();
                false
            }
            // The delimiter between a command's capabilities and arguments.
            Ok(PacketLineOrWantedSize::Line(PacketLineRef::Delimiter)) => {
                let quiet = self.place == Place::Capabilities { fetch: true };
                if matches!(self.place, Place::Capabilities { .. }) {
                    self.place = Place::Rest;
                }
                quiet
            }
            Ok(PacketLineOrWantedSize::Line(_)) => false,
            Err(_) => {
                self.place = Place::Opaque;
                false
            }
        };
        (n, quiet)
    }
}

impl<W: Write> Write for QuietFetch<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() && self.place != Place::Opaque {
            let (n, quiet) = self.follow(rest);
            self.inner.write_all(&rest[..n])?;
            if quiet {
                self.inner.write_all(NO_PROGRESS)?;
            }
            rest = &rest[n..];
        }
        self.inner.write_all(rest)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(payload: &str) -> Vec<u8> {
        let mut line = format!("{:04x}", payload.len() + 4).into_bytes();
        line.extend_from_slice(payload.as_bytes());
        line
    }

    fn request(command: &str, arguments: &[&str]) -> Vec<u8> {
        let mut out = pkt(&format!("command={command}\n"));
        out.extend(pkt("object-format=sha1\n"));
        out.extend(pkt("agent=git/oxide\n"));
        out.extend(b"0001");
        for argument in arguments {
            out.extend(pkt(&format!("{argument}\n")));
        }
        out.extend(b"0000");
        out
    }

    /// `parts` written one by one through a [`QuietFetch`].
    fn written(parts: &[&[u8]]) -> Vec<u8> {
        let mut quiet = QuietFetch::new(Vec::new());
        for part in parts {
            quiet.write_all(part).unwrap();
        }
        quiet.inner
    }

    /// `whole` written as gix writes pkt-lines: the length prefix, the
    /// line and its newline each a write of their own.
    fn in_gix_pieces(whole: &[u8]) -> Vec<Vec<u8>> {
        let mut pieces = Vec::new();
        let mut rest = whole;
        while rest.len() >= 4 {
            let length =
                usize::from_str_radix(std::str::from_utf8(&rest[..4]).unwrap(), 16).unwrap();
            pieces.push(rest[..4].to_vec());
            let end = if length >= 4 { length } else { 4 };
            let payload = &rest[4..end];
            match payload.split_last() {
                Some((b'\n', line)) => {
                    pieces.push(line.to_vec());
                    pieces.push(b"\n".to_vec());
                }
                _ if !payload.is_empty() => pieces.push(payload.to_vec()),
                _ => {}
            }
            rest = &rest[end..];
        }
        pieces
    }

    #[test]
    fn a_fetch_asks_for_no_progress_however_its_lines_are_split() {
        let want = "want 50d903a5204b727639907d79a44f91002e0eb6d9";
        let sent = request(
            "fetch",
            &["thin-pack", "ofs-delta", "deepen 1", want, "done"],
        );
        let quiet = request(
            "fetch",
            &[
                "no-progress",
                "thin-pack",
                "ofs-delta",
                "deepen 1",
                want,
                "done",
            ],
        );
        let pieces = in_gix_pieces(&sent);
        let pieces: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
        assert_eq!(written(&pieces), quiet, "as gix writes it");
        assert_eq!(written(&[&sent]), quiet, "in one write");
        let bytes: Vec<&[u8]> = sent.chunks(1).collect();
        assert_eq!(written(&bytes), quiet, "byte by byte");
    }

    #[test]
    fn every_fetch_of_a_stream_is_quiet_and_nothing_else_changes() {
        let ls_refs = request("ls-refs", &["symrefs", "peel", "ref-prefix refs/tags/"]);
        let fetch = request("fetch", &["want 50d903a5204b727639907d79a44f91002e0eb6d9"]);
        let quiet_fetch = request(
            "fetch",
            &[
                "no-progress",
                "want 50d903a5204b727639907d79a44f91002e0eb6d9",
            ],
        );
        let stream = [ls_refs.clone(), fetch.clone(), fetch].concat();
        assert_eq!(
            written(&[&stream]),
            [ls_refs.clone(), quiet_fetch.clone(), quiet_fetch].concat()
        );
        assert_eq!(written(&[&ls_refs]), ls_refs, "ls-refs is left alone");
    }

    #[test]
    fn protocol_v1_requests_and_other_bytes_pass_unchanged() {
        // A v1 negotiation: wants with capabilities, a flush, haves, done.
        let mut v1 = pkt("want 50d903a5204b727639907d79a44f91002e0eb6d9 ofs-delta thin-pack\n");
        v1.extend(pkt("deepen 1\n"));
        v1.extend(b"0000");
        v1.extend(pkt("have 60d903a5204b727639907d79a44f91002e0eb6d9\n"));
        v1.extend(pkt("done\n"));
        assert_eq!(written(&[&v1]), v1);
        // A delimiter where a v2 command's capabilities would end, but the
        // command is not a fetch.
        let odd = [pkt("command=fetchx\n"), b"0001".to_vec(), pkt("x\n")].concat();
        assert_eq!(written(&[&odd]), odd);
        // Not pkt-lines at all: never touched again, even if a fetch
        // request follows.
        let garbage = [b"zzzz0001".to_vec(), request("fetch", &["done"])].concat();
        assert_eq!(written(&[&garbage]), garbage);
    }
}
