//! Loose blobs read with plain file reads.
//!
//! gix maps every loose object it reads into memory. A repository read in
//! place is often all loose objects (written by `git commit`, never
//! packed), and a module zip reads hundreds of them from several threads;
//! each map and unmap takes the process-wide memory-map lock, so those
//! threads queue up behind each other. One `read` of the small compressed
//! file avoids that. Objects that are not loose are left to gix.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use flate2::{Decompress, FlushDecompress, Status};
use gix::ObjectId;

/// The loose objects of one repository (its `objects` directory).
#[derive(Debug, Clone)]
pub(crate) struct LooseObjects {
    dir: PathBuf,
}

/// Longest loose object header: `blob ` and a 20-digit size and NUL.
const HEADER_MAX: usize = 32;
/// Compressed bytes read to find a header.
const HEADER_READ: usize = 512;

fn corrupt(id: &ObjectId, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("loose object {id}: {what}"),
    )
}

/// Parses `blob <size>\0` at the start of an inflated loose object; returns
/// the size and the header's length.
fn parse_header(id: &ObjectId, inflated: &[u8]) -> io::Result<Option<(u64, usize)>> {
    let Some(nul) = inflated.iter().position(|&b| b == 0) else {
        return if inflated.len() >= HEADER_MAX {
            Err(corrupt(id, "header too long"))
        } else {
            Ok(None)
        };
    };
    let header = &inflated[..nul];
    let Some(size) = header.strip_prefix(b"blob ") else {
        return Err(corrupt(id, "not a blob"));
    };
    let size = std::str::from_utf8(size)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| corrupt(id, "bad size in header"))?;
    Ok(Some((size, nul + 1)))
}

impl LooseObjects {
    /// The loose objects under `objects_dir`.
    pub(crate) fn new(objects_dir: PathBuf) -> Self {
        LooseObjects { dir: objects_dir }
    }

    fn open(&self, id: &ObjectId) -> io::Result<Option<File>> {
        let hex = id.to_hex().to_string();
        let path = self.dir.join(&hex[..2]).join(&hex[2..]);
        match File::open(path) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The size of blob `id`, or `None` when it is not a loose object.
    pub(crate) fn blob_size(&self, id: &ObjectId) -> io::Result<Option<u64>> {
        let Some(mut file) = self.open(id)? else {
            return Ok(None);
        };
        let mut compressed = Vec::with_capacity(HEADER_READ);
        (&mut file)
            .take(HEADER_READ as u64)
            .read_to_end(&mut compressed)?;
        let mut inflate = Decompress::new(true);
        let mut header = Vec::with_capacity(HEADER_MAX);
        inflate
            .decompress_vec(&compressed, &mut header, FlushDecompress::Sync)
            .map_err(|e| corrupt(id, &e.to_string()))?;
        match parse_header(id, &header)? {
            Some((size, _)) => Ok(Some(size)),
            None => Err(corrupt(id, "truncated header")),
        }
    }

    /// The content of blob `id`, or `None` when it is not a loose object.
    pub(crate) fn blob(&self, id: &ObjectId) -> io::Result<Option<Vec<u8>>> {
        let Some(mut file) = self.open(id)? else {
            return Ok(None);
        };
        let mut compressed = Vec::new();
        file.read_to_end(&mut compressed)?;
        let mut inflate = Decompress::new(true);
        let mut header = Vec::with_capacity(HEADER_MAX);
        inflate
            .decompress_vec(&compressed, &mut header, FlushDecompress::Sync)
            .map_err(|e| corrupt(id, &e.to_string()))?;
        let Some((size, header_len)) = parse_header(id, &header)? else {
            return Err(corrupt(id, "truncated header"));
        };
        let size = usize::try_from(size).map_err(|_| corrupt(id, "too large"))?;
        let mut data = Vec::with_capacity(size);
        data.extend_from_slice(&header[header_len..]);
        loop {
            let rest = &compressed[inflate.total_in() as usize..];
            // One byte of room past the declared size shows a blob that
            // is longer than its header says.
            data.reserve(size + 1 - data.len().min(size));
            let status = inflate
                .decompress_vec(rest, &mut data, FlushDecompress::Finish)
                .map_err(|e| corrupt(id, &e.to_string()))?;
            if data.len() > size {
                return Err(corrupt(id, "longer than its header says"));
            }
            match status {
                Status::StreamEnd => break,
                _ if inflate.total_in() as usize >= compressed.len() => {
                    return Err(corrupt(id, "truncated"));
                }
                _ => {}
            }
        }
        if data.len() != size {
            return Err(corrupt(id, "shorter than its header says"));
        }
        Ok(Some(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_loose(dir: &std::path::Path, id: &ObjectId, raw: &[u8]) {
        let hex = id.to_hex().to_string();
        let sub = dir.join(&hex[..2]);
        std::fs::create_dir_all(&sub).unwrap();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(raw).unwrap();
        std::fs::write(sub.join(&hex[2..]), z.finish().unwrap()).unwrap();
    }

    fn id(byte: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[byte; 20])
    }

    #[test]
    fn reads_loose_blobs_and_their_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let loose = LooseObjects::new(dir.path().to_path_buf());
        let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut raw = format!("blob {}\0", content.len()).into_bytes();
        raw.extend_from_slice(&content);
        write_loose(dir.path(), &id(1), &raw);
        write_loose(dir.path(), &id(2), b"blob 0\0");
        assert_eq!(loose.blob_size(&id(1)).unwrap(), Some(content.len() as u64));
        assert_eq!(loose.blob(&id(1)).unwrap(), Some(content));
        assert_eq!(loose.blob(&id(2)).unwrap(), Some(Vec::new()));
        assert_eq!(loose.blob_size(&id(3)).unwrap(), None);
        assert_eq!(loose.blob(&id(3)).unwrap(), None);
    }

    #[test]
    fn rejects_what_is_not_a_well_formed_blob() {
        let dir = tempfile::tempdir().unwrap();
        let loose = LooseObjects::new(dir.path().to_path_buf());
        write_loose(dir.path(), &id(1), b"tree 3\0abc");
        write_loose(dir.path(), &id(2), b"blob 5\0abc");
        write_loose(dir.path(), &id(3), b"blob 2\0abc");
        write_loose(dir.path(), &id(4), b"blob x\0abc");
        for n in 1..=4 {
            let err = loose.blob(&id(n)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{n}: {err}");
        }
        assert!(loose.blob_size(&id(1)).is_err());
    }
}
