//! A zip reader that sees an archive the way the go command's reader does:
//! raw entry names (no code page translation), every central directory
//! record including duplicates, the same end-of-directory search and the
//! same per-entry checks (declared size, CRC-32, data descriptor).
//!
//! Nothing is trusted for allocation: entry data is streamed through a
//! counting reader that fails as soon as it produces more than the declared
//! size, so a compression bomb costs at most one buffer.

use std::fmt;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Take};

use flate2::read::DeflateDecoder;
use flate2::Crc;

use super::ZipError;

const END_SIGNATURE: u32 = 0x0605_4b50;
const END_LEN: usize = 22;
const END64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const END64_LOCATOR_LEN: usize = 20;
const END64_SIGNATURE: u32 = 0x0606_4b50;
const END64_LEN: usize = 56;
const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
const CENTRAL_LEN: usize = 46;
const LOCAL_SIGNATURE: u32 = 0x0403_4b50;
const LOCAL_LEN: usize = 30;
const DESCRIPTOR_SIGNATURE: u32 = 0x0807_4b50;
const ZIP64_EXTRA_ID: u16 = 0x0001;
const FLAG_DATA_DESCRIPTOR: u16 = 0x8;
const METHOD_STORE: u16 = 0;
const METHOD_DEFLATE: u16 = 8;

/// One central directory record.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The name exactly as stored.
    pub name: Vec<u8>,
    flags: u16,
    method: u16,
    crc32: u32,
    compressed_size: u64,
    /// The declared uncompressed size.
    pub uncompressed_size: u64,
    /// Offset of the local header; may be nonsense in a hostile archive.
    header_offset: i64,
}

impl Entry {
    /// The name for messages (invalid UTF-8 shown as U+FFFD).
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// An opened archive: its reader and its central directory.
pub(crate) struct Archive<R> {
    reader: R,
    /// The entries in directory order.
    pub entries: Vec<Entry>,
}

/// Returns the total size of the data behind `reader`.
pub(crate) fn stream_size<R: Seek>(reader: &mut R) -> Result<u64, ZipError> {
    reader
        .seek(SeekFrom::End(0))
        .map_err(|e| ZipError::io("zip archive", e))
}

/// How reading one central directory record ended when it did not succeed.
enum HeaderError {
    /// Not a central directory record: the normal end of the directory.
    Format,
    /// Cut off in the middle.
    UnexpectedEof,
    /// Nothing at all could be read.
    Eof,
    Io(io::Error),
}

/// Fills `buf` completely; distinguishes "nothing there" from "cut short".
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<(), HeaderError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(if filled == 0 {
                    HeaderError::Eof
                } else {
                    HeaderError::UnexpectedEof
                })
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HeaderError::Io(e)),
        }
    }
    Ok(())
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(bytes)
}

fn truncated() -> ZipError {
    ZipError::Format {
        reason: "unexpected end of archive",
    }
}

/// Reads exactly `buf.len()` bytes at `offset`.
fn read_at<R: Read + Seek>(reader: &mut R, offset: i64, buf: &mut [u8]) -> Result<(), ZipError> {
    let offset = u64::try_from(offset).map_err(|_| ZipError::Format {
        reason: "negative offset",
    })?;
    reader
        .seek(SeekFrom::Start(offset))
        .map_err(|e| ZipError::io("zip archive", e))?;
    reader.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            truncated()
        } else {
            ZipError::io("zip archive", e)
        }
    })
}

/// The fields of the end of central directory record that matter.
struct DirectoryEnd {
    records: u64,
    size: u64,
    offset: u64,
}

/// Finds the end record scanning backwards; a record whose comment would
/// run past the block ends the search.
fn find_end_signature(block: &[u8]) -> Option<usize> {
    let last = block.len().checked_sub(END_LEN)?;
    for i in (0..=last).rev() {
        if u32_at(block, i) == END_SIGNATURE {
            let comment_len = usize::from(u16_at(block, i + END_LEN - 2));
            if i + END_LEN + comment_len > block.len() {
                return None;
            }
            return Some(i);
        }
    }
    None
}

