//! The files of a tree as the go command's `git archive` invocation exports
//! them: `git -c core.autocrlf=input -c core.eol=lf archive rev subdir`, in a
//! repository whose `info/attributes` ends with `* -export-subst
//! -export-ignore` (the go command appends that line before every archive so
//! that zips do not depend on the git version). So `export-ignore` and
//! `export-subst` have no effect here, while the `text`, `eol`, `crlf`,
//! `ident` and `working-tree-encoding` attributes still shape file contents.
//!
//! Blob contents are read only when a file is opened (or, for files whose
//! contents are converted, when their converted size is first asked for).

use std::collections::HashMap;
use std::io::{self, Cursor, Read};
use std::sync::{Arc, Mutex, OnceLock};

use gix::bstr::{BStr, BString, ByteSlice, ByteVec};
use gix::filter::plumbing::eol::{self, AttributesDigest};
use gix::ObjectId;
use modzip::zip::{FileKind, FileMeta, ModuleFile};

use super::loose::LooseObjects;
use super::options::TreeLimits;
use crate::codehost::{CodeError, TreeFile};
use crate::interrupt::Interrupt;
use crate::phases::phase;

/// The attributes that influence the worktree form of a blob, in the order
/// [`Conversion::from_matches`] expects them.
const CONVERSION_ATTRIBUTES: [&str; 5] = ["crlf", "ident", "eol", "text", "working-tree-encoding"];

impl std::hash::Hash for Conversion {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.ident.hash(state);
        (self.digest as u8).hash(state);
        self.encoding.hash(state);
    }
}

/// `core.autocrlf=input` and `core.eol=lf`, as the go command sets them.
const EOL_CONFIG: eol::Configuration = eol::Configuration {
    auto_crlf: eol::AutoCrlf::Input,
    eol: Some(eol::Mode::Lf),
};

/// How one blob's bytes change on their way into the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conversion {
    ident: bool,
    digest: AttributesDigest,
    encoding: Option<WorktreeEncoding>,
}

/// A `working-tree-encoding` that changes bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum WorktreeEncoding {
    /// UTF-16 or UTF-32 (code unit width in bytes), which encoding_rs cannot
    /// produce. Without an explicit byte order, iconv as git uses it on
    /// Linux writes a byte order mark and little-endian units.
    Unicode {
        width: u8,
        little_endian: bool,
        bom: bool,
    },
    /// Any other encoding encoding_rs knows.
    Other(&'static gix::filter::plumbing::encoding::Encoding),
}

impl WorktreeEncoding {
    fn for_label(label: &[u8]) -> Option<WorktreeEncoding> {
        let upper = label.to_ascii_uppercase();
        let unicode = |width, little_endian, bom| {
            Some(WorktreeEncoding::Unicode {
                width,
                little_endian,
                bom,
            })
        };
        match upper.as_slice() {
            b"UTF-16" | b"UTF16" => unicode(2, true, true),
            b"UTF-16LE" | b"UTF16LE" => unicode(2, true, false),
            b"UTF-16BE" | b"UTF16BE" => unicode(2, false, false),
            b"UTF-32" | b"UTF32" => unicode(4, true, true),
            b"UTF-32LE" | b"UTF32LE" => unicode(4, true, false),
            b"UTF-32BE" | b"UTF32BE" => unicode(4, false, false),
            _ => gix::filter::plumbing::encoding::Encoding::for_label(label)
                .filter(|e| *e != gix::filter::plumbing::encoding::UTF_8)
                .map(WorktreeEncoding::Other),
        }
    }

    /// The re-encoded text, or `None` when `utf8` cannot be converted (git
    /// then reports the failure and keeps the bytes as they are).
    fn encode(&self, utf8: &[u8]) -> Option<Vec<u8>> {
        match *self {
            WorktreeEncoding::Unicode {
                width,
                little_endian,
                bom,
            } => {
                let text = std::str::from_utf8(utf8).ok()?;
                let mut out = Vec::with_capacity(utf8.len() * usize::from(width) + 4);
                let unit = |value: u32, out: &mut Vec<u8>| {
                    if width == 2 {
                        let v = value as u16;
                        out.extend_from_slice(&if little_endian {
                            v.to_le_bytes()
                        } else {
                            v.to_be_bytes()
                        });
                    } else {
                        out.extend_from_slice(&if little_endian {
                            value.to_le_bytes()
                        } else {
                            value.to_be_bytes()
                        });
                    }
                };
                if bom {
                    unit(0xFEFF, &mut out);
                }
                for c in text.chars() {
                    if width == 2 {
                        let mut buf = [0u16; 2];
                        for u in c.encode_utf16(&mut buf) {
                            unit(u32::from(*u), &mut out);
                        }
                    } else {
                        unit(u32::from(c), &mut out);
                    }
                }
                Some(out)
            }
            WorktreeEncoding::Other(encoding) => {
                let mut out = Vec::new();
                gix::filter::plumbing::worktree::encode_to_worktree(utf8, encoding, &mut out)
                    .ok()
                    .map(|_| out)
            }
        }
    }
}

impl Conversion {
    /// Combines the attribute states the way git's `convert_attrs` does:
    /// `text` wins over the legacy `crlf`, `eol` turns unspecified or `auto`
    /// text handling into a fixed line ending, and what is left unspecified
    /// falls back to `core.autocrlf=input`.
    fn from_matches(states: &[gix::attrs::StateRef<'_>; 5]) -> Conversion {
        use gix::attrs::StateRef;
        let [crlf, ident, eol_attr, text, encoding] = states;
        let crlf_like = |state: &StateRef<'_>| match state {
            StateRef::Set => Some(AttributesDigest::Text),
            StateRef::Unset => Some(AttributesDigest::Binary),
            StateRef::Value(v) if v.as_bstr() == "input" => Some(AttributesDigest::TextInput),
            StateRef::Value(v) if v.as_bstr() == "auto" => Some(AttributesDigest::TextAuto),
            _ => None,
        };
        let mut digest = crlf_like(text).or_else(|| crlf_like(crlf));
        if digest != Some(AttributesDigest::Binary) {
            let wanted = match eol_attr {
                StateRef::Value(v) if v.as_bstr() == "lf" => Some(eol::Mode::Lf),
                StateRef::Value(v) if v.as_bstr() == "crlf" => Some(eol::Mode::CrLf),
                _ => None,
            };
            digest = match (digest, wanted) {
                (Some(AttributesDigest::TextAuto), Some(eol::Mode::Lf)) => {
                    Some(AttributesDigest::TextAutoInput)
                }
                (Some(AttributesDigest::TextAuto), Some(eol::Mode::CrLf)) => {
                    Some(AttributesDigest::TextAutoCrlf)
                }
                (_, Some(eol::Mode::CrLf)) => Some(AttributesDigest::TextCrlf),
                (_, Some(eol::Mode::Lf)) => Some(AttributesDigest::TextInput),
                (d, None) => d,
            };
        }
        let digest = match digest {
            None => EOL_CONFIG.auto_crlf.into(),
            Some(AttributesDigest::Text) => EOL_CONFIG.to_eol().into(),
            Some(d) => d,
        };
        // An unknown or UTF-8 working-tree-encoding leaves the bytes alone,
        // as git does after reporting the failure.
        let encoding = match encoding {
            StateRef::Value(name) => WorktreeEncoding::for_label(name.as_bstr().as_bytes()),
            _ => None,
        };
        Conversion {
            ident: ident.is_set(),
            digest,
            encoding,
        }
    }

    /// Whether the archived bytes are never fewer than the blob's: line
    /// ending conversion only adds carriage returns, while `$Id$`
    /// expansion and re-encoding can shrink a file.
    fn never_shrinks(&self) -> bool {
        !self.ident && self.encoding.is_none()
    }

    /// Whether the archived bytes can differ from the blob's.
    fn changes_content(&self) -> bool {
        self.ident
            || self.encoding.is_some()
            || matches!(
                self.digest,
                AttributesDigest::TextCrlf | AttributesDigest::TextAutoCrlf
            )
    }

    /// Applies ident expansion, then line-ending conversion, then
    /// re-encoding: git's order for the checkout direction. `blob` is the id
    /// of `data` as stored, which is what `$Id$` expands to.
    pub(crate) fn apply(&self, data: Vec<u8>, blob: &ObjectId) -> io::Result<Vec<u8>> {
        let mut data = data;
        if self.ident {
            if let Some(expanded) = expand_ident(&data, blob) {
                data = expanded;
            }
        }
        let mut buf = Vec::new();
        if eol::convert_to_worktree(&data, self.digest, &mut buf, EOL_CONFIG)
            .map_err(io::Error::other)?
        {
            std::mem::swap(&mut data, &mut buf);
        }
        if let Some(encoded) = self.encoding.and_then(|e| e.encode(&data)) {
            data = encoded;
        }
        Ok(data)
    }
}

