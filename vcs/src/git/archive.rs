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

use std::io::{self, Cursor, Read};
use std::sync::{Arc, Mutex, OnceLock};

use gix::bstr::{BStr, BString, ByteSlice, ByteVec};
use gix::filter::plumbing::eol::{self, AttributesDigest};
use gix::ObjectId;
use modzip::zip::{FileKind, FileMeta, ModuleFile};

use super::loose::LooseObjects;
use crate::codehost::{CodeError, TreeFile};

/// The attributes that influence the worktree form of a blob, in the order
/// [`Conversion::from_matches`] expects them.
const CONVERSION_ATTRIBUTES: [&str; 5] = ["crlf", "ident", "eol", "text", "working-tree-encoding"];

/// `core.autocrlf=input` and `core.eol=lf`, as the go command sets them.
const EOL_CONFIG: eol::Configuration = eol::Configuration {
    auto_crlf: eol::AutoCrlf::Input,
    eol: Some(eol::Mode::Lf),
};

/// How one blob's bytes change on their way into the archive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conversion {
    ident: bool,
    digest: AttributesDigest,
    encoding: Option<WorktreeEncoding>,
}

/// A `working-tree-encoding` that changes bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

type SharedRepo = Arc<RepoHandles>;

impl RepoHandles {
    fn new(repo: &gix::Repository, loose_first: bool) -> SharedRepo {
        Arc::new(RepoHandles {
            template: repo.clone().into_sync(),
            idle: Mutex::new(vec![repo.clone()]),
            loose: loose_first
                .then(|| LooseObjects::new(repo.objects.store_ref().path().to_path_buf())),
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
        self.repo
            .blob(self.blob)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path)))
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
        let size = match self.conversion {
            None => self.blob_size,
            Some(_) => match self.converted_size.get() {
                Some(size) => *size,
                None => {
                    let size = self.contents()?.len() as u64;
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
}

fn other(context: &str, err: impl std::fmt::Display) -> CodeError {
    CodeError::Other(format!("{context}: {err}"))
}

/// Lists the files under `subdir` of the tree `root`, in `git archive`
/// order (tree order, depth first), with paths relative to `subdir`.
///
/// `Ok(None)` when `subdir` does not exist in the tree.
///
/// `loose_first` reads blobs that are loose objects with plain reads (see
/// [`LooseObjects`]); meant for repositories read in place.
pub(crate) fn list_files(
    repo: &gix::Repository,
    root: ObjectId,
    subdir: &str,
    loose_first: bool,
) -> Result<Option<Vec<TreeFile>>, CodeError> {
    let subdir = subdir.trim_matches('/');
    let start = if subdir.is_empty() {
        root
    } else {
        match super::lookup_path(repo, root, subdir)? {
            None => return Ok(None),
            Some((mode, id)) if mode.is_tree() => id,
            // A file or submodule named by the subdirectory exports nothing
            // beneath it.
            Some(_) => return Ok(Some(Vec::new())),
        }
    };

    let index = repo
        .index_from_tree(&root)
        .map_err(|e| other("building attribute index", e))?;
    let mut attributes = repo
        .attributes_only(
            &index,
            gix::worktree::stack::state::attributes::Source::IdMapping,
        )
        .map_err(|e| other("reading .gitattributes", e))?;
    let mut outcome = attributes.selected_attribute_matches(CONVERSION_ATTRIBUTES);

    let shared = RepoHandles::new(repo, loose_first);
    let mut files: Vec<GitTreeFile> = Vec::new();
    let mut prefix = BString::from(subdir);
    if !prefix.is_empty() {
        prefix.push(b'/');
    }
    let mut walk = Walk {
        repo,
        attributes: &mut attributes,
        outcome: &mut outcome,
        shared: &shared,
        files: &mut files,
        strip: prefix.len(),
    };
    walk.tree(start, &mut prefix)?;
    read_blob_sizes(&mut files, &shared)?;
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

struct Walk<'a, 'repo> {
    repo: &'repo gix::Repository,
    attributes: &'a mut gix::AttributeStack<'repo>,
    outcome: &'a mut gix::attrs::search::Outcome,
    shared: &'a SharedRepo,
    /// The files found, their `blob_size` not yet read.
    files: &'a mut Vec<GitTreeFile>,
    /// Length of the `subdir/` prefix removed from every exported path.
    strip: usize,
}

impl Walk<'_, '_> {
    fn tree(&mut self, id: ObjectId, prefix: &mut BString) -> Result<(), CodeError> {
        let tree = self
            .repo
            .find_tree(id)
            .map_err(|e| other(&format!("reading tree {id}"), e))?;
        let decoded = tree
            .decode()
            .map_err(|e| other(&format!("decoding tree {id}"), e))?;
        let entries: Vec<(gix::objs::tree::EntryMode, BString, ObjectId)> = decoded
            .entries
            .iter()
            .map(|e| (e.mode, e.filename.to_owned(), e.oid.to_owned()))
            .collect();
        drop(tree);
        for (mode, name, oid) in entries {
            let len = prefix.len();
            prefix.push_str(&name);
            let result = if mode.is_tree() {
                prefix.push(b'/');
                self.tree(oid, prefix)
            } else if mode.is_commit() {
                // Submodules are not part of the archive's file set.
                Ok(())
            } else {
                self.file(mode, oid, prefix.as_ref())
            };
            prefix.truncate(len);
            result?;
        }
        Ok(())
    }

    fn file(
        &mut self,
        mode: gix::objs::tree::EntryMode,
        oid: ObjectId,
        full_path: &BStr,
    ) -> Result<(), CodeError> {
        let rel = full_path.get(self.strip..).unwrap_or_default();
        let path = rel.to_str_lossy().into_owned();
        let (kind, conversion) = if mode.is_link() {
            // git archive copies link targets verbatim; only regular files
            // go through the attribute-driven conversion.
            (FileKind::Symlink, None)
        } else {
            let platform = self
                .attributes
                .at_entry(full_path, Some(gix::index::entry::Mode::FILE))
                .map_err(|e| other(&format!("{path}: attributes"), e))?;
            platform.matching_attributes(self.outcome);
            let mut states = [gix::attrs::StateRef::Unspecified; 5];
            for (slot, m) in states.iter_mut().zip(self.outcome.iter_selected()) {
                *slot = m.assignment.state;
            }
            let conversion = Conversion::from_matches(&states);
            (
                FileKind::Regular,
                conversion.changes_content().then_some(conversion),
            )
        };
        self.files.push(GitTreeFile {
            path,
            kind,
            blob: oid,
            blob_size: 0,
            conversion,
            converted_size: OnceLock::new(),
            repo: Arc::clone(self.shared),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gix::attrs::StateRef;

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