impl<R: Read + Seek> Archive<R> {
    /// Opens an archive whose data is `size` bytes long.
    pub fn open(mut reader: R, size: u64) -> Result<Self, ZipError> {
        let size_i64 = i64::try_from(size).map_err(|_| ZipError::Format {
            reason: "archive too large",
        })?;
        let (end, base_offset) = Self::read_directory_end(&mut reader, size_i64)?;
        let start = base_offset.wrapping_add(end.offset as i64);
        reader
            .seek(SeekFrom::Start(start as u64))
            .map_err(|e| ZipError::io("zip archive", e))?;

        // The record count is only trusted modulo 65536 (old writers
        // truncate it), so records are read until one fails to parse.
        let mut entries = Vec::new();
        let mut buffered = BufReader::with_capacity(64 * 1024, &mut reader);
        let stop = loop {
            match read_directory_header(&mut buffered) {
                Ok(mut entry) => {
                    entry.header_offset = entry.header_offset.wrapping_add(base_offset);
                    entries.push(entry);
                }
                Err(HeaderError::Format) => {
                    break ZipError::Format {
                        reason: "bad central directory record",
                    }
                }
                Err(HeaderError::UnexpectedEof) => break truncated(),
                Err(HeaderError::Eof) => return Err(truncated()),
                Err(HeaderError::Io(e)) => return Err(ZipError::io("zip archive", e)),
            }
        };
        drop(buffered);
        if entries.len() as u16 != end.records as u16 {
            return Err(stop);
        }
        Ok(Archive { reader, entries })
    }

    fn read_directory_end(reader: &mut R, size: i64) -> Result<(DirectoryEnd, i64), ZipError> {
        let mut found = None;
        for (attempt, wanted) in [1024i64, 65 * 1024].into_iter().enumerate() {
            let block_len = wanted.min(size);
            let mut block = vec![0u8; block_len as usize];
            read_at(reader, size - block_len, &mut block)?;
            if let Some(at) = find_end_signature(&block) {
                found = Some((
                    block[at..at + END_LEN].to_vec(),
                    size - block_len + at as i64,
                ));
                break;
            }
            if attempt == 1 || block_len == size {
                break;
            }
        }
        let Some((record, mut end_offset)) = found else {
            return Err(ZipError::Format {
                reason: "end of central directory not found",
            });
        };
        let mut end = DirectoryEnd {
            records: u64::from(u16_at(&record, 10)),
            size: u64::from(u32_at(&record, 12)),
            offset: u64::from(u32_at(&record, 16)),
        };

        if end.records == 0xffff || end.size == 0xffff_ffff || end.offset == 0xffff_ffff {
            if let Some(end64_offset) = Self::find_directory64_end(reader, end_offset)? {
                if end64_offset >= 0 {
                    end_offset = end64_offset;
                    let mut end64 = [0u8; END64_LEN];
                    read_at(reader, end64_offset, &mut end64)?;
                    if u32_at(&end64, 0) != END64_SIGNATURE {
                        return Err(ZipError::Format {
                            reason: "bad zip64 end of central directory",
                        });
                    }
                    end.records = u64_at(&end64, 32);
                    end.size = u64_at(&end64, 40);
                    end.offset = u64_at(&end64, 48);
                }
            }
        }

        if end.size > i64::MAX as u64 || end.offset > i64::MAX as u64 {
            return Err(ZipError::Format {
                reason: "central directory out of range",
            });
        }
        let mut base_offset = end_offset
            .wrapping_sub(end.size as i64)
            .wrapping_sub(end.offset as i64);
        let start = base_offset.wrapping_add(end.offset as i64);
        if start < 0 || start >= size {
            return Err(ZipError::Format {
                reason: "central directory out of range",
            });
        }
        // Some writers get the base offset wrong; prefer zero when a record
        // is really found at the stated offset.
        if base_offset > 0 {
            let seek = reader.seek(SeekFrom::Start(end.offset));
            if seek.is_ok() && read_directory_header(&mut *reader).is_ok() {
                base_offset = 0;
            }
        }
        Ok((end, base_offset))
    }

    fn find_directory64_end(reader: &mut R, end_offset: i64) -> Result<Option<i64>, ZipError> {
        let locator_offset = end_offset - END64_LOCATOR_LEN as i64;
        if locator_offset < 0 {
            return Ok(None);
        }
        let mut locator = [0u8; END64_LOCATOR_LEN];
        read_at(reader, locator_offset, &mut locator)?;
        if u32_at(&locator, 0) != END64_LOCATOR_SIGNATURE
            || u32_at(&locator, 4) != 0
            || u32_at(&locator, 16) != 1
        {
            return Ok(None);
        }
        Ok(Some(u64_at(&locator, 8) as i64))
    }