/// git's `ident` expansion: `$Id$`, and `$Id:...$` with no line break and no
/// space before the final one (anything else looks like another version
/// control system's keyword and is kept), become `$Id: <blob hex> $`.
/// `None` when nothing was expanded.
fn expand_ident(src: &[u8], blob: &ObjectId) -> Option<Vec<u8>> {
    let hex = blob.to_hex().to_string();
    let mut out = Vec::with_capacity(src.len() + 64);
    let mut rest = src;
    let mut changed = false;
    while let Some(dollar) = rest.find_byte(b'$') {
        out.extend_from_slice(&rest[..=dollar]);
        rest = &rest[dollar + 1..];
        if rest.len() < 3 || &rest[..2] != b"Id" {
            continue;
        }
        match rest[2] {
            b'$' => rest = &rest[3..],
            b':' => {
                let Some(close) = rest[3..].find_byte(b'$').map(|i| i + 3) else {
                    break;
                };
                if rest[3..close].contains(&b'\n') {
                    continue;
                }
                let inner = rest.get(4..close).unwrap_or_default();
                if inner
                    .iter()
                    .position(|&c| c == b' ')
                    .is_some_and(|i| 4 + i < close - 1)
                {
                    continue;
                }
                rest = &rest[close + 1..];
            }
            _ => continue,
        }
        out.extend_from_slice(b"Id: ");
        out.extend_from_slice(hex.as_bytes());
        out.extend_from_slice(b" $");
        changed = true;
    }
    out.extend_from_slice(rest);
    changed.then_some(out)
}

/// Repository handles shared by the files of one listing. A gix handle is
/// for one thread at a time, and the zip writer opens files on several: an
/// open borrows an idle handle, or makes one when all are in use, and
/// gives it back afterwards.
struct RepoHandles {
    template: gix::ThreadSafeRepository,
    idle: Mutex<Vec<gix::Repository>>,
    /// Set for repositories read in place, which may be mostly loose
    /// objects: blobs are looked for there first.
    loose: Option<LooseObjects>,
    /// Converted sizes already computed. Trees may name one blob under
    /// thousands of paths; each blob is read and converted once.
    converted_sizes: Mutex<HashMap<(ObjectId, Conversion), u64>>,
    /// The small blobs of the listing, to be read ahead in pack order
    /// (see [`PackOrderBlobs`]); set once the listing is complete.
    read_ahead: OnceLock<Vec<(ObjectId, u64)>>,
    /// Those blobs' contents, read on the first blob asked for.
    ahead: OnceLock<Mutex<PackOrderBlobs>>,
    /// Blobs (once per path) the zip writer said it will not read, left
    /// out of the read-ahead.
    not_read: Mutex<HashMap<ObjectId, usize>>,
    /// The caller's deadline: blob reads stop once it has passed (a delta
    /// chain can cost far more to resolve than the blob it yields).
    interrupt: Interrupt,
}

type SharedRepo = Arc<RepoHandles>;

impl RepoHandles {
    fn new(repo: &gix::Repository, loose_first: bool, interrupt: Interrupt) -> SharedRepo {
        Arc::new(RepoHandles {
            template: repo.clone().into_sync(),
            idle: Mutex::new(vec![repo.clone()]),
            loose: loose_first
                .then(|| LooseObjects::new(repo.objects.store_ref().path().to_path_buf())),
            converted_sizes: Mutex::new(HashMap::new()),
            read_ahead: OnceLock::new(),
            ahead: OnceLock::new(),
            not_read: Mutex::new(HashMap::new()),
            interrupt,
        })
    }

    /// What `read` finds among the loose objects, when those are looked
    /// at first.
    fn read_loose<T>(
        &self,
        read: impl FnOnce(&LooseObjects) -> io::Result<Option<T>>,
    ) -> io::Result<Option<T>> {
        self.loose.as_ref().map_or(Ok(None), read)
    }

    fn blob(&self, id: ObjectId) -> io::Result<Vec<u8>> {
        self.interrupt.check().map_err(|stopped| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("reading blob {id}: {stopped}"),
            )
        })?;
        if let Some(wanted) = self.read_ahead.get() {
            let ahead = self.ahead.get_or_init(|| {
                let wanted = self.still_wanted(wanted);
                let read = phase!("zip_read_ahead").in_scope(|| {
                    self.with(|repo| PackOrderBlobs::read(repo, &wanted, &self.interrupt))
                });
                Mutex::new(read.unwrap_or_default())
            });
            let taken = ahead
                .lock()
                .map_err(|_| io::Error::other("blobs read ahead poisoned by an earlier panic"))?
                .take(&id);
            if let Some(data) = taken {
                return Ok(data);
            }
        }
        if let Some(data) = self.read_loose(|loose| loose.blob(&id))? {
            return Ok(data);
        }
        self.with(|repo| {
            let blob = repo
                .find_blob(id)
                .map_err(|e| io::Error::other(format!("reading blob {id}: {e}")))?;
            Ok(blob.detach().data)
        })?
    }

    /// `wanted` less the blobs (once per path) the zip writer will not
    /// read.
    fn still_wanted(&self, wanted: &[(ObjectId, u64)]) -> Vec<(ObjectId, u64)> {
        let Ok(mut not_read) = self.not_read.lock() else {
            return wanted.to_vec();
        };
        wanted
            .iter()
            .filter(|(id, _)| match not_read.get_mut(id) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    false
                }
                _ => true,
            })
            .copied()
            .collect()
    }

    fn blob_size(&self, repo: &gix::Repository, id: ObjectId) -> io::Result<u64> {
        if let Some(size) = self.read_loose(|loose| loose.blob_size(&id))? {
            return Ok(size);
        }
        let header = repo
            .find_header(id)
            .map_err(|e| io::Error::other(format!("reading blob {id}: {e}")))?;
        Ok(header.size())
    }

    fn with<T>(&self, work: impl FnOnce(&gix::Repository) -> T) -> io::Result<T> {
        let poisoned = || io::Error::other("repository handles poisoned by an earlier panic");
        let idle = self.idle.lock().map_err(|_| poisoned())?.pop();
        let repo = idle.unwrap_or_else(|| self.template.to_thread_local());
        let result = work(&repo);
        self.idle.lock().map_err(|_| poisoned())?.push(repo);
        Ok(result)
    }
}

/// Most bytes of blob contents read ahead for one listing.
const READ_AHEAD_MAX_BYTES: u64 = 32 << 20;
/// Largest blob read ahead: the size up to which the zip writer holds a
/// file whole anyway (larger ones are streamed).
const READ_AHEAD_MAX_BLOB: u64 = 512 << 10;
/// Memory for the delta bases kept decoded while reading ahead.
const READ_AHEAD_DELTA_CACHE_BYTES: usize = 8 << 20;

/// Blob contents read ahead of the zip writer, in the order of their
/// packs.
///
/// gix resolves a deltified object by inflating every delta of its chain
/// down to a base it has cached, and caches only the object asked for, not
/// the bases it went through. Read in tree order, the blobs of a pack
/// (chains of 3–4 deltas on average in a fetched pack, up to 50) are
/// resolved over and over: most of the time of a zip went into inflating
/// the same small deltas again. In a pack a delta's base always comes
/// before it, so reading in pack order with the results cached means
/// each chain stops at the object read just before: one delta per blob.
///
/// A pack holding mostly wanted blobs (the pack a version was fetched
/// in) is instead resolved whole along its delta tree, as gix resolves it
/// to index it: each base decoded once, its deltas applied to it, on all
/// processors (see [`read_whole_pack`]). For a cold fetch of a library of
/// 641 similar files, 620 of them deltas, that took 5 ms where reading in
/// pack order took 15.7.
///
/// The blobs read one by one are shared out among the processors in runs
/// of neighbours in pack order, each with a delta cache of its own (see
/// [`read_in_pack_order`]): a chain crossing from one run into the next is
/// resolved from its base again, a little work for reading on all cores.
/// client_golang's cold pack holds a 1 MiB PDF (of another module), so it
/// is not resolved whole: its read-ahead went from 3.7 to 2.4 ms.
///
/// Memory is bounded: at most [`READ_AHEAD_MAX_BYTES`] of contents, blobs
/// of at most [`READ_AHEAD_MAX_BLOB`] each, and delta caches of
/// [`READ_AHEAD_DELTA_CACHE_BYTES`] in all. Each content is handed out
/// once per path naming it and then dropped; blobs not read ahead (loose
/// objects, those over the limits, any that failed) are read on demand as
/// before.
#[derive(Default)]
struct PackOrderBlobs {
    /// Contents, and how many more paths will ask for them.
    contents: HashMap<ObjectId, (Vec<u8>, usize)>,
    /// How many packs were resolved whole rather than object by object.
    #[cfg(test)]
    packs_resolved_whole: usize,
}

