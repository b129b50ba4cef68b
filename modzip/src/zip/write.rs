//! The zip container of a module zip, and the deflater that fills it.
//!
//! The `zip` crate compresses each entry as it is written, with a new
//! compressor per entry, so entries can neither be deflated ahead of time
//! on other threads nor share one compressor's buffers. This writer takes
//! entries already deflated (CRC-32 and sizes known), or deflates a large
//! one as it streams past and then goes back to fill in its local header.

use std::io::{self, Read, Seek, SeekFrom, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use super::ZipError;

/// The deflate level of module zips. With zlib-rs, level 4 gives archives
/// the size the go command's own zips have (its `compress/flate` at the
/// default level), at about three times the speed of level 6.
const DEFLATE_LEVEL: u32 = 4;

const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
const END_SIG: u32 = 0x0605_4b50;
const ZIP64_END_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
/// Version 2.0: deflate, no zip64 needed per entry.
const VERSION_20: u16 = 20;
/// Version 4.5: zip64 end records.
const VERSION_45: u16 = 45;
const METHOD_DEFLATE: u16 = 8;
/// The name is UTF-8 (set only for names that are not plain ASCII).
const FLAG_UTF8: u16 = 0x0800;
/// MS-DOS date of 1980-01-01, the earliest a zip can say: every entry gets
/// the same timestamp so that archives are reproducible.
const DOS_DATE_1980: u16 = (1 << 5) | 1;
/// Offset of the CRC-32 field in a local file header.
const LOCAL_CRC_OFFSET: u64 = 14;
/// Size of the copy buffers used while streaming an entry.
const STREAM_CHUNK: usize = 64 * 1024;

/// One entry's description as the central directory repeats it.
struct Written {
    name: String,
    crc: u32,
    compressed: u32,
    size: u32,
    offset: u32,
}

impl Written {
    /// The fields local and central headers share, in their order: version
    /// needed, flags, method, time, date, CRC-32, sizes, name length.
    fn put_shared_fields(&self, out: &mut Vec<u8>) -> Result<(), ZipError> {
        out.extend_from_slice(&VERSION_20.to_le_bytes());
        out.extend_from_slice(&flags(&self.name).to_le_bytes());
        out.extend_from_slice(&METHOD_DEFLATE.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&DOS_DATE_1980.to_le_bytes());
        out.extend_from_slice(&self.crc.to_le_bytes());
        out.extend_from_slice(&self.compressed.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&name_len(&self.name)?.to_le_bytes());
        Ok(())
    }
}

/// Writes a zip archive entry by entry, in the order given.
pub(crate) struct ArchiveWriter<W: Write + Seek> {
    w: W,
    /// Where the archive starts in `w`.
    base: u64,
    /// Bytes written so far, relative to `base`.
    pos: u64,
    entries: Vec<Written>,
}

fn too_large(name: &str) -> ZipError {
    ZipError::Writer {
        path: name.to_string(),
        message: "entry or offset does not fit a 32-bit zip field".to_string(),
    }
}

fn field(value: u64, name: &str) -> Result<u32, ZipError> {
    u32::try_from(value).map_err(|_| too_large(name))
}

impl<W: Write + Seek> ArchiveWriter<W> {
    /// Starts an archive at the current position of `w`.
    pub(crate) fn new(mut w: W) -> Result<Self, ZipError> {
        let base = w
            .stream_position()
            .map_err(|e| ZipError::io("zip archive", e))?;
        Ok(ArchiveWriter {
            w,
            base,
            pos: 0,
            entries: Vec::new(),
        })
    }

    fn put(&mut self, bytes: &[u8], name: &str) -> Result<(), ZipError> {
        self.w.write_all(bytes).map_err(|e| ZipError::io(name, e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn local_header(&mut self, entry: &Written) -> Result<(), ZipError> {
        let mut h = Vec::with_capacity(30 + entry.name.len());
        h.extend_from_slice(&LOCAL_HEADER_SIG.to_le_bytes());
        entry.put_shared_fields(&mut h)?;
        // Extra field length.
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(entry.name.as_bytes());
        self.put(&h, &entry.name)
    }

    /// Adds an entry whose content `size` bytes long, with checksum `crc`,
    /// the caller has already deflated into `deflated`.
    pub(crate) fn add_deflated(
        &mut self,
        name: String,
        crc: u32,
        size: u64,
        deflated: &[u8],
    ) -> Result<(), ZipError> {
        let entry = Written {
            crc,
            compressed: field(deflated.len() as u64, &name)?,
            size: field(size, &name)?,
            offset: field(self.pos, &name)?,
            name,
        };
        self.local_header(&entry)?;
        self.put(deflated, &entry.name)?;
        self.entries.push(entry);
        Ok(())
    }

    /// Adds an entry by deflating `content` as it is read, so that a large
    /// file is never held whole; the local header is written with the
    /// final CRC-32 and sizes once the content has gone by. Fails with
    /// [`ZipError::LargerThanDeclared`] past `declared` bytes.
    pub(crate) fn add_streamed(
        &mut self,
        name: String,
        path: &str,
        content: &mut dyn Read,
        declared: u64,
        deflater: &mut Deflater,
    ) -> Result<(), ZipError> {
        let mut entry = Written {
            crc: 0,
            compressed: 0,
            size: 0,
            offset: field(self.pos, &name)?,
            name,
        };
        self.local_header(&entry)?;
        let data_start = self.pos;
        let mut crc = Crc::new();
        let mut input = vec![0u8; STREAM_CHUNK];
        let mut output = Vec::with_capacity(STREAM_CHUNK);
        deflater.compress.reset();
        let mut read: u64 = 0;
        loop {
            let n = match content.read(&mut input) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ZipError::io(path, e)),
            };
            read += n as u64;
            if read > declared {
                return Err(ZipError::LargerThanDeclared {
                    path: path.to_string(),
                    declared,
                });
            }
            crc.update(&input[..n]);
            let flush = if n == 0 {
                FlushCompress::Finish
            } else {
                FlushCompress::None
            };
            let mut chunk = &input[..n];
            loop {
                output.clear();
                let before = deflater.compress.total_in();
                let status = deflater
                    .compress
                    .compress_vec(chunk, &mut output, flush)
                    .map_err(|e| deflate_error(&entry.name, e))?;
                let consumed = (deflater.compress.total_in() - before) as usize;
                chunk = &chunk[consumed..];
                self.put(&output, &entry.name)?;
                let done = match flush {
                    FlushCompress::Finish => status == Status::StreamEnd,
                    // Input all taken and the output buffer not filled:
                    // the compressor has nothing more to say for now.
                    _ => chunk.is_empty() && output.len() < output.capacity(),
                };
                if done {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        entry.crc = crc.sum();
        entry.compressed = field(self.pos - data_start, &entry.name)?;
        entry.size = field(read, &entry.name)?;
        let end = self.base + self.pos;
        let mut fields = Vec::with_capacity(12);
        fields.extend_from_slice(&entry.crc.to_le_bytes());
        fields.extend_from_slice(&entry.compressed.to_le_bytes());
        fields.extend_from_slice(&entry.size.to_le_bytes());
        let patch = self.base + u64::from(entry.offset) + LOCAL_CRC_OFFSET;
        (|| {
            self.w.seek(SeekFrom::Start(patch))?;
            self.w.write_all(&fields)?;
            self.w.seek(SeekFrom::Start(end)).map(drop)
        })()
        .map_err(|e| ZipError::io(entry.name.as_str(), e))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Writes the central directory and the end records; returns the
    /// underlying writer, flushed.
    pub(crate) fn finish(mut self) -> Result<W, ZipError> {
        const ARCHIVE: &str = "zip archive";
        let directory_start = self.pos;
        let entries = std::mem::take(&mut self.entries);
        let mut record = Vec::with_capacity(128);
        for entry in &entries {
            record.clear();
            record.extend_from_slice(&CENTRAL_HEADER_SIG.to_le_bytes());
            // Version made by.
            record.extend_from_slice(&VERSION_20.to_le_bytes());
            entry.put_shared_fields(&mut record)?;
            // Extra field, comment, disk number, internal attributes.
            record.extend_from_slice(&[0u8; 8]);
            // External attributes.
            record.extend_from_slice(&0u32.to_le_bytes());
            record.extend_from_slice(&entry.offset.to_le_bytes());
            record.extend_from_slice(entry.name.as_bytes());
            self.put(&record, ARCHIVE)?;
        }
        let directory_size = self.pos - directory_start;
        let count = entries.len() as u64;
        let needs_zip64 = count >= u64::from(u16::MAX)
            || directory_size >= u64::from(u32::MAX)
            || directory_start >= u64::from(u32::MAX);
        let mut end = Vec::with_capacity(98);
        if needs_zip64 {
            let zip64_end = self.pos;
            end.extend_from_slice(&ZIP64_END_SIG.to_le_bytes());
            // Size of the rest of this record.
            end.extend_from_slice(&44u64.to_le_bytes());
            end.extend_from_slice(&VERSION_45.to_le_bytes());
            end.extend_from_slice(&VERSION_45.to_le_bytes());
            end.extend_from_slice(&[0u8; 8]);
            end.extend_from_slice(&count.to_le_bytes());
            end.extend_from_slice(&count.to_le_bytes());
            end.extend_from_slice(&directory_size.to_le_bytes());
            end.extend_from_slice(&directory_start.to_le_bytes());
            end.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&zip64_end.to_le_bytes());
            end.extend_from_slice(&1u32.to_le_bytes());
        }
        let short_count = u16::try_from(count).unwrap_or(u16::MAX);
        end.extend_from_slice(&END_SIG.to_le_bytes());
        end.extend_from_slice(&[0u8; 4]);
        end.extend_from_slice(&short_count.to_le_bytes());
        end.extend_from_slice(&short_count.to_le_bytes());
        end.extend_from_slice(&saturate(directory_size).to_le_bytes());
        end.extend_from_slice(&saturate(directory_start).to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        self.put(&end, ARCHIVE)?;
        self.w.flush().map_err(|e| ZipError::io(ARCHIVE, e))?;
        Ok(self.w)
    }
}

fn flags(name: &str) -> u16 {
    if name.is_ascii() {
        0
    } else {
        FLAG_UTF8
    }
}

fn name_len(name: &str) -> Result<u16, ZipError> {
    u16::try_from(name.len()).map_err(|_| ZipError::Writer {
        path: name.to_string(),
        message: "name longer than 65535 bytes".to_string(),
    })
}

/// A 32-bit field's value, or all ones when the zip64 record holds it.
fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn deflate_error(name: &str, e: impl std::fmt::Display) -> ZipError {
    ZipError::Writer {
        path: name.to_string(),
        message: format!("deflate: {e}"),
    }
}

/// A raw-deflate compressor kept across entries, so that its tables are
/// allocated once per thread rather than once per file.
pub(crate) struct Deflater {
    compress: Compress,
}

/// An entry's content deflated in memory.
pub(crate) struct Deflated {
    /// CRC-32 of the content.
    pub crc: u32,
    /// Length of the content.
    pub size: u64,
    /// The raw deflate stream.
    pub data: Vec<u8>,
}

impl Deflater {
    /// A compressor at the module zip level.
    pub(crate) fn new() -> Self {
        Deflater {
            compress: Compress::new(Compression::new(DEFLATE_LEVEL), false),
        }
    }

    /// Deflates all of `content` (the entry `name`).
    pub(crate) fn deflate(&mut self, name: &str, content: &[u8]) -> Result<Deflated, ZipError> {
        let mut crc = Crc::new();
        crc.update(content);
        self.compress.reset();
        // Deflate never grows data by more than a few bytes per 16 KiB
        // block; the loop below only matters if that guess is ever short.
        let mut data = Vec::with_capacity(content.len() + content.len() / 64 + 64);
        let mut rest = content;
        loop {
            let before = self.compress.total_in();
            let status = self
                .compress
                .compress_vec(rest, &mut data, FlushCompress::Finish)
                .map_err(|e| deflate_error(name, e))?;
            rest = &rest[(self.compress.total_in() - before) as usize..];
            if status == Status::StreamEnd {
                break;
            }
            data.reserve(data.capacity().max(1024));
        }
        Ok(Deflated {
            crc: crc.sum(),
            size: content.len() as u64,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn inflate(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn sample(len: usize) -> Vec<u8> {
        let mut x: u32 = 7;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if i % 3 == 0 {
                    (x >> 24) as u8
                } else {
                    b"func main() {}\n"[i % 15]
                }
            })
            .collect()
    }

    #[test]
    fn deflate_round_trips_any_size() {
        let mut d = Deflater::new();
        for len in [0, 1, 100, 70_000, 1 << 20] {
            let content = sample(len);
            let out = d.deflate("f", &content).unwrap();
            assert_eq!(out.size, len as u64);
            assert_eq!(inflate(&out.data), content, "len {len}");
            let mut crc = Crc::new();
            crc.update(&content);
            assert_eq!(out.crc, crc.sum());
        }
    }

    #[test]
    fn streamed_and_deflated_entries_read_back() {
        let big = sample(3 * STREAM_CHUNK + 17);
        let small = b"package a\n".to_vec();
        let mut d = Deflater::new();
        // Something before the archive: offsets are relative to its start.
        let mut out = Cursor::new(b"prefix".to_vec());
        out.seek(SeekFrom::End(0)).unwrap();
        let mut w = ArchiveWriter::new(out).unwrap();
        let pre = d.deflate("a.go", &small).unwrap();
        w.add_deflated("m@v1.0.0/a.go".into(), pre.crc, pre.size, &pre.data)
            .unwrap();
        w.add_streamed(
            "m@v1.0.0/big.bin".into(),
            "big.bin",
            &mut big.as_slice(),
            big.len() as u64,
            &mut d,
        )
        .unwrap();
        w.add_deflated("m@v1.0.0/é.go".into(), pre.crc, pre.size, &pre.data)
            .unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let archive = &bytes[b"prefix".len()..];
        let read =
            crate::zip::read::Archive::open(Cursor::new(archive), archive.len() as u64).unwrap();
        let names: Vec<_> = read.entries.iter().map(|e| e.display_name()).collect();
        assert_eq!(
            names,
            ["m@v1.0.0/a.go", "m@v1.0.0/big.bin", "m@v1.0.0/é.go"]
        );
        let mut read = read;
        for (index, want) in [(0, &small), (1, &big), (2, &small)] {
            let mut got = Vec::new();
            read.open_entry(index)
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            assert_eq!(&got, want, "entry {index}");
        }
    }

    #[test]
    fn streamed_entry_longer_than_declared_fails() {
        let mut w = ArchiveWriter::new(Cursor::new(Vec::new())).unwrap();
        let err = w
            .add_streamed(
                "m@v1/x".into(),
                "x",
                &mut &b"12345"[..],
                4,
                &mut Deflater::new(),
            )
            .unwrap_err();
        assert!(matches!(
            err,
            ZipError::LargerThanDeclared { declared: 4, .. }
        ));
    }

    #[test]
    fn many_entries_get_zip64_end_records() {
        let mut d = Deflater::new();
        let empty = d.deflate("e", b"").unwrap();
        let mut w = ArchiveWriter::new(Cursor::new(Vec::new())).unwrap();
        let count = usize::from(u16::MAX) + 2;
        for i in 0..count {
            w.add_deflated(format!("m@v1/f{i}"), empty.crc, 0, &empty.data)
                .unwrap();
        }
        let bytes = w.finish().unwrap().into_inner();
        let len = bytes.len() as u64;
        let read = crate::zip::read::Archive::open(Cursor::new(bytes), len).unwrap();
        assert_eq!(read.entries.len(), count);
    }
}