    /// Opens entry `index` for reading its uncompressed data.
    pub fn open_entry(&mut self, index: usize) -> Result<EntryReader<'_, R>, ZipError> {
        let entry = self.entries.get(index).ok_or(ZipError::Format {
            reason: "no such entry",
        })?;
        let path = entry.display_name();
        let mut local = [0u8; LOCAL_LEN];
        read_at(&mut self.reader, entry.header_offset, &mut local).map_err(|e| match e {
            ZipError::Format { reason } => ZipError::EntryFormat {
                path: path.clone(),
                reason,
            },
            other => other,
        })?;
        if u32_at(&local, 0) != LOCAL_SIGNATURE {
            return Err(ZipError::EntryFormat {
                path,
                reason: "bad local file header",
            });
        }
        let body_offset =
            (LOCAL_LEN + usize::from(u16_at(&local, 26)) + usize::from(u16_at(&local, 28))) as i64;
        let data_start = entry.header_offset.wrapping_add(body_offset);
        let check = Check {
            declared: entry.uncompressed_size,
            crc32: entry.crc32,
            descriptor_at: (entry.flags & FLAG_DATA_DESCRIPTOR != 0)
                .then(|| data_start.wrapping_add(entry.compressed_size as i64)),
            read: 0,
            crc: Crc::new(),
            failed: None,
            finished: false,
        };
        if entry.name.ends_with(b"/") {
            return Ok(EntryReader {
                source: Source::Directory {
                    has_data: entry.uncompressed_size != 0,
                },
                check,
            });
        }
        let method = entry.method;
        if method != METHOD_STORE && method != METHOD_DEFLATE {
            return Err(ZipError::UnsupportedMethod { path, method });
        }
        // A size that does not fit a signed offset reads as empty.
        let available = if (entry.compressed_size as i64) < 0 {
            0
        } else {
            entry.compressed_size
        };
        let data_start = u64::try_from(data_start).map_err(|_| ZipError::EntryFormat {
            path: path.clone(),
            reason: "negative offset",
        })?;
        self.reader
            .seek(SeekFrom::Start(data_start))
            .map_err(|e| ZipError::io(path, e))?;
        let raw = (&mut self.reader).take(available);
        let source = if method == METHOD_STORE {
            Source::Stored(raw)
        } else {
            Source::Deflated(Box::new(DeflateDecoder::new(raw)))
        };
        Ok(EntryReader { source, check })
    }
}

/// Reads one central directory record.
fn read_directory_header(r: &mut impl Read) -> Result<Entry, HeaderError> {
    let mut fixed = [0u8; CENTRAL_LEN];
    read_full(r, &mut fixed)?;
    if u32_at(&fixed, 0) != CENTRAL_SIGNATURE {
        return Err(HeaderError::Format);
    }
    let flags = u16_at(&fixed, 8);
    let method = u16_at(&fixed, 10);
    let crc32 = u32_at(&fixed, 16);
    let compressed32 = u32_at(&fixed, 20);
    let uncompressed32 = u32_at(&fixed, 24);
    let name_len = usize::from(u16_at(&fixed, 28));
    let extra_len = usize::from(u16_at(&fixed, 30));
    let comment_len = usize::from(u16_at(&fixed, 32));
    let offset32 = u32_at(&fixed, 42);

    let mut variable = vec![0u8; name_len + extra_len + comment_len];
    if !variable.is_empty() {
        read_full(r, &mut variable)?;
    }
    let name = variable[..name_len].to_vec();
    let mut extra = &variable[name_len..name_len + extra_len];

    let mut entry = Entry {
        name,
        flags,
        method,
        crc32,
        compressed_size: u64::from(compressed32),
        uncompressed_size: u64::from(uncompressed32),
        header_offset: i64::from(offset32),
    };
    while extra.len() >= 4 {
        let tag = u16_at(extra, 0);
        let field_len = usize::from(u16_at(extra, 2));
        extra = &extra[4..];
        if extra.len() < field_len {
            break;
        }
        let (mut field, rest) = extra.split_at(field_len);
        extra = rest;
        if tag != ZIP64_EXTRA_ID {
            continue;
        }
        // Only the 32-bit fields that are saturated are stored, in order.
        let next_u64 = |field: &mut &[u8]| -> Result<u64, HeaderError> {
            if field.len() < 8 {
                return Err(HeaderError::Format);
            }
            let value = u64_at(field, 0);
            *field = &field[8..];
            Ok(value)
        };
        if uncompressed32 == u32::MAX {
            entry.uncompressed_size = next_u64(&mut field)?;
        }
        if compressed32 == u32::MAX {
            entry.compressed_size = next_u64(&mut field)?;
        }
        if offset32 == u32::MAX {
            entry.header_offset = next_u64(&mut field)? as i64;
        }
    }
    Ok(entry)
}

/// A problem found while reading an entry's data, carried inside
/// `io::Error` so the reader can be used with ordinary I/O code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryDataError {
    /// More data than declared.
    LargerThanDeclared,
    /// The data ended before the declared size.
    ShorterThanDeclared,
    /// CRC-32 mismatch.
    Checksum,
    /// A directory entry that declares content.
    DirectoryHasData,
    /// The data descriptor after the data is missing or cut short.
    DescriptorTruncated,
}

impl fmt::Display for EntryDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryDataError::LargerThanDeclared => "entry is larger than its declared size",
            EntryDataError::ShorterThanDeclared => "entry is shorter than its declared size",
            EntryDataError::Checksum => "checksum error",
            EntryDataError::DirectoryHasData => "directory entry has data",
            EntryDataError::DescriptorTruncated => "data descriptor is truncated",
        })
    }
}