impl PackOrderBlobs {
    /// Reads the packed blobs of `wanted` (id, size; an id once per path)
    /// in pack order, within the memory limits, until `interrupt` stops it.
    fn read(
        repo: &gix::Repository,
        wanted: &[(ObjectId, u64)],
        interrupt: &Interrupt,
    ) -> PackOrderBlobs {
        let mut uses: HashMap<ObjectId, usize> = HashMap::new();
        for (id, _) in wanted {
            *uses.entry(*id).or_default() += 1;
        }
        // Where each blob sits, from the pack indexes alone (asking the
        // object database would inflate every entry to learn its size).
        let indexes = pack_indexes(repo);
        let mut located = Vec::new();
        let mut budget = READ_AHEAD_MAX_BYTES;
        for (id, size) in wanted {
            if *size > READ_AHEAD_MAX_BLOB || *size > budget {
                continue;
            }
            let Some(count) = uses.remove(id) else {
                continue;
            };
            let found = indexes.iter().enumerate().find_map(|(pack, index)| {
                let entry = index.lookup(id)?;
                Some((pack, index.pack_offset_at_index(entry)))
            });
            if let Some((pack, offset)) = found {
                budget -= size;
                located.push((pack, offset, *id, count));
            }
        }
        located.sort_unstable();

        let mut contents = HashMap::with_capacity(located.len());
        let mut packs_resolved_whole = 0;
        // A pack whose objects are mostly wanted (a fetched version's own
        // pack) is resolved whole along its delta tree, each base once and
        // on all processors, instead of object by object.
        let mut by_pack: HashMap<usize, HashMap<ObjectId, usize>> = HashMap::new();
        for (pack, _, id, uses) in &located {
            by_pack.entry(*pack).or_default().insert(*id, *uses);
        }
        for (pack, wanted) in &by_pack {
            let index = &indexes[*pack];
            if (wanted.len() as u64) * 2 < u64::from(index.num_objects()) {
                continue;
            }
            if let Some(read) = read_whole_pack(index, wanted, interrupt) {
                contents.extend(read);
                packs_resolved_whole += 1;
            }
        }
        located.retain(|(_, _, id, _)| !contents.contains_key(id));

        contents.extend(read_in_pack_order(repo, &located, interrupt));
        tracing::debug!(
            blobs = contents.len(),
            packs_resolved_whole,
            "blobs read ahead"
        );
        PackOrderBlobs {
            contents,
            #[cfg(test)]
            packs_resolved_whole,
        }
    }

    /// The contents of `id` for one of the paths naming it, if read ahead.
    fn take(&mut self, id: &ObjectId) -> Option<Vec<u8>> {
        let (data, left) = self.contents.get_mut(id)?;
        if *left > 1 {
            *left -= 1;
            return Some(data.clone());
        }
        self.contents.remove(id).map(|(data, _)| data)
    }
}

/// A blob to read ahead where it sits: the index of its pack among the
/// repository's, its offset there, its id, and how many paths name it.
/// Ordered this way, a list of them is in pack order.
type Located = (usize, u64, ObjectId, usize);

/// Blobs read one by one from `located` (in pack order) with a cache of
/// decoded bases, each with its count of paths, until `interrupt` stops
/// it. Many blobs are read on several
/// processors, each taking a run of neighbours in pack order (with a cache
/// of its own), so that most chains stay within one run.
fn read_in_pack_order(
    repo: &gix::Repository,
    located: &[Located],
    interrupt: &Interrupt,
) -> Vec<(ObjectId, (Vec<u8>, usize))> {
    let threads = read_ahead_threads(located.len());
    let read_run = |reader: &mut gix::Repository, run: &[Located]| {
        reader.objects.set_pack_cache(move || {
            Box::new(gix::odb::pack::cache::lru::MemoryCappedHashmap::new(
                READ_AHEAD_DELTA_CACHE_BYTES / threads,
            ))
        });
        let mut read = Vec::with_capacity(run.len());
        for (_, _, id, count) in run {
            if interrupt.check().is_err() {
                break;
            }
            if let Ok(blob) = reader.find_blob(*id) {
                read.push((*id, (blob.detach().data, *count)));
            }
        }
        read
    };
    if threads < 2 {
        return read_run(&mut repo.clone(), located);
    }
    let shared = repo.clone().into_sync();
    let per_thread = located.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let runs: Vec<_> = located
            .chunks(per_thread)
            .map(|run| {
                let shared = &shared;
                scope.spawn(move || read_run(&mut shared.to_thread_local(), run))
            })
            .collect();
        runs.into_iter()
            .flat_map(|run| run.join().unwrap_or_default())
            .collect()
    })
}

/// The threads reading `blobs` blobs one by one: one per processor, up to
/// [`READ_AHEAD_MAX_THREADS`], once there are enough blobs to share out.
fn read_ahead_threads(blobs: usize) -> usize {
    if blobs < PARALLEL_READ_AHEAD_FROM {
        return 1;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(READ_AHEAD_MAX_THREADS)
}

/// Blobs read one by one from which the read-ahead is spread over several
/// processors.
const PARALLEL_READ_AHEAD_FROM: usize = 64;
/// Most threads reading blobs one by one; the delta cache is shared out
/// among them.
const READ_AHEAD_MAX_THREADS: usize = 4;

/// The `wanted` blobs (id, paths naming it) of the pack `index` describes,
/// read by resolving the whole pack along its delta tree: each base is
/// decoded once and its deltas applied to it, on all processors. `None`
/// when the pack does not open, holds an object over
/// [`READ_AHEAD_MAX_BLOB`], or fails to decode; the caller then reads the
/// blobs one by one. Every object of the pack passes through memory
/// (bases while their deltas are resolved), so no allocation may exceed
/// that size either.
fn read_whole_pack(
    index: &gix::odb::pack::index::File,
    wanted: &HashMap<ObjectId, usize>,
    interrupt: &Interrupt,
) -> Option<HashMap<ObjectId, (Vec<u8>, usize)>> {
    use gix::odb::pack;
    let pack =
        pack::data::File::at(index.path().with_extension("pack"), index.object_hash()).ok()?;
    // Whole objects declare their size in their entry's header: a large
    // one rules the pack out before any work is done. (A delta's result
    // size is only known once inflated; the allocation limit catches it.)
    for offset in index.sorted_offsets() {
        let entry = pack.entry(offset).ok()?;
        if entry.header.is_base() && entry.decompressed_size > READ_AHEAD_MAX_BLOB {
            return None;
        }
    }
    let found = Mutex::new(HashMap::with_capacity(wanted.len()));
    let keep = |kind: gix::object::Kind,
                data: &[u8],
                entry: &pack::index::Entry,
                _: &dyn gix::progress::Progress|
     -> gix::Result {
        interrupt
            .check()
            .map_err(|stopped| gix::Error::from_error(io::Error::other(stopped)))?;
        if kind == gix::object::Kind::Blob {
            if let Some(uses) = wanted.get(&entry.oid) {
                if let Ok(mut found) = found.lock() {
                    found.insert(entry.oid, (data.to_vec(), *uses));
                }
            }
        }
        Ok(())
    };
    index
        .traverse_with_index(
            &pack,
            keep,
            &mut gix::progress::Discard,
            interrupt.flag(),
            pack::index::traverse::with_index::Options {
                // The pack was checked when it was fetched and indexed.
                check: pack::index::traverse::SafetyCheck::SkipFileAndObjectChecksumVerification,
                alloc_limit_bytes: Some(READ_AHEAD_MAX_BLOB as usize),
                thread_limit: None,
            },
        )
        .ok()?;
    found.into_inner().ok()
}

/// The pack indexes of `repo`'s object directory (those that open).
fn pack_indexes(repo: &gix::Repository) -> Vec<gix::odb::pack::index::File> {
    let dir = repo.objects.store_ref().path().join("pack");
    let Ok(listing) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = listing
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "idx"))
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|path| gix::odb::pack::index::File::at(path, repo.object_hash()).ok())
        .collect()
}

/// One exported file of a tree.
struct GitTreeFile {
    path: String,
    kind: FileKind,
    blob: ObjectId,
    /// Size of the stored blob (the exported size when nothing converts it).
    blob_size: u64,
    conversion: Option<Conversion>,
    converted_size: OnceLock<u64>,
    repo: SharedRepo,
}

