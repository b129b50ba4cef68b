//! A byte-level zip builder for tests: it writes whatever names, sizes and
//! checksums it is told to, so hostile archives can be produced.

use std::io::Write;

use flate2::write::DeflateEncoder;
use flate2::{Compression, Crc};

/// One entry to write.
#[derive(Clone)]
pub(crate) struct RawEntry {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    /// Compression method number; 0 stores, 8 deflates, anything else
    /// stores the bytes under that method number.
    pub method: u16,
    /// Uncompressed size to declare instead of the real one.
    pub declared_size: Option<u32>,
    /// CRC-32 to declare instead of the real one.
    pub crc: Option<u32>,
    /// Write a data descriptor (with this CRC) after the data.
    pub descriptor_crc: Option<u32>,
}

impl RawEntry {
    pub fn new(name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Self {
        RawEntry {
            name: name.as_ref().to_vec(),
            data: data.as_ref().to_vec(),
            method: 8,
            declared_size: None,
            crc: None,
            descriptor_crc: None,
        }
    }
}

fn crc_of(data: &[u8]) -> u32 {
    let mut crc = Crc::new();
    crc.update(data);
    crc.sum()
}

/// Builds an archive; `count` overrides the entry count in the end record.
pub(crate) fn raw_zip_with_count(entries: &[RawEntry], count: Option<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for entry in entries {
        let stored = if entry.method == 8 {
            let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(&entry.data).expect("deflate");
            encoder.finish().expect("deflate")
        } else {
            entry.data.clone()
        };
        let crc = entry.crc.unwrap_or_else(|| crc_of(&entry.data));
        let size = entry.declared_size.unwrap_or(entry.data.len() as u32);
        let flags: u16 = if entry.descriptor_crc.is_some() {
            0x8
        } else {
            0
        };
        let offset = out.len() as u32;
        let name_len = entry.name.len() as u16;

        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&entry.method.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&entry.name);
        out.extend_from_slice(&stored);
        if let Some(descriptor_crc) = entry.descriptor_crc {
            out.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
            out.extend_from_slice(&descriptor_crc.to_le_bytes());
            out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
        }

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&flags.to_le_bytes());
        central.extend_from_slice(&entry.method.to_le_bytes());
        central.extend_from_slice(&[0; 4]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&(stored.len() as u32).to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&[0; 4]); // extra and comment lengths
        central.extend_from_slice(&[0; 8]); // disk, internal and external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(&entry.name);
    }
    let directory_offset = out.len() as u32;
    out.extend_from_slice(&central);
    let records = count.unwrap_or(entries.len() as u16);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&records.to_le_bytes());
    out.extend_from_slice(&records.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&directory_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// Builds an archive with an honest end record.
pub(crate) fn raw_zip(entries: &[RawEntry]) -> Vec<u8> {
    raw_zip_with_count(entries, None)
}