impl std::error::Error for EntryDataError {}

impl From<EntryDataError> for io::Error {
    fn from(e: EntryDataError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Turns an error from reading entry `path` (declared size `declared`) into
/// a [`ZipError`] that names the entry.
pub(crate) fn entry_error(path: &str, declared: u64, e: io::Error) -> ZipError {
    let path = path.to_string();
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<EntryDataError>())
    {
        Some(EntryDataError::LargerThanDeclared) => ZipError::LargerThanDeclared { path, declared },
        Some(EntryDataError::ShorterThanDeclared) => {
            ZipError::ShorterThanDeclared { path, declared }
        }
        Some(EntryDataError::Checksum) => ZipError::Checksum { path },
        Some(EntryDataError::DirectoryHasData) => ZipError::EntryFormat {
            path,
            reason: "directory entry has data",
        },
        Some(EntryDataError::DescriptorTruncated) => ZipError::EntryFormat {
            path,
            reason: "data descriptor is truncated",
        },
        None => ZipError::io(path, e),
    }
}

enum Source<'a, R> {
    Directory { has_data: bool },
    Stored(Take<&'a mut R>),
    Deflated(Box<DeflateDecoder<Take<&'a mut R>>>),
}

/// Size and checksum bookkeeping for one entry.
struct Check {
    declared: u64,
    crc32: u32,
    descriptor_at: Option<i64>,
    read: u64,
    crc: Crc,
    failed: Option<EntryDataError>,
    /// The end-of-data checks passed.
    finished: bool,
}

/// Streams the uncompressed data of one entry, failing as soon as it
/// exceeds the declared size and verifying size and CRC-32 at the end.
pub(crate) struct EntryReader<'a, R> {
    source: Source<'a, R>,
    check: Check,
}

impl<R: Read + Seek> EntryReader<'_, R> {
    fn raw_reader(&mut self) -> Option<&mut R> {
        match &mut self.source {
            Source::Directory { .. } => None,
            Source::Stored(take) => Some(take.get_mut()),
            Source::Deflated(decoder) => Some(decoder.get_mut().get_mut()),
        }
    }

    /// Checks the data descriptor's CRC-32 against the directory's.
    fn check_descriptor(&mut self, at: i64) -> Result<(), EntryDataError> {
        let expected = self.check.crc32;
        let reader = self
            .raw_reader()
            .ok_or(EntryDataError::DescriptorTruncated)?;
        let at = u64::try_from(at).map_err(|_| EntryDataError::DescriptorTruncated)?;
        reader
            .seek(SeekFrom::Start(at))
            .map_err(|_| EntryDataError::DescriptorTruncated)?;
        let mut descriptor = [0u8; 12];
        let mut limited = reader.take(16);
        limited
            .read_exact(&mut descriptor[..4])
            .map_err(|_| EntryDataError::DescriptorTruncated)?;
        // The signature is optional; without it the CRC comes first.
        let from = if u32_at(&descriptor, 0) == DESCRIPTOR_SIGNATURE {
            0
        } else {
            4
        };
        limited
            .read_exact(&mut descriptor[from..12])
            .map_err(|_| EntryDataError::DescriptorTruncated)?;
        if u32_at(&descriptor, 0) != expected {
            return Err(EntryDataError::Checksum);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), EntryDataError> {
        if self.check.read != self.check.declared {
            return Err(EntryDataError::ShorterThanDeclared);
        }
        if let Some(at) = self.check.descriptor_at {
            self.check_descriptor(at)?;
            if self.check.crc.sum() != self.check.crc32 {
                return Err(EntryDataError::Checksum);
            }
        } else if self.check.crc32 != 0 && self.check.crc.sum() != self.check.crc32 {
            return Err(EntryDataError::Checksum);
        }
        Ok(())
    }
}

impl<R: Read + Seek> Read for EntryReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(failed) = self.check.failed {
            return Err(failed.into());
        }
        if self.check.finished {
            return Ok(0);
        }
        let n = match &mut self.source {
            Source::Directory { has_data: true } => {
                return Err(EntryDataError::DirectoryHasData.into())
            }
            Source::Directory { has_data: false } => return Ok(0),
            Source::Stored(take) => take.read(buf)?,
            Source::Deflated(decoder) => decoder.read(buf)?,
        };
        self.check.crc.update(&buf[..n]);
        self.check.read += n as u64;
        if self.check.read > self.check.declared {
            self.check.failed = Some(EntryDataError::LargerThanDeclared);
            return Err(EntryDataError::LargerThanDeclared.into());
        }
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        match self.finish() {
            Ok(()) => {
                self.check.finished = true;
                Ok(0)
            }
            Err(failed) => {
                self.check.failed = Some(failed);
                Err(failed.into())
            }
        }
    }
}