impl GitTreeFile {
    fn read_blob(&self) -> io::Result<Vec<u8>> {
        // No zip can hold a file this large: it is never read whole.
        if self.blob_size > modzip::zip::MAX_ZIP_FILE {
            return Err(io::Error::other(format!(
                "{}: {} bytes, more than a module zip may hold ({} bytes)",
                self.path,
                self.blob_size,
                modzip::zip::MAX_ZIP_FILE
            )));
        }
        self.repo
            .blob(self.blob)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path)))
    }

    /// The size of the converted file, computed once per blob and
    /// conversion.
    fn converted_size(&self, conversion: &Conversion) -> io::Result<u64> {
        if self.blob_size > modzip::zip::MAX_ZIP_FILE && conversion.never_shrinks() {
            // At least the blob's size, so over the zip limit whatever its
            // exact value: the module is refused the same way unread.
            return Ok(self.blob_size);
        }
        let key = (self.blob, *conversion);
        let poisoned = || io::Error::other("converted sizes poisoned by an earlier panic");
        if let Some(size) = self
            .repo
            .converted_sizes
            .lock()
            .map_err(|_| poisoned())?
            .get(&key)
        {
            return Ok(*size);
        }
        let size = self.contents()?.len() as u64;
        self.repo
            .converted_sizes
            .lock()
            .map_err(|_| poisoned())?
            .insert(key, size);
        Ok(size)
    }

    fn contents(&self) -> io::Result<Vec<u8>> {
        let data = self.read_blob()?;
        match &self.conversion {
            Some(conversion) => conversion.apply(data, &self.blob),
            None => Ok(data),
        }
    }
}

impl ModuleFile for GitTreeFile {
    fn path(&self) -> &str {
        &self.path
    }

    fn metadata(&self) -> io::Result<FileMeta> {
        let size = match &self.conversion {
            None => self.blob_size,
            Some(conversion) => match self.converted_size.get() {
                Some(size) => *size,
                None => {
                    let size = self.converted_size(conversion)?;
                    *self.converted_size.get_or_init(|| size)
                }
            },
        };
        Ok(FileMeta {
            kind: self.kind,
            size,
        })
    }

    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(Cursor::new(self.contents()?)))
    }

    /// The blob id, when the file is the blob unchanged: an export-subst
    /// or end-of-line conversion makes content the id does not name.
    fn content_key(&self) -> Option<&[u8]> {
        self.conversion.is_none().then(|| self.blob.as_bytes())
    }

    fn will_not_be_read(&self) {
        if self.kind != FileKind::Regular || self.conversion.is_some() {
            return;
        }
        if let Ok(mut not_read) = self.repo.not_read.lock() {
            *not_read.entry(self.blob).or_default() += 1;
        }
    }
}

fn other(context: &str, err: impl std::fmt::Display) -> CodeError {
    CodeError::Other(format!("{context}: {err}"))
}

/// The directory `git archive --prefix=prefix/`, as the go command runs
/// it, puts every path under.
const ARCHIVE_PREFIX: &str = "prefix/";
/// Longest entry name git writes into a zip archive.
const ZIP_NAME_MAX: usize = 0xffff;
/// Bytes of the local and central zip headers of one entry, besides its
/// name (which both hold): the least each archived entry adds to the
/// archive.
const ZIP_ENTRY_OVERHEAD: u64 = 30 + 46;

/// Memory for the trees kept decoded while walking.
const TREE_CACHE_BYTES: usize = 8 << 20;

/// Lists the files under `subdir` of the tree `root`, in `git archive`
/// order (tree order, depth first), with paths relative to `subdir`.
///
/// `Ok(None)` when `subdir` does not exist in the tree.
///
/// The whole tree is walked, as `git archive` reads all of it into its
/// index for attribute lookups: a path git refuses (`.git`, `git~1`, ...)
/// or a tree deeper than `limits.max_depth` anywhere in it fails the
/// listing as it fails the go command's archive. The walk keeps an
/// explicit stack (no recursion on depth) and stops at the first limit
/// crossed ([`CodeError::Refused`]): depth, `limits.max_entries` entries
/// read, a path too long for a zip, or names alone making the archive
/// larger than the go command accepts. Blob contents are not read.
///
/// `loose_first` reads blobs that are loose objects with plain reads (see
/// [`LooseObjects`]); meant for repositories read in place.
pub(crate) fn list_files(
    repo: &gix::Repository,
    root: ObjectId,
    subdir: &str,
    loose_first: bool,
    limits: &TreeLimits,
    interrupt: &Interrupt,
) -> Result<Option<Vec<TreeFile>>, CodeError> {
    let subdir = subdir.trim_matches('/');
    if !subdir.is_empty() {
        match super::lookup_path(repo, root, subdir)? {
            None => return Ok(None),
            Some((mode, _)) if mode.is_tree() => {}
            // A file or submodule named by the subdirectory exports nothing
            // beneath it.
            Some(_) => return Ok(Some(Vec::new())),
        }
    }

    // Trees shared by many paths are read from memory after the first
    // time; the cache is bounded whatever the tree.
    let mut walk_repo = repo.clone();
    walk_repo.object_cache_size_if_unset(TREE_CACHE_BYTES);
    let mut walk = TreeWalk::new(&walk_repo, limits, subdir)?;
    walk.run(root)?;
    let TreeWalk {
        found,
        attribute_files,
        ..
    } = walk;

    // Attributes come from the .gitattributes blobs of the tree, found by
    // path in an index; one holding just those files answers exactly as
    // an index of the whole tree would.
    let mut index = gix::index::State::new(repo.object_hash());
    for (path, id) in &attribute_files {
        index.dangerously_push_entry(
            gix::index::entry::Stat::default(),
            *id,
            gix::index::entry::Flags::empty(),
            gix::index::entry::Mode::FILE,
            path.as_ref(),
        );
    }
    drop(attribute_files);
    let mut attributes = repo
        .attributes_only(
            &index,
            gix::worktree::stack::state::attributes::Source::IdMapping,
        )
        .map_err(|e| other("reading .gitattributes", e))?;
    let mut outcome = attributes.selected_attribute_matches(CONVERSION_ATTRIBUTES);

    let shared = RepoHandles::new(repo, loose_first, interrupt.clone());
    let strip = if subdir.is_empty() {
        0
    } else {
        subdir.len() + 1
    };
    let mut files: Vec<GitTreeFile> = Vec::with_capacity(found.len());
    for (full_path, mode, oid) in found {
        let full_path: &BStr = full_path.as_ref();
        let rel = full_path.get(strip..).unwrap_or_default();
        let path = rel.to_str_lossy().into_owned();
        let (kind, conversion) = if mode.is_link() {
            // git archive copies link targets verbatim; only regular files
            // go through the attribute-driven conversion.
            (FileKind::Symlink, None)
        } else {
            let platform = attributes
                .at_entry(full_path, Some(gix::index::entry::Mode::FILE))
                .map_err(|e| other(&format!("{path}: attributes"), e))?;
            platform.matching_attributes(&mut outcome);
            let mut states = [gix::attrs::StateRef::Unspecified; 5];
            for (slot, m) in states.iter_mut().zip(outcome.iter_selected()) {
                *slot = m.assignment.state;
            }
            let conversion = Conversion::from_matches(&states);
            (
                FileKind::Regular,
                conversion.changes_content().then_some(conversion),
            )
        };
        files.push(GitTreeFile {
            path,
            kind,
            blob: oid,
            blob_size: 0,
            conversion,
            converted_size: OnceLock::new(),
            repo: Arc::clone(&shared),
        });
    }
    read_blob_sizes(&mut files, &shared)?;
    // Blobs whose contents are converted are read for their size first,
    // on demand; the rest are read ahead when the first is opened.
    let wanted = files
        .iter()
        .filter(|f| f.kind == FileKind::Regular && f.conversion.is_none())
        .map(|f| (f.blob, f.blob_size))
        .collect();
    let _ = shared.read_ahead.set(wanted);
    Ok(Some(
        files.into_iter().map(|f| Box::new(f) as TreeFile).collect(),
    ))
}

/// Listings with fewer files read their blob sizes on one thread.
const PARALLEL_SIZES_FROM: usize = 64;
/// Most threads reading blob sizes.
const MAX_SIZE_THREADS: usize = 4;

/// Fills in each file's `blob_size` from its object header. In a
/// repository of loose objects every header is a file to map and inflate,
/// so large listings spread the lookups over a few threads.
fn read_blob_sizes(files: &mut [GitTreeFile], shared: &SharedRepo) -> Result<(), CodeError> {
    let fill = |part: &mut [GitTreeFile]| -> Result<(), CodeError> {
        shared
            .with(|repo| {
                for file in part.iter_mut() {
                    file.blob_size = shared
                        .blob_size(repo, file.blob)
                        .map_err(|e| other(&file.path, e))?;
                }
                Ok(())
            })
            .map_err(|e| other("reading blob sizes", e))?
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_SIZE_THREADS);
    if threads < 2 || files.len() < PARALLEL_SIZES_FROM {
        return fill(files);
    }
    let per_thread = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks_mut(per_thread)
            .map(|part| scope.spawn(|| fill(part)))
            .collect();
        workers.into_iter().try_for_each(|worker| {
            worker
                .join()
                .unwrap_or_else(|_| Err(CodeError::Other("reading blob sizes panicked".into())))
        })
    })
}

