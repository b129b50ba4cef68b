//! The Go checksum database's data formats, without any network or storage.
//!
//! - [`note`]: signed notes, verifier and signer keys (Go's
//!   `golang.org/x/mod/sumdb/note`).
//! - [`tlog`]: the transparency log: RFC 6962 hashing, stored hash indexes,
//!   tree heads, tiles, record and tree proofs (Go's
//!   `golang.org/x/mod/sumdb/tlog`).
//! - [`record`]: lookup records and the bodies of `/lookup` answers and data
//!   tiles.
//!
//! Everything here is byte-for-byte compatible with the go command: a note
//! signed here opens in `go`, a tile written here is what `go` expects to
//! download, and the reverse.

pub mod note;
pub mod record;
pub mod tlog;

mod gobase64;