/// One entry of a tree being walked.
struct WalkEntry {
    mode: gix::objs::tree::EntryMode,
    name: BString,
    oid: ObjectId,
}

/// A tree whose entries are being visited.
struct Frame {
    entries: std::vec::IntoIter<WalkEntry>,
    /// Length of the walk's path before this tree's name was appended.
    parent_len: usize,
    /// 0 for the root tree.
    depth: usize,
    /// Whether this tree is the listed subdirectory or inside it.
    inside: bool,
}

/// A depth-first walk of a whole commit tree, in tree order, that collects
/// the files under one subdirectory and every `.gitattributes` file, and
/// enforces the limits of [`list_files`]. Memory is bounded by the entries
/// read, whatever the shape of the tree.
struct TreeWalk<'a> {
    repo: &'a gix::Repository,
    limits: TreeLimits,
    /// How git (and gix) validate path components.
    protect: gix::validate::path::component::Options,
    /// The listed subdirectory, "" for the root.
    subdir: &'a str,
    entries_read: usize,
    name_bytes: usize,
    /// What the archive's headers alone take: a lower bound of its size.
    archive_bytes: u64,
    /// The directory being walked, with a trailing slash (empty at the root).
    path: BString,
    /// Non-submodule entries under `subdir`: full path, mode, blob.
    found: Vec<(BString, gix::objs::tree::EntryMode, ObjectId)>,
    /// Regular files named `.gitattributes` in any letter case: full path, blob.
    attribute_files: Vec<(BString, ObjectId)>,
}

fn refused(reason: String) -> CodeError {
    CodeError::Refused(reason)
}

impl<'a> TreeWalk<'a> {
    fn new(
        repo: &'a gix::Repository,
        limits: &TreeLimits,
        subdir: &'a str,
    ) -> Result<TreeWalk<'a>, CodeError> {
        Ok(TreeWalk {
            repo,
            limits: *limits,
            protect: protect_options(repo)?,
            subdir,
            entries_read: 0,
            name_bytes: 0,
            archive_bytes: 0,
            path: BString::default(),
            found: Vec::new(),
            attribute_files: Vec::new(),
        })
    }

    /// Reads the entries of tree `id` at `depth`, counting them against the
    /// limits before keeping them.
    fn read_tree(&mut self, id: ObjectId, depth: usize) -> Result<Vec<WalkEntry>, CodeError> {
        if depth > self.limits.max_depth {
            return Err(refused("exceeded maximum allowed tree depth".to_string()));
        }
        let tree = self
            .repo
            .find_tree(id)
            .map_err(|e| other(&format!("reading tree {id}"), e))?;
        let decoded = tree
            .decode()
            .map_err(|e| other(&format!("decoding tree {id}"), e))?;
        self.entries_read = self.entries_read.saturating_add(decoded.entries.len());
        if self.entries_read > self.limits.max_entries {
            return Err(refused(format!(
                "tree has more than {} entries, the most read for one module",
                self.limits.max_entries
            )));
        }
        let names: usize = decoded.entries.iter().map(|e| e.filename.len()).sum();
        self.name_bytes = self.name_bytes.saturating_add(names);
        let max_names = self
            .limits
            .max_entries
            .saturating_mul(TreeLimits::NAME_BYTES_PER_ENTRY);
        if self.name_bytes > max_names {
            return Err(refused(format!(
                "tree entry names take more than {max_names} bytes, the most read for one module"
            )));
        }
        Ok(decoded
            .entries
            .iter()
            .map(|e| WalkEntry {
                mode: e.mode,
                name: e.filename.to_owned(),
                oid: e.oid.to_owned(),
            })
            .collect())
    }

    /// git's check of each path component as it reads a tree into its
    /// index: `.git` in any spelling, NTFS short names and the like.
    fn validate(&self, entry: &WalkEntry) -> Result<(), CodeError> {
        use gix::validate::path::component;
        if entry.name.is_empty() {
            return Ok(());
        }
        let invalid = |_| {
            let mut path = self.path.clone();
            path.push_str(&entry.name);
            refused(format!("invalid path '{}'", shorten(path.as_ref())))
        };
        component(entry.name.as_ref(), None, self.protect).map_err(invalid)?;
        if entry.mode.is_link() {
            component(
                entry.name.as_ref(),
                Some(component::Mode::Symlink),
                self.protect,
            )
            .map_err(invalid)?;
        }
        Ok(())
    }

    /// Counts one entry `git archive` writes (the walk's path plus `name`,
    /// with a slash for directories) against git's limit on names and the
    /// go command's on the archive size.
    fn archived(&mut self, name: &BStr, dir: bool, oid: &ObjectId) -> Result<(), CodeError> {
        let len = ARCHIVE_PREFIX.len() + self.path.len() + name.len() + usize::from(dir);
        if len > ZIP_NAME_MAX {
            let mut path = BString::from(ARCHIVE_PREFIX);
            path.push_str(&self.path);
            path.push_str(name);
            return Err(refused(format!(
                "path too long ({len} chars, SHA1: {oid}): {}",
                shorten(path.as_ref())
            )));
        }
        self.archive_bytes = self
            .archive_bytes
            .saturating_add(ZIP_ENTRY_OVERHEAD + 2 * len as u64);
        if self.archive_bytes > modzip::zip::MAX_ZIP_FILE {
            return Err(refused("downloaded zip file too large".to_string()));
        }
        Ok(())
    }

    fn run(&mut self, root: ObjectId) -> Result<(), CodeError> {
        let entries = self.read_tree(root, 0)?;
        let mut stack = vec![Frame {
            entries: entries.into_iter(),
            parent_len: 0,
            depth: 0,
            inside: self.subdir.is_empty(),
        }];
        while let Some(frame) = stack.last_mut() {
            let Some(entry) = frame.entries.next() else {
                let parent_len = frame.parent_len;
                stack.pop();
                self.path.truncate(parent_len);
                continue;
            };
            let (depth, inside) = (frame.depth, frame.inside);
            self.validate(&entry)?;
            if entry.mode.is_tree() {
                if inside {
                    self.archived(entry.name.as_ref(), true, &entry.oid)?;
                }
                let parent_len = self.path.len();
                self.path.push_str(&entry.name);
                let inside = inside || self.path == self.subdir.as_bytes();
                self.path.push(b'/');
                let entries = self.read_tree(entry.oid, depth + 1)?;
                stack.push(Frame {
                    entries: entries.into_iter(),
                    parent_len,
                    depth: depth + 1,
                    inside,
                });
                continue;
            }
            let mut full_path = self.path.clone();
            full_path.push_str(&entry.name);
            if entry.mode.kind() == gix::objs::tree::EntryKind::Blob
                && entry.name.eq_ignore_ascii_case(b".gitattributes")
            {
                self.attribute_files.push((full_path.clone(), entry.oid));
            }
            // Submodules are not part of the archive's file set.
            if inside && !entry.mode.is_commit() {
                self.archived(entry.name.as_ref(), false, &entry.oid)?;
                self.found.push((full_path, entry.mode, entry.oid));
            }
        }
        Ok(())
    }
}

/// A path cut short for a message.
fn shorten(path: &BStr) -> String {
    const KEEP: usize = 200;
    match path.get(..KEEP) {
        Some(head) if path.len() > KEEP => format!("{}...", head.to_str_lossy()),
        _ => path.to_str_lossy().into_owned(),
    }
}

/// The path component checks gix applies when reading a tree into an
/// index (`core.protectNTFS` on unless configured off, `core.protectHFS`
/// on macOS, Windows device names on Windows), from the repository's
/// configuration.
fn protect_options(
    repo: &gix::Repository,
) -> Result<gix::validate::path::component::Options, CodeError> {
    let config = repo.config_snapshot();
    let flag = |key: &str, default: bool| -> Result<bool, CodeError> {
        config
            .try_boolean(key)
            .map(|value| value.unwrap_or(default))
            .map_err(|e| other(&format!("reading {key}"), e))
    };
    Ok(gix::validate::path::component::Options {
        protect_windows: flag("gitoxide.core.protectWindows", cfg!(windows))?,
        protect_hfs: flag("core.protectHFS", cfg!(target_os = "macos"))?,
        protect_ntfs: flag("core.protectNTFS", true)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gix::attrs::StateRef;
    use gix::objs::tree::{Entry, EntryKind};
    use std::io::Write;
    use std::path::Path;

    /// A bare repository written object by object, in process.
    struct Repo {
        _dir: tempfile::TempDir,
        repo: gix::Repository,
    }

    impl Repo {
        fn new() -> Repo {
            let dir = tempfile::tempdir().unwrap();
            let repo = gix::init_bare(dir.path().join("r.git")).unwrap();
            Repo { _dir: dir, repo }
        }

        fn blob(&self, data: &[u8]) -> ObjectId {
            self.repo.write_blob(data).unwrap().detach()
        }

        /// A tree of `(kind, name, id)` entries, sorted as git wants them.
        fn tree(&self, entries: &[(EntryKind, &str, ObjectId)]) -> ObjectId {
            let mut tree = gix::objs::Tree::empty();
            tree.entries = entries
                .iter()
                .map(|(kind, name, oid)| Entry {
                    mode: (*kind).into(),
                    filename: (*name).into(),
                    oid: *oid,
                })
                .collect();
            tree.entries.sort();
            self.repo.write_object(&tree).unwrap().detach()
        }

        /// A loose blob whose header claims `size` bytes but that holds only
        /// a few: reading it fails, so a test passing with it shows that
        /// only its header was looked at.
        fn fake_blob(&self, size: u64, seed: u8) -> ObjectId {
            let id = ObjectId::from_bytes_or_panic(&[seed; 20]);
            let hex = id.to_hex().to_string();
            let dir = self.repo.objects.store_ref().path().join(&hex[..2]);
            std::fs::create_dir_all(&dir).unwrap();
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(format!("blob {size}\0abc").as_bytes()).unwrap();
            std::fs::write(dir.join(&hex[2..]), z.finish().unwrap()).unwrap();
            id
        }

        fn list(
            &self,
            root: ObjectId,
            subdir: &str,
            limits: &TreeLimits,
        ) -> Result<Option<Vec<TreeFile>>, CodeError> {
            list_files(&self.repo, root, subdir, true, limits, &Interrupt::new())
        }
    }

    /// Tree entries (kind, path, blob) and the contents by path.
    type Sources = (Vec<(EntryKind, String, ObjectId)>, HashMap<String, Vec<u8>>);

    /// `count` Go sources alike enough that git stores most as deltas of
    /// one another: their tree entries and contents by path.
    fn similar_sources(r: &Repo, count: usize) -> Sources {
        let mut entries = Vec::new();
        let mut expected = HashMap::new();
        for i in 0..count {
            let mut text = String::from("package p\n\n");
            for f in 0..60 {
                text.push_str(&format!(
                    "func F{f}() int {{ return {} }}\n",
                    f * (1 + i % 3)
                ));
            }
            text.push_str(&format!("// file {i}\n"));
            let id = r.blob(text.as_bytes());
            expected.insert(format!("f{i:02}.go"), text.into_bytes());
            entries.push((EntryKind::Blob, format!("f{i:02}.go"), id));
        }
        (entries, expected)
    }

    /// `entries` in a tree, that tree and its objects in one pack (deltas
    /// allowed), the loose copies removed: the repository reopened, and
    /// the tree.
    fn packed_tree(
        r: &Repo,
        entries: &[(EntryKind, String, ObjectId)],
    ) -> (gix::Repository, ObjectId) {
        let named: Vec<(EntryKind, &str, ObjectId)> = entries
            .iter()
            .map(|(kind, name, id)| (*kind, name.as_str(), *id))
            .collect();
        let root = r.tree(&named);
        let git_dir = r.repo.git_dir().to_path_buf();
        let mut ids: Vec<String> = entries.iter().map(|(_, _, id)| id.to_string()).collect();
        ids.push(root.to_string());
        git_in(
            &git_dir,
            &[
                "pack-objects",
                "-q",
                "--window=50",
                "--depth=50",
                "objects/pack/pack",
            ],
            (ids.join("\n") + "\n").as_bytes(),
        );
        git_in(&git_dir, &["prune-packed"], b"");
        let packed = gix::open(&git_dir).unwrap();
        assert!(!pack_indexes(&packed).is_empty(), "nothing was packed");
        (packed, root)
    }

    /// What `read` is for: (id, size) once per path of `entries`.
    fn wanted_of(
        entries: &[(EntryKind, String, ObjectId)],
        expected: &HashMap<String, Vec<u8>>,
    ) -> Vec<(ObjectId, u64)> {
        entries
            .iter()
            .map(|(_, name, id)| (*id, expected[name].len() as u64))
            .collect()
    }

    /// A pack whose blobs are nearly all wanted (a fetched version's own
    /// pack) is resolved whole, and gives every blob as reading it on its
    /// own does; one where few are wanted is read blob by blob; a stopped
    /// read reads nothing.
    #[test]
    fn a_pack_mostly_wanted_is_resolved_whole_with_the_same_contents() {
        let r = Repo::new();
        let (entries, expected) = similar_sources(&r, 40);
        let (packed, _) = packed_tree(&r, &entries);
        let wanted = wanted_of(&entries, &expected);

        let mut ahead = PackOrderBlobs::read(&packed, &wanted, &Interrupt::new());
        assert_eq!(ahead.packs_resolved_whole, 1);
        assert_eq!(ahead.contents.len(), entries.len());
        for (_, name, id) in &entries {
            let direct = packed.find_blob(*id).unwrap().detach().data;
            assert_eq!(direct, expected[name]);
            assert_eq!(
                ahead.take(id).as_deref(),
                Some(&expected[name][..]),
                "{name}"
            );
        }

        let few = &wanted[..5];
        let mut ahead = PackOrderBlobs::read(&packed, few, &Interrupt::new());
        assert_eq!(ahead.packs_resolved_whole, 0);
        for (_, name, id) in &entries[..5] {
            assert_eq!(
                ahead.take(id).as_deref(),
                Some(&expected[name][..]),
                "{name}"
            );
        }

        let stopped = Interrupt::new();
        stopped.interrupt();
        let ahead = PackOrderBlobs::read(&packed, &wanted, &stopped);
        assert!(ahead.contents.is_empty());
    }

    /// Runs git in `dir` (no system or global configuration) with `input`
    /// on its standard input.
    fn git_in(dir: &Path, args: &[&str], input: &[u8]) {
        let mut child = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("running git");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
        drop(stdin);
        assert!(child.wait().unwrap().success(), "git {args:?}");
    }

    /// `pack` stored in `r`'s object directory and indexed with
    /// `git index-pack`: the repository reopened.
    fn with_pack(r: &Repo, pack: &[u8]) -> gix::Repository {
        let git_dir = r.repo.git_dir().to_path_buf();
        let checksum: String = pack[pack.len() - 20..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let path = format!("objects/pack/pack-{checksum}.pack");
        git_in(&git_dir, &["index-pack", "--stdin", &path], pack);
        gix::open(&git_dir).unwrap()
    }

    /// A delta whose result is over the read-ahead's blob size, against a
    /// base under it, passes the check of the entry headers; the limit on
    /// every allocation then stops the whole-pack read, and the small
    /// blob is read on its own.
    #[test]
    fn a_pack_with_a_delta_growing_past_the_limit_is_not_resolved_whole() {
        let r = Repo::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let base: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let packed = with_pack(&r, &fixtures::hostile_pack::with_growing_delta(&base, 2));
        let base_id =
            gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::object::Kind::Blob, &base).unwrap();
        let grown: Vec<u8> = [&base[..], &base[..]].concat();
        assert!(grown.len() as u64 > READ_AHEAD_MAX_BLOB);
        assert_eq!(packed.find_blob(base_id).unwrap().detach().data, base);

        let wanted = [(base_id, base.len() as u64)];
        let mut ahead = PackOrderBlobs::read(&packed, &wanted, &Interrupt::new());
        assert_eq!(ahead.packs_resolved_whole, 0);
        assert_eq!(ahead.take(&base_id).as_deref(), Some(&base[..]));
    }

    /// Blobs of a packed repository (similar contents, so git stores most
    /// as deltas) read ahead in pack order give the same bytes as reading
    /// each on its own, once per path naming them; blobs over the size
    /// limit are left to be read on demand, and a pack holding one is not
    /// resolved whole (every object of it would pass through memory).
    #[test]
    fn blobs_read_ahead_in_pack_order_match_direct_reads() {
        let r = Repo::new();
        let (mut entries, mut expected) = similar_sources(&r, 40);
        // One blob under two paths.
        let shared = entries[3].2;
        entries.push((EntryKind::Blob, "copy.go".to_string(), shared));
        expected.insert("copy.go".to_string(), expected["f03.go"].clone());
        let big = vec![b'x'; READ_AHEAD_MAX_BLOB as usize + 1];
        entries.push((EntryKind::Blob, "big.txt".to_string(), r.blob(&big)));
        expected.insert("big.txt".to_string(), big);
        let (packed, root) = packed_tree(&r, &entries);

        let wanted = wanted_of(&entries, &expected);
        // Past the deadline nothing is read ahead.
        let stopped = Interrupt::new();
        stopped.interrupt();
        assert!(PackOrderBlobs::read(&packed, &wanted, &stopped)
            .contents
            .is_empty());

        let mut ahead = PackOrderBlobs::read(&packed, &wanted, &Interrupt::new());
        assert_eq!(ahead.packs_resolved_whole, 0);
        assert!(
            !ahead.contents.contains_key(&entries[41].2),
            "big blob read ahead"
        );
        for (_, name, id) in &entries[..41] {
            assert!(ahead.contents.contains_key(id), "{name} not read ahead");
        }
        assert_eq!(
            ahead.take(&shared).as_deref(),
            Some(&expected["f03.go"][..])
        );
        assert_eq!(
            ahead.take(&shared).as_deref(),
            Some(&expected["f03.go"][..])
        );
        assert_eq!(
            ahead.take(&shared),
            None,
            "handed out more than once per path"
        );

        // Files the zip writer will not read are left out of the
        // read-ahead, once per path: `shared` is still read ahead for the
        // other path naming it.
        let handles = RepoHandles::new(&packed, false, Interrupt::new());
        handles.read_ahead.set(wanted.clone()).unwrap();
        let told: Vec<&(EntryKind, String, ObjectId)> = entries[3..30].iter().collect();
        for (_, name, id) in &told {
            let file = GitTreeFile {
                path: name.clone(),
                kind: FileKind::Regular,
                blob: *id,
                blob_size: expected[name].len() as u64,
                conversion: None,
                converted_size: OnceLock::new(),
                repo: Arc::clone(&handles),
            };
            file.will_not_be_read();
        }
        assert_eq!(handles.blob(entries[0].2).unwrap(), expected["f00.go"]);
        {
            let ahead = handles.ahead.get().unwrap().lock().unwrap();
            for (_, name, id) in &told[1..] {
                assert!(!ahead.contents.contains_key(id), "{name} read ahead");
            }
            assert_eq!(ahead.contents.get(&shared).map(|(_, left)| *left), Some(1));
            assert!(ahead.contents.contains_key(&entries[1].2));
            assert!(ahead.contents.contains_key(&entries[30].2));
        }
        // Told, then read after all (nothing forbids it):
        // read on demand, the same bytes.
        assert_eq!(handles.blob(entries[10].2).unwrap(), expected["f10.go"]);

        let files = list_files(
            &packed,
            root,
            "",
            false,
            &TreeLimits::default(),
            &Interrupt::new(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(files.len(), expected.len());
        for file in &files {
            let mut data = Vec::new();
            file.open().unwrap().read_to_end(&mut data).unwrap();
            assert_eq!(data, expected[file.path()], "{}", file.path());
        }
    }

    /// Many blobs read one by one are shared out in runs of neighbours in
    /// pack order, one per processor: every blob comes out as a direct
    /// read gives it, whichever run the bases of its chain fell in.
    #[test]
    fn blobs_read_one_by_one_on_several_processors_match_direct_reads() {
        let r = Repo::new();
        let (entries, expected) = similar_sources(&r, 2 * PARALLEL_READ_AHEAD_FROM);
        let (packed, _) = packed_tree(&r, &entries);
        let indexes = pack_indexes(&packed);
        assert_eq!(indexes.len(), 1);
        let mut located: Vec<Located> = entries
            .iter()
            .map(|(_, _, id)| {
                let entry = indexes[0].lookup(id).unwrap();
                (0, indexes[0].pack_offset_at_index(entry), *id, 1)
            })
            .collect();
        located.sort_unstable();
        let processors = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(
            read_ahead_threads(located.len()),
            processors.min(READ_AHEAD_MAX_THREADS)
        );
        assert_eq!(read_ahead_threads(PARALLEL_READ_AHEAD_FROM - 1), 1);

        let read: HashMap<ObjectId, (Vec<u8>, usize)> =
            read_in_pack_order(&packed, &located, &Interrupt::new())
                .into_iter()
                .collect();
        assert_eq!(read.len(), entries.len());
        for (_, name, id) in &entries {
            assert_eq!(read[id], (expected[name].clone(), 1), "{name}");
        }
        let stopped = Interrupt::new();
        stopped.interrupt();
        assert!(read_in_pack_order(&packed, &located, &stopped).is_empty());
    }

    /// `dirs` nested directories named `d` (the innermost empty) beside a
    /// go.mod: the innermost tree is at depth `dirs`.
    fn deep_tree(r: &Repo, dirs: usize) -> ObjectId {
        let mut t = r.tree(&[]);
        for _ in 1..dirs {
            t = r.tree(&[(EntryKind::Tree, "d", t)]);
        }
        let gomod = r.blob(b"module example.com/m\n");
        r.tree(&[
            (EntryKind::Tree, "d", t),
            (EntryKind::Blob, "go.mod", gomod),
        ])
    }

    /// A listed file as the zip writer takes it.
    struct Listed(TreeFile);

    impl ModuleFile for Listed {
        fn path(&self) -> &str {
            self.0.path()
        }
        fn metadata(&self) -> io::Result<FileMeta> {
            self.0.metadata()
        }
        fn open(&self) -> io::Result<Box<dyn Read + '_>> {
            self.0.open()
        }
    }

    fn refusal(result: Result<Option<Vec<TreeFile>>, CodeError>) -> String {
        match result {
            Err(CodeError::Refused(reason)) => reason,
            Err(other) => panic!("expected a refusal, got {other:?}"),
            Ok(files) => panic!(
                "expected a refusal, got {} files",
                files.map_or(0, |f| f.len())
            ),
        }
    }

    /// Runs `work` on a thread with a small stack: a walk recursing per
    /// directory level would overflow it.
    fn on_small_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(work)
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn trees_deeper_than_git_reads_are_refused_iteratively() {
        let outcome = on_small_stack(|| {
            let r = Repo::new();
            // git reads 2048 nested directories and refuses 2049.
            let at_limit = deep_tree(&r, 2048);
            let listed = r.list(at_limit, "", &TreeLimits::default()).map(|f| {
                f.unwrap()
                    .iter()
                    .map(|f| f.path().to_string())
                    .collect::<Vec<_>>()
            });
            let over = deep_tree(&r, 2049);
            let deep = deep_tree(&r, 3000);
            (
                listed,
                refusal(r.list(over, "", &TreeLimits::default())),
                refusal(r.list(deep, "", &TreeLimits::default())),
                // A module beside the deep tree is refused as git refuses
                // to archive it: git reads the whole tree.
                refusal(r.list(deep, "d", &TreeLimits::default())),
                refusal(r.list(
                    at_limit,
                    "",
                    &TreeLimits {
                        max_depth: 100,
                        ..TreeLimits::default()
                    },
                )),
            )
        });
        assert_eq!(outcome.0.unwrap(), vec!["go.mod".to_string()]);
        for reason in [outcome.1, outcome.2, outcome.3, outcome.4] {
            assert_eq!(reason, "exceeded maximum allowed tree depth");
        }
    }

    #[test]
    fn fanout_bomb_is_refused_at_the_entry_limit() {
        let r = Repo::new();
        let blob = r.blob(b"x\n");
        let names: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
        let level = |kind: EntryKind, id: ObjectId| -> Vec<(EntryKind, &str, ObjectId)> {
            names.iter().map(|n| (kind, n.as_str(), id)).collect()
        };
        let mut t = r.tree(&level(EntryKind::Blob, blob));
        // 10^9 paths from ten small trees.
        for _ in 0..8 {
            t = r.tree(&level(EntryKind::Tree, t));
        }
        let start = std::time::Instant::now();
        let limits = TreeLimits {
            max_entries: 100_000,
            ..TreeLimits::default()
        };
        assert_eq!(
            refusal(r.list(t, "", &limits)),
            "tree has more than 100000 entries, the most read for one module"
        );
        assert_eq!(
            refusal(r.list(t, "n3/n4", &TreeLimits::default())),
            "tree has more than 500000 entries, the most read for one module"
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn shared_huge_blob_is_refused_by_size_unread() {
        let r = Repo::new();
        // Ten paths to one blob said to be 60 MiB: 600 MiB in all.
        let huge = r.fake_blob(60 << 20, 0xab);
        let gomod = r.blob(b"module example.com/m\n");
        let mut entries = vec![(EntryKind::Blob, "go.mod", gomod)];
        let names: Vec<String> = (0..10).map(|i| format!("f{i}.bin")).collect();
        entries.extend(names.iter().map(|n| (EntryKind::Blob, n.as_str(), huge)));
        let root = r.tree(&entries);
        let files = r.list(root, "", &TreeLimits::default()).unwrap().unwrap();
        assert_eq!(files.len(), 11);
        assert_eq!(files[1].metadata().unwrap().size, 60 << 20);
        let m = modzip::Version {
            path: "example.com/m".into(),
            version: "v1.0.0".into(),
        };
        let files: Vec<Listed> = files.into_iter().map(Listed).collect();
        let err = modzip::zip::create(Cursor::new(Vec::new()), &m, &files).unwrap_err();
        assert!(
            matches!(err, modzip::zip::ZipError::SourceTreeTooLarge { .. }),
            "{err}"
        );
        // Reading it would have failed: the blob holds three bytes.
        assert!(files[1].open().is_err());
        drop(files);
    }

    #[test]
    fn converted_blobs_over_the_zip_limit_are_not_read() {
        let r = Repo::new();
        let huge = r.fake_blob(modzip::zip::MAX_ZIP_FILE + 1, 0xcd);
        let attrs = r.blob(b"*.txt text eol=crlf\n*.id ident\n");
        let root = r.tree(&[
            (EntryKind::Blob, ".gitattributes", attrs),
            (EntryKind::Blob, "a.txt", huge),
            (EntryKind::Blob, "b.id", huge),
        ]);
        let files = r.list(root, "", &TreeLimits::default()).unwrap().unwrap();
        // Line endings only grow a file: its blob size already says too large.
        assert_eq!(
            files[1].metadata().unwrap().size,
            modzip::zip::MAX_ZIP_FILE + 1
        );
        // $Id$ expansion may shrink it, and it is too large to read.
        assert!(files[2].metadata().is_err());
    }

    #[test]
    fn attributes_come_from_the_root_and_the_subdirectory() {
        let r = Repo::new();
        let text = r.blob(b"a\nb\n");
        let root_attrs = r.blob(b"*.txt text eol=crlf\n");
        let sub_attrs = r.blob(b"keep.txt -text\n");
        let gomod = r.blob(b"module example.com/m/sub\n");
        let inner = r.tree(&[(EntryKind::Blob, "c.txt", text)]);
        let sub = r.tree(&[
            (EntryKind::Blob, ".gitattributes", sub_attrs),
            (EntryKind::Blob, "a.txt", text),
            (EntryKind::Blob, "go.mod", gomod),
            (EntryKind::Tree, "in", inner),
            (EntryKind::Blob, "keep.txt", text),
        ]);
        let other_attrs = r.blob(b"*.txt -text\n");
        let other = r.tree(&[(EntryKind::Blob, ".gitattributes", other_attrs)]);
        let root = r.tree(&[
            (EntryKind::Blob, ".gitattributes", root_attrs),
            (EntryKind::Tree, "other", other),
            (EntryKind::Tree, "sub", sub),
        ]);
        let files = r
            .list(root, "sub", &TreeLimits::default())
            .unwrap()
            .unwrap();
        let got: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|f| {
                (
                    f.path().to_string(),
                    crate::codehost::read_all(f.as_ref()).unwrap(),
                )
            })
            .collect();
        let crlf = b"a\r\nb\r\n".to_vec();
        let lf = b"a\nb\n".to_vec();
        assert_eq!(
            got,
            vec![
                (".gitattributes".to_string(), b"keep.txt -text\n".to_vec()),
                ("a.txt".to_string(), crlf.clone()),
                ("go.mod".to_string(), b"module example.com/m/sub\n".to_vec()),
                ("in/c.txt".to_string(), crlf),
                ("keep.txt".to_string(), lf),
            ]
        );
    }

    #[test]
    fn paths_git_refuses_anywhere_in_the_tree_fail_the_listing() {
        let r = Repo::new();
        let blob = r.blob(b"x");
        let bad = r.tree(&[(EntryKind::Blob, ".GIT", blob)]);
        let module = r.tree(&[(EntryKind::Blob, "go.mod", blob)]);
        let root = r.tree(&[
            (EntryKind::Tree, "mod", module),
            (EntryKind::Tree, "other", bad),
        ]);
        assert_eq!(
            refusal(r.list(root, "mod", &TreeLimits::default())),
            "invalid path 'other/.GIT'"
        );
    }

    fn value(v: &'static str) -> StateRef<'static> {
        StateRef::Value(gix::attrs::state::ValueRef::from_bytes(v.as_bytes()))
    }

    fn conv(
        crlf: StateRef<'static>,
        eol: StateRef<'static>,
        text: StateRef<'static>,
    ) -> Conversion {
        Conversion::from_matches(&[
            crlf,
            StateRef::Unspecified,
            eol,
            text,
            StateRef::Unspecified,
        ])
    }

    #[test]
    fn only_crlf_endings_change_content_under_autocrlf_input() {
        use StateRef::*;
        assert!(!conv(Unspecified, Unspecified, Unspecified).changes_content());
        assert!(!conv(Unspecified, Unspecified, Set).changes_content());
        assert!(!conv(Set, Unspecified, Unspecified).changes_content());
        assert!(!conv(Unspecified, value("lf"), Unspecified).changes_content());
        assert!(conv(Unspecified, value("crlf"), Unspecified).changes_content());
        assert!(conv(Unspecified, value("crlf"), value("auto")).changes_content());
        assert!(!conv(Unspecified, value("crlf"), Unset).changes_content());
        // The legacy crlf attribute loses to an explicit -text.
        assert!(!conv(Set, value("crlf"), Unset).changes_content());
    }

    #[test]
    fn crlf_conversion_respects_auto_detection() {
        let text_crlf = conv(StateRef::Unspecified, value("crlf"), StateRef::Set);
        let id = ObjectId::null(gix::hash::Kind::Sha1);
        assert_eq!(
            text_crlf.apply(b"a\nb\r\nc\n".to_vec(), &id).unwrap(),
            b"a\r\nb\r\nc\r\n"
        );
        let auto_crlf = conv(StateRef::Unspecified, value("crlf"), value("auto"));
        // Mixed endings and binary-looking data stay untouched in auto mode.
        assert_eq!(
            auto_crlf.apply(b"a\nb\r\n".to_vec(), &id).unwrap(),
            b"a\nb\r\n"
        );
        assert_eq!(auto_crlf.apply(b"a\0\n".to_vec(), &id).unwrap(), b"a\0\n");
        assert_eq!(
            auto_crlf.apply(b"a\nb\n".to_vec(), &id).unwrap(),
            b"a\r\nb\r\n"
        );
    }

    #[test]
    fn unicode_worktree_encodings() {
        let enc = |label: &str| WorktreeEncoding::for_label(label.as_bytes()).unwrap();
        assert_eq!(
            enc("utf-16").encode("é".as_bytes()).unwrap(),
            [0xFF, 0xFE, 0xE9, 0]
        );
        assert_eq!(enc("UTF-16BE").encode("é".as_bytes()).unwrap(), [0, 0xE9]);
        assert_eq!(
            enc("UTF-16LE").encode("😀".as_bytes()).unwrap(),
            [0x3D, 0xD8, 0x00, 0xDE]
        );
        assert_eq!(enc("UTF-32BE").encode(b"A").unwrap(), [0, 0, 0, 0x41]);
        assert_eq!(enc("utf-16").encode(b"\xff"), None);
        assert!(WorktreeEncoding::for_label(b"UTF-8").is_none());
        assert!(WorktreeEncoding::for_label(b"NO-SUCH").is_none());
        assert!(matches!(enc("ISO-8859-1"), WorktreeEncoding::Other(_)));
    }

    #[test]
    fn ident_expands_to_blob_id() {
        let c = Conversion::from_matches(&[
            StateRef::Unspecified,
            StateRef::Set,
            StateRef::Unspecified,
            StateRef::Unspecified,
            StateRef::Unspecified,
        ]);
        assert!(c.changes_content());
        let id = ObjectId::from_hex(b"08a4620a27060eb3dbee93734f82d9146bfd1b4d").unwrap();
        let expanded = "$Id: 08a4620a27060eb3dbee93734f82d9146bfd1b4d $";
        let out = c.apply(b"x $Id$ y\n".to_vec(), &id).unwrap();
        assert_eq!(out, format!("x {expanded} y\n").as_bytes());
        let out = c.apply(b"$Id: old $ $Id:x$".to_vec(), &id).unwrap();
        assert_eq!(out, format!("{expanded} {expanded}").as_bytes());
        // Foreign keywords (inner spaces), line breaks and no keyword at all.
        for kept in [
            &b"$Id: a b $"[..],
            b"$Id: x\n$",
            b"$Ident$",
            b"no dollar",
            b"$Id: open",
        ] {
            assert_eq!(c.apply(kept.to_vec(), &id).unwrap(), kept);
        }
    }
}
