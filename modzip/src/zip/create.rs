//! Writing module zips and extracting them.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};

use super::cache::DeflateCache;
use super::check::{check_files_until, check_zip_with};
use super::dir::list_dir;
use super::read::{entry_error, Archive};
use super::write::{ArchiveWriter, Deflated, Deflater};
use super::{check_module_version, zip_prefix, Limits, ModuleFile, ZipError};
use crate::module::Version;

const COPY_BUFFER: usize = 32 * 1024;

/// Writes the zip of module `m` (a valid module path at a canonical
/// version) holding those of `files` that belong in it, under
/// `path@version/`, deflated, in input order; returns the writer.
///
/// The files are first sorted with [`check_files`](super::check_files):
/// omitted ones are skipped, and any invalid file or size error fails the
/// whole zip before anything is written. A file that yields more bytes
/// than its metadata announced is an error.
///
/// Files of up to 512 KiB are read and deflated ahead, on up to four
/// threads (as many as the machine has cores), up to 4 MiB of them at a
/// time; larger ones are streamed through on the calling thread. The
/// archive is the same whatever the number of threads.
pub fn create<W: Write + Seek, F: ModuleFile + Sync>(
    w: W,
    m: &Version,
    files: &[F],
) -> Result<W, ZipError> {
    create_with(w, m, files, &Limits::GO, None)
}

/// [`create`], taking the deflated form of files from `cache` and keeping
/// it there: a file with a [`content_key`](ModuleFile::content_key) that
/// the cache holds for this module path is neither opened nor deflated
/// again. The archive is byte for byte the one [`create`] writes.
pub fn create_cached<W: Write + Seek, F: ModuleFile + Sync>(
    w: W,
    m: &Version,
    files: &[F],
    cache: &DeflateCache,
) -> Result<W, ZipError> {
    create_with(w, m, files, &Limits::GO, Some(cache))
}

pub(crate) fn create_with<W: Write + Seek, F: ModuleFile + Sync>(
    w: W,
    m: &Version,
    files: &[F],
    limits: &Limits,
    cache: Option<&DeflateCache>,
) -> Result<W, ZipError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    create_on_threads(w, m, files, limits, threads, cache)
}

/// [`create_with`] on a given number of threads; the archive must not
/// depend on it.
fn create_on_threads<W: Write + Seek, F: ModuleFile + Sync>(
    w: W,
    m: &Version,
    files: &[F],
    limits: &Limits,
    threads: usize,
    cache: Option<&DeflateCache>,
) -> Result<W, ZipError> {
    check_module_version(m)?;
    // Looked up before the check below opens the root go.mod, and with it
    // any read-ahead of the file source.
    let mut hits = match cache {
        Some(cache) => cached_entries(files, cache, &m.path),
        None => Vec::new(),
    };
    // Every size is known before anything is read or compressed; the first
    // one over the limit ends the check.
    let selection = check_files_until(files, limits, true);
    selection.checked.err()?;

    let prefix = zip_prefix(m);
    let cache = cache.map(|cache| (cache, m.path.as_str()));
    let jobs: Vec<Job<'_, F>> = selection
        .valid_indexes
        .iter()
        .zip(&selection.valid_sizes)
        .filter_map(|(&index, &size)| {
            let hit = hits.get_mut(index).and_then(Option::take);
            files.get(index).map(|file| Job {
                file,
                size,
                cache,
                hit,
            })
        })
        .collect();
    let mut archive = ArchiveWriter::new(w)?;
    let mut deflater = Deflater::new();
    let ahead = jobs.iter().filter(|job| job.in_memory()).count();
    if threads < 2 || ahead < 2 {
        for job in &jobs {
            let prepared = if job.in_memory() {
                job.prepare(&mut deflater)?
            } else {
                Prepared::Streamed
            };
            job.write(prepared, &prefix, &mut archive, &mut deflater)?;
        }
    } else {
        write_parallel(&jobs, threads, &prefix, &mut archive, &mut deflater)?;
    }
    archive.finish()
}

/// The deflated form `cache` holds for each file (by index) under module
/// path `scope`, at the file's size; each file found is told it will not
/// be read.
fn cached_entries<F: ModuleFile>(
    files: &[F],
    cache: &DeflateCache,
    scope: &str,
) -> Vec<Option<Arc<Deflated>>> {
    files
        .iter()
        .map(|file| {
            let hit = cache
                .get(scope, file.content_key()?)
                .filter(|hit| file.metadata().is_ok_and(|meta| meta.size == hit.size))?;
            file.will_not_be_read();
            Some(hit)
        })
        .collect()
}

/// Files up to this size are read whole and deflated ahead of their turn.
const IN_MEMORY_MAX: u64 = 512 * 1024;
/// Most threads one zip uses.
const MAX_THREADS: usize = 4;
/// Bytes of files (by their declared sizes) read and deflated ahead of the
/// writer at most, which bounds a zip's memory. A file whose deflated form
/// the cache holds costs nothing: counting files instead, a run of cached
/// files between two changed ones left the threads idle. The file the
/// writer waits for is always taken, so a larger one still goes through.
const AHEAD_BYTES: u64 = 4 << 20;

/// One file of the zip, with the size its metadata gave.
struct Job<'a, F> {
    file: &'a F,
    size: u64,
    /// Deflated files kept between zips, and the module path their keys
    /// are scoped to.
    cache: Option<(&'a DeflateCache, &'a str)>,
    /// This file's deflated form, found in the cache before anything was
    /// opened.
    hit: Option<Arc<Deflated>>,
}

/// A file made ready for the archive.
enum Prepared {
    /// Deflated in memory (now or for an earlier zip).
    Deflated(Arc<Deflated>),
    /// Too large to hold: to be streamed when its turn comes.
    Streamed,
}

impl<F: ModuleFile> Job<'_, F> {
    fn in_memory(&self) -> bool {
        self.size <= IN_MEMORY_MAX
    }

    /// What preparing this file ahead counts against [`AHEAD_BYTES`]: its
    /// size when it is to be read and deflated.
    fn ahead_cost(&self) -> u64 {
        if self.in_memory() && self.hit.is_none() {
            self.size
        } else {
            0
        }
    }

    /// Reads the whole (small) file and deflates it, or takes it from the
    /// cache.
    fn prepare(&self, deflater: &mut Deflater) -> Result<Prepared, ZipError> {
        // A key names one content, so its size is the one declared; were
        // it not, the file is read as if nothing were cached.
        if let Some(hit) = self.hit.as_ref().filter(|hit| hit.size == self.size) {
            return Ok(Prepared::Deflated(Arc::clone(hit)));
        }
        let cached = self
            .cache
            .and_then(|(cache, scope)| Some((cache, scope, self.file.content_key()?)));
        let path = self.file.path();
        let mut content = Vec::with_capacity(self.size as usize);
        let reader = self.file.open().map_err(|e| ZipError::io(path, e))?;
        reader
            .take(self.size + 1)
            .read_to_end(&mut content)
            .map_err(|e| ZipError::io(path, e))?;
        if content.len() as u64 > self.size {
            return Err(ZipError::LargerThanDeclared {
                path: path.to_string(),
                declared: self.size,
            });
        }
        let deflated = Arc::new(deflater.deflate(path, &content)?);
        if let Some((cache, scope, key)) = cached {
            cache.insert(scope, key, Arc::clone(&deflated));
        }
        Ok(Prepared::Deflated(deflated))
    }

    fn write<W: Write + Seek>(
        &self,
        prepared: Prepared,
        prefix: &str,
        archive: &mut ArchiveWriter<W>,
        deflater: &mut Deflater,
    ) -> Result<(), ZipError> {
        let path = self.file.path();
        let name = format!("{prefix}{path}");
        match prepared {
            Prepared::Deflated(d) => archive.add_deflated(name, d.crc, d.size, &d.data),
            Prepared::Streamed => {
                let mut reader = self.file.open().map_err(|e| ZipError::io(path, e))?;
                archive.add_streamed(name, path, &mut reader, self.size, deflater)
            }
        }
    }
}

/// Order kept between the threads preparing files and the one writing.
struct Progress {
    /// Files written so far (the index of the next one to write).
    written: usize,
    /// Bytes of the files taken but not yet written (see
    /// [`Job::ahead_cost`]).
    ahead: u64,
    /// Set when writing failed: the preparing threads stop.
    stopped: bool,
}

/// Writes `jobs` in order while `threads` helpers read and deflate the
/// small files ahead. A helper takes files in order and works at most
/// [`AHEAD_BYTES`] ahead of the writer, which bounds memory.
fn write_parallel<W: Write + Seek, F: ModuleFile + Sync>(
    jobs: &[Job<'_, F>],
    threads: usize,
    prefix: &str,
    archive: &mut ArchiveWriter<W>,
    deflater: &mut Deflater,
) -> Result<(), ZipError> {
    let next = AtomicUsize::new(0);
    let progress = Mutex::new(Progress {
        written: 0,
        ahead: 0,
        stopped: false,
    });
    let advanced = Condvar::new();
    let (sender, results) = mpsc::channel::<(usize, Result<Prepared, ZipError>)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let sender = sender.clone();
            let (next, progress, advanced) = (&next, &progress, &advanced);
            scope.spawn(move || {
                let mut deflater = Deflater::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(index) else {
                        return;
                    };
                    if !job.in_memory() {
                        if sender.send((index, Ok(Prepared::Streamed))).is_err() {
                            return;
                        }
                        continue;
                    }
                    {
                        let Ok(mut state) = progress.lock() else {
                            return;
                        };
                        let cost = job.ahead_cost();
                        while !state.stopped
                            && index > state.written
                            && state.ahead + cost > AHEAD_BYTES
                        {
                            state = match advanced.wait(state) {
                                Ok(state) => state,
                                Err(_) => return,
                            };
                        }
                        if state.stopped {
                            return;
                        }
                        state.ahead += cost;
                    }
                    if sender.send((index, job.prepare(&mut deflater))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);

        let result = (|| {
            let mut pending: BTreeMap<usize, Result<Prepared, ZipError>> = BTreeMap::new();
            for (index, job) in jobs.iter().enumerate() {
                let prepared = loop {
                    if let Some(prepared) = pending.remove(&index) {
                        break prepared;
                    }
                    match results.recv() {
                        Ok((i, prepared)) => {
                            pending.insert(i, prepared);
                        }
                        Err(_) => {
                            return Err(ZipError::Writer {
                                path: job.file.path().to_string(),
                                message: "the threads preparing files stopped".to_string(),
                            })
                        }
                    }
                };
                job.write(prepared?, prefix, archive, deflater)?;
                if let Ok(mut state) = progress.lock() {
                    state.written = index + 1;
                    state.ahead = state.ahead.saturating_sub(job.ahead_cost());
                }
                advanced.notify_all();
            }
            Ok(())
        })();
        if let Ok(mut state) = progress.lock() {
            state.stopped = true;
        }
        advanced.notify_all();
        // Helpers waiting for room wake up and stop; the channel
        // is drained by dropping it when the scope ends.
        drop(results);
        result
    })
}

/// Writes the zip of module `m` from the module rooted at `dir`: the files
/// [`list_dir`](super::list_dir) finds (so version control directories,
/// nested modules, vendored packages and symbolic links stay out), written
/// as by [`create`].
///
/// This is golang.org/x/mod's `zip.CreateFromDir`: the archive's `h1:` hash
/// ([`hash_zip`](crate::dirhash::hash_zip)) is the one go.sum records for
/// the module, and equals the hash of the directory itself under the name
/// `path@version` ([`hash_dir`](crate::dirhash::hash_dir)).
///
/// ```
/// use std::io::Cursor;
///
/// use modzip::dirhash::{hash_dir, hash_go_mod, hash_zip};
/// use modzip::zip::create_from_dir;
/// use modzip::Version;
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("go.mod"), "module example.com/hello\n\ngo 1.21\n")?;
/// std::fs::write(
///     dir.path().join("hello.go"),
///     "package hello\n\nfunc Hello() string { return \"hello\" }\n",
/// )?;
///
/// let m = Version::new("example.com/hello", "v1.0.0");
/// let zip = create_from_dir(Cursor::new(Vec::new()), &m, dir.path())?.into_inner();
///
/// // The go.sum lines for example.com/hello v1.0.0:
/// let h1 = hash_zip(Cursor::new(&zip))?;
/// assert_eq!(h1, "h1:BMZLHt1FA6FLPC+H4ZSxZSphx9O63MG/XrVlfD3weYw=");
/// // The same files hashed in place give the same sum.
/// assert_eq!(h1, hash_dir(dir.path(), "example.com/hello@v1.0.0")?);
///
/// // Version control metadata never goes into a module zip.
/// std::fs::create_dir(dir.path().join(".git"))?;
/// std::fs::write(dir.path().join(".git/HEAD"), "ref: refs/heads/main\n")?;
/// let again = create_from_dir(Cursor::new(Vec::new()), &m, dir.path())?.into_inner();
/// assert_eq!(hash_zip(Cursor::new(&again))?, h1);
/// let go_mod = std::fs::read(dir.path().join("go.mod"))?;
/// assert_eq!(hash_go_mod(&go_mod), "h1:NnGvEkTHyKKlgPcQSue0skqyqiS1EfBSAh+0WaWZYmE=");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_from_dir<W: Write + Seek>(w: W, m: &Version, dir: &Path) -> Result<W, ZipError> {
    let (files, _omitted) = list_dir(dir)?;
    create(w, m, &files)
}

/// Extracts the zip of module `m` into `dir`, which must be empty or not
/// exist yet (it is created with its parents).
///
/// The archive must pass [`check_zip`](super::check_zip) completely before
/// anything is written. Files are created read-only, directories from the
/// file paths; each file's data is checked against its declared size and
/// CRC-32 while copying, so a file may be left behind when that check
/// fails.
pub fn unzip<R: Read + Seek>(dir: &Path, m: &Version, zip: R) -> Result<(), ZipError> {
    unzip_with(dir, m, zip, &Limits::GO)
}

pub(crate) fn unzip_with<R: Read + Seek>(
    dir: &Path,
    m: &Version,
    zip: R,
    limits: &Limits,
) -> Result<(), ZipError> {
    if let Ok(mut listing) = fs::read_dir(dir) {
        if listing.next().is_some() {
            return Err(ZipError::TargetNotEmpty {
                dir: dir.to_path_buf(),
            });
        }
    }
    let (archive, checked) = check_zip_with(m, zip, limits)?;
    checked.err()?;
    let Some(mut archive) = archive else {
        return Err(ZipError::Format {
            reason: "archive was not read",
        });
    };

    fs::create_dir_all(dir).map_err(|e| ZipError::io(dir.display().to_string(), e))?;
    let prefix_len = zip_prefix(m).len();
    let mut buf = vec![0u8; COPY_BUFFER];
    for index in 0..archive.entries.len() {
        let entry = &archive.entries[index];
        let display = entry.display_name();
        let Some(name) = entry.name.get(prefix_len..) else {
            continue;
        };
        if name.is_empty() || name.ends_with(b"/") {
            continue;
        }
        // The check above guarantees valid UTF-8 and clean relative paths.
        let Ok(name) = std::str::from_utf8(name) else {
            return Err(ZipError::EntryFormat {
                path: display,
                reason: "name is not valid UTF-8",
            });
        };
        let target = name
            .split('/')
            .fold(dir.to_path_buf(), |p, part| p.join(part));
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| ZipError::io(parent.display().to_string(), e))?;
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o444);
        }
        let mut out = options
            .open(&target)
            .map_err(|e| ZipError::io(target.display().to_string(), e))?;
        copy_entry(
            &mut archive,
            index,
            &mut buf,
            &mut out,
            &target.display().to_string(),
        )?;
        out.flush()
            .map_err(|e| ZipError::io(target.display().to_string(), e))?;
    }
    Ok(())
}

/// Copies the data of entry `index` to `out`, checking it against the
/// entry's declared size and CRC-32 (`out_name` names `out` in errors).
fn copy_entry<R: Read + Seek>(
    archive: &mut Archive<R>,
    index: usize,
    buf: &mut [u8],
    out: &mut dyn Write,
    out_name: &str,
) -> Result<(), ZipError> {
    let entry = &archive.entries[index];
    let display = entry.display_name();
    let declared = entry.uncompressed_size;
    let mut reader = archive.open_entry(index)?;
    let mut copied: u64 = 0;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(entry_error(&display, declared, e)),
        };
        copied += n as u64;
        if copied > declared {
            return Err(ZipError::LargerThanDeclared {
                path: display,
                declared,
            });
        }
        out.write_all(&buf[..n])
            .map_err(|e| ZipError::io(out_name.to_string(), e))?;
    }
    Ok(())
}

/// Checks a module zip for `m` as completely as [`unzip`] does, without
/// writing anything: [`check_zip`](super::check_zip) must pass, and every
/// file's data must decompress to its declared size with the right CRC-32.
///
/// Returns the root `go.mod` of the module, when the zip has one (its size
/// is at most [`MAX_GO_MOD`](super::MAX_GO_MOD), as the check requires).
pub fn verify_zip<R: Read + Seek>(m: &Version, zip: R) -> Result<Option<Vec<u8>>, ZipError> {
    verify_zip_with(m, zip, &Limits::GO)
}

pub(crate) fn verify_zip_with<R: Read + Seek>(
    m: &Version,
    zip: R,
    limits: &Limits,
) -> Result<Option<Vec<u8>>, ZipError> {
    let (archive, checked) = check_zip_with(m, zip, limits)?;
    checked.err()?;
    let Some(mut archive) = archive else {
        return Err(ZipError::Format {
            reason: "archive was not read",
        });
    };
    let go_mod_name = format!("{}go.mod", zip_prefix(m));
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut go_mod = None;
    for index in 0..archive.entries.len() {
        let name = &archive.entries[index].name;
        if name.ends_with(b"/") {
            continue;
        }
        if name.as_slice() == go_mod_name.as_bytes() {
            let mut data = Vec::new();
            copy_entry(&mut archive, index, &mut buf, &mut data, "go.mod")?;
            go_mod = Some(data);
        } else {
            copy_entry(&mut archive, index, &mut buf, &mut io::sink(), "sink")?;
        }
    }
    Ok(go_mod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zip::test_util::{raw_zip, raw_zip_with_count, RawEntry};
    use crate::zip::{check_zip, FileErrorKind, FileKind, FileMeta, MemFile};
    use std::io::Cursor;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    fn m(path: &str, version: &str) -> Version {
        Version::new(path, version)
    }

    fn sample_files() -> Vec<MemFile> {
        vec![
            MemFile::new("go.mod", "module example.com/m\n\ngo 1.21\n"),
            MemFile::new("m.go", "package m\n"),
            MemFile::new("sub/sub.go", "package sub\n".repeat(1000)),
            MemFile::new("LICENSE", "license text"),
            MemFile::new("vendor/x/x.go", "package x"),
            MemFile::new("empty", ""),
        ]
    }

    fn create_bytes<F: ModuleFile + Sync>(version: &Version, files: &[F]) -> Vec<u8> {
        create(Cursor::new(Vec::new()), version, files)
            .expect("create")
            .into_inner()
    }

    #[test]
    fn round_trip_create_check_unzip() {
        let version = m("example.com/m", "v1.2.3");
        let bytes = create_bytes(&version, &sample_files());

        let checked = check_zip(&version, Cursor::new(&bytes)).expect("check");
        assert!(checked.err().is_ok(), "{:?}", checked.err());
        assert_eq!(
            checked.valid,
            [
                "example.com/m@v1.2.3/go.mod",
                "example.com/m@v1.2.3/m.go",
                "example.com/m@v1.2.3/sub/sub.go",
                "example.com/m@v1.2.3/LICENSE",
                "example.com/m@v1.2.3/empty",
            ]
        );

        // Another zip implementation reads it back the same.
        let mut other = ::zip::ZipArchive::new(Cursor::new(&bytes)).expect("zip crate");
        assert_eq!(other.len(), 5);
        let mut content = String::new();
        other
            .by_name("example.com/m@v1.2.3/sub/sub.go")
            .expect("entry")
            .read_to_string(&mut content)
            .expect("read");
        assert_eq!(content, "package sub\n".repeat(1000));
        assert_eq!(
            other.by_index(0).expect("entry").compression(),
            ::zip::CompressionMethod::Deflated
        );

        let tmp = tempfile::tempdir().expect("tempdir");
        let target = tmp.path().join("out/m");
        unzip(&target, &version, Cursor::new(&bytes)).expect("unzip");
        assert_eq!(
            fs::read_to_string(target.join("sub/sub.go")).expect("read"),
            "package sub\n".repeat(1000)
        );
        assert_eq!(fs::read(target.join("empty")).expect("read"), b"");
        assert!(!target.join("vendor").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(target.join("m.go"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o444);
        }

        // The same files give the same bytes.
        assert_eq!(bytes, create_bytes(&version, &sample_files()));
    }

    #[test]
    fn create_rejects_bad_versions_and_files() {
        let files = sample_files();
        let err = create(Cursor::new(Vec::new()), &m("example.com/m", "v1.2"), &files).unwrap_err();
        assert!(
            matches!(&err, ZipError::NotCanonical { canonical, .. } if canonical == "v1.2.0"),
            "{err}"
        );
        let err = create(
            Cursor::new(Vec::new()),
            &m("example.com/m", "v2.0.0"),
            &files,
        )
        .unwrap_err();
        assert!(matches!(err, ZipError::Module(_)), "{err}");
        let err = create(Cursor::new(Vec::new()), &m("not a path", "v1.0.0"), &files).unwrap_err();
        assert!(matches!(err, ZipError::Module(_)), "{err}");
        // +incompatible is canonical and allowed without /v2.
        create(
            Cursor::new(Vec::new()),
            &m("example.com/m", "v2.0.0+incompatible"),
            &files,
        )
        .expect("incompatible");

        let bad = vec![MemFile::new("a.go", ""), MemFile::new("A.GO", "")];
        let err = create(Cursor::new(Vec::new()), &m("example.com/m", "v1.0.0"), &bad).unwrap_err();
        let ZipError::InvalidFiles(list) = &err else {
            panic!("{err}");
        };
        assert_eq!(list.len(), 1);
        assert!(
            err.to_string()
                .starts_with("A.GO: case-insensitive file name collision"),
            "{err}"
        );
    }

    /// A file whose content is longer than its metadata says.
    struct GrowingFile;

    impl ModuleFile for GrowingFile {
        fn path(&self) -> &str {
            "grow.txt"
        }
        fn metadata(&self) -> io::Result<FileMeta> {
            Ok(FileMeta {
                kind: FileKind::Regular,
                size: 3,
            })
        }
        fn open(&self) -> io::Result<Box<dyn Read + '_>> {
            Ok(Box::new(io::repeat(b'z').take(100_000)))
        }
    }

    #[test]
    fn create_fails_when_a_file_outgrows_its_size() {
        let err = create(
            Cursor::new(Vec::new()),
            &m("example.com/m", "v1.0.0"),
            &[GrowingFile],
        )
        .unwrap_err();
        assert!(
            matches!(&err, ZipError::LargerThanDeclared { path, declared: 3 } if path == "grow.txt"),
            "{err}"
        );
    }

    /// A file that can be told to misbehave when opened, or be named by a
    /// content key; it counts how often it is opened.
    struct TestFile {
        file: MemFile,
        /// Hands out more bytes than its metadata announces.
        grows: bool,
        /// Fails to open.
        unreadable: bool,
        key: Option<Vec<u8>>,
        opened: AtomicUsize,
    }

    impl ModuleFile for TestFile {
        fn path(&self) -> &str {
            self.file.path()
        }
        fn metadata(&self) -> io::Result<FileMeta> {
            self.file.metadata()
        }
        fn open(&self) -> io::Result<Box<dyn Read + '_>> {
            self.opened.fetch_add(1, Ordering::Relaxed);
            if self.unreadable {
                return Err(io::Error::other("no access"));
            }
            let extra: &[u8] = if self.grows { b"more" } else { b"" };
            Ok(Box::new(self.file.open()?.chain(extra)))
        }
        fn content_key(&self) -> Option<&[u8]> {
            self.key.as_deref()
        }
    }

    impl TestFile {
        fn keyed(path: &str, data: &str, key: &[u8]) -> TestFile {
            TestFile {
                file: MemFile::new(path, data),
                grows: false,
                unreadable: false,
                key: Some(key.to_vec()),
                opened: AtomicUsize::new(0),
            }
        }
    }

    /// [`many_files`] with content keys.
    fn keyed_files() -> Vec<TestFile> {
        many_files()
            .into_iter()
            .map(|mut f| {
                f.key = Some(format!("blob of {}", f.file.path).into_bytes());
                f
            })
            .collect()
    }

    fn opened(files: &[TestFile]) -> usize {
        files.iter().map(|f| f.opened.load(Ordering::Relaxed)).sum()
    }

    #[test]
    fn cached_zips_are_the_same_and_open_only_what_the_cache_lacks() {
        let version = m("example.com/m", "v1.0.0");
        let files = keyed_files();
        let streamed = files
            .iter()
            .filter(|f| f.file.data.len() as u64 > IN_MEMORY_MAX)
            .count();
        assert_eq!(streamed, 3);
        let plain = create_bytes(&version, &files);
        for threads in [1, 3] {
            let cache = DeflateCache::new(64 << 20);
            let zip = |files: &[TestFile], version: &Version| {
                create_on_threads(
                    Cursor::new(Vec::new()),
                    version,
                    files,
                    &Limits::GO,
                    threads,
                    Some(&cache),
                )
                .unwrap()
                .into_inner()
            };
            let mark = opened(&files);
            assert!(zip(&files, &version) == plain, "{threads} threads, cold");
            assert_eq!(opened(&files) - mark, files.len());
            assert_eq!(cache.len(), files.len() - streamed);
            // Again: only the streamed files are read.
            let mark = opened(&files);
            assert!(zip(&files, &version) == plain, "{threads} threads, warm");
            assert_eq!(opened(&files) - mark, streamed);
            // Keys are the module's own: another module path reads all.
            let other = m("example.com/other", "v1.0.0");
            let expected = create_bytes(&other, &files);
            let mark = opened(&files);
            assert!(zip(&files, &other) == expected);
            assert_eq!(opened(&files) - mark, files.len());
        }
    }

    /// A keyed file logging when it is opened and when it is told it will
    /// not be read, in one log shared by the files of a zip.
    struct LoggedFile {
        file: MemFile,
        key: Vec<u8>,
        log: Arc<Mutex<Vec<(String, &'static str)>>>,
    }

    impl ModuleFile for LoggedFile {
        fn path(&self) -> &str {
            self.file.path()
        }
        fn metadata(&self) -> io::Result<FileMeta> {
            self.file.metadata()
        }
        fn open(&self) -> io::Result<Box<dyn Read + '_>> {
            self.log
                .lock()
                .unwrap()
                .push((self.file.path.clone(), "open"));
            self.file.open()
        }
        fn content_key(&self) -> Option<&[u8]> {
            Some(&self.key)
        }
        fn will_not_be_read(&self) {
            self.log
                .lock()
                .unwrap()
                .push((self.file.path.clone(), "told"));
        }
    }

    #[test]
    fn files_the_cache_holds_are_told_before_any_file_is_opened() {
        let version = m("example.com/m", "v1.0.0");
        let log = Arc::new(Mutex::new(Vec::new()));
        let logged = |path: &str, data: &str| LoggedFile {
            file: MemFile::new(path, data),
            key: format!("blob of {path}").into_bytes(),
            log: Arc::clone(&log),
        };
        let first = [
            logged("go.mod", "module example.com/m\n\ngo 1.21\n"),
            logged("a.go", "package m\n"),
            logged("b.go", "package m // b\n"),
        ];
        let cache = DeflateCache::new(1 << 20);
        create_cached(Cursor::new(Vec::new()), &version, &first, &cache).unwrap();
        let cold: Vec<_> = log.lock().unwrap().drain(..).collect();
        assert!(cold.iter().all(|(_, event)| *event == "open"), "{cold:?}");

        // The next version: go.mod and a.go unchanged, b.go changed under
        // its old key (another size), c.go new.
        let second = [
            logged("go.mod", "module example.com/m\n\ngo 1.21\n"),
            logged("a.go", "package m\n"),
            logged("b.go", "package m // b, changed\n"),
            logged("c.go", "package m // c\n"),
        ];
        let zip = create_cached(Cursor::new(Vec::new()), &version, &second, &cache)
            .unwrap()
            .into_inner();
        let warm: Vec<_> = log.lock().unwrap().drain(..).collect();
        assert!(zip == create_bytes(&version, &second));
        let told: Vec<&str> = warm
            .iter()
            .filter(|(_, event)| *event == "told")
            .map(|(path, _)| path.as_str())
            .collect();
        assert_eq!(told, ["go.mod", "a.go"]);
        let first_open = warm.iter().position(|(_, event)| *event == "open");
        let last_told = warm.iter().rposition(|(_, event)| *event == "told");
        assert!(last_told < first_open, "{warm:?}");
        // go.mod is still opened by the check (for its go version); the
        // zip deflates only what changed.
        let mut opened: Vec<&str> = warm
            .iter()
            .filter(|(_, event)| *event == "open")
            .map(|(path, _)| path.as_str())
            .collect();
        opened.sort_unstable();
        assert_eq!(opened, ["b.go", "c.go", "go.mod"]);
    }

    /// A file whose opening runs `gate` first (to hold it, or to record
    /// what was opened meanwhile), cached under its path when `keyed`.
    struct GatedFile<'a> {
        file: MemFile,
        keyed: bool,
        gate: &'a (dyn Fn(&str) -> io::Result<()> + Sync),
    }

    impl ModuleFile for GatedFile<'_> {
        fn path(&self) -> &str {
            self.file.path()
        }
        fn metadata(&self) -> io::Result<FileMeta> {
            self.file.metadata()
        }
        fn open(&self) -> io::Result<Box<dyn Read + '_>> {
            (self.gate)(self.file.path())?;
            self.file.open()
        }
        fn content_key(&self) -> Option<&[u8]> {
            self.keyed.then_some(self.file.path.as_bytes())
        }
    }

    #[test]
    fn files_the_cache_holds_do_not_hold_the_threads_back() {
        let version = m("example.com/m", "v1.0.0");
        let cache = DeflateCache::new(16 << 20);
        let cached: Vec<MemFile> = (0..12)
            .map(|i| MemFile::new(format!("cached{i:02}.go"), format!("package m // {i}\n")))
            .collect();
        let warm_up = |_: &str| -> io::Result<()> { Ok(()) };
        let first: Vec<GatedFile<'_>> = cached
            .iter()
            .map(|f| GatedFile {
                file: f.clone(),
                keyed: true,
                gate: &warm_up,
            })
            .collect();
        create_cached(Cursor::new(Vec::new()), &version, &first, &cache).unwrap();

        // a.go, a dozen cached files, then z.go: a.go cannot finish before
        // z.go was opened, so the zip only completes if one thread works
        // on z.go while another waits in a.go.
        let z_opened = (Mutex::new(false), Condvar::new());
        let gate = |path: &str| -> io::Result<()> {
            let (opened, changed) = &z_opened;
            let mut opened = opened.lock().unwrap();
            if path == "z.go" {
                *opened = true;
                changed.notify_all();
                return Ok(());
            }
            if path == "a.go" {
                let (opened, waited) = changed
                    .wait_timeout_while(opened, Duration::from_secs(10), |o| !*o)
                    .unwrap();
                if waited.timed_out() && !*opened {
                    return Err(io::Error::other("z.go was not opened while a.go was"));
                }
            }
            Ok(())
        };
        let mut files = vec![GatedFile {
            file: MemFile::new("a.go", "package m // a\n"),
            keyed: false,
            gate: &gate,
        }];
        files.extend(cached.iter().map(|f| GatedFile {
            file: f.clone(),
            keyed: true,
            gate: &gate,
        }));
        files.push(GatedFile {
            file: MemFile::new("z.go", "package m // z\n"),
            keyed: false,
            gate: &gate,
        });
        let zip = create_on_threads(
            Cursor::new(Vec::new()),
            &version,
            &files,
            &Limits::GO,
            2,
            Some(&cache),
        )
        .unwrap()
        .into_inner();
        assert!(zip == create_bytes(&version, &files));
    }

    #[test]
    fn files_are_read_ahead_up_to_a_bound_in_bytes() {
        let version = m("example.com/m", "v1.0.0");
        let size = IN_MEMORY_MAX as usize;
        let contents: Vec<MemFile> = (0..24)
            .map(|i| MemFile::new(format!("f{i:02}.bin"), vec![i as u8; size]))
            .collect();
        // While the first file is held, the other thread reads ahead as far
        // as the bound lets it, and no further.
        let opened_meanwhile = AtomicUsize::new(0);
        let holding = AtomicBool::new(true);
        let gate = |path: &str| -> io::Result<()> {
            if path == "f00.bin" {
                std::thread::sleep(Duration::from_millis(300));
                holding.store(false, Ordering::SeqCst);
            } else if holding.load(Ordering::SeqCst) {
                opened_meanwhile.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        };
        let files: Vec<GatedFile<'_>> = contents
            .iter()
            .map(|f| GatedFile {
                file: f.clone(),
                keyed: false,
                gate: &gate,
            })
            .collect();
        let zip = create_on_threads(
            Cursor::new(Vec::new()),
            &version,
            &files,
            &Limits::GO,
            2,
            None,
        )
        .unwrap()
        .into_inner();
        let ahead = opened_meanwhile.load(Ordering::SeqCst);
        assert!(
            ahead as u64 * IN_MEMORY_MAX <= AHEAD_BYTES - IN_MEMORY_MAX,
            "{ahead} files read ahead of the held one"
        );
        assert!(zip == create_bytes(&version, &files));
    }

    #[test]
    fn a_cached_entry_of_another_size_is_not_used() {
        let version = m("example.com/m", "v1.0.0");
        let cache = DeflateCache::new(1 << 20);
        let key = b"same key".to_vec();
        let first = [TestFile::keyed("a.go", "package a\n", &key)];
        create_cached(Cursor::new(Vec::new()), &version, &first, &cache).unwrap();
        // A caller breaking the key's promise gets the file it gave, read.
        let second = [TestFile::keyed("a.go", "package a // longer\n", &key)];
        let zip = create_cached(Cursor::new(Vec::new()), &version, &second, &cache)
            .unwrap()
            .into_inner();
        assert_eq!(opened(&second), 1);
        assert!(zip == create_bytes(&version, &second));
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let version = m("example.com/m", "v1.0.0");
        let files = keyed_files();
        let cache = DeflateCache::new(16 << 10);
        create_cached(Cursor::new(Vec::new()), &version, &files, &cache).unwrap();
        assert!(!cache.is_empty());
        assert!(cache.bytes() <= 16 << 10, "{cache:?}");
        assert!(cache.len() < files.len());
    }

    /// 300 files, a few over the in-memory size so that they are streamed
    /// between files deflated ahead.
    fn many_files() -> Vec<TestFile> {
        (0..300)
            .map(|i| {
                let len = match i {
                    7 | 150 | 299 => IN_MEMORY_MAX as usize + 1 + i,
                    _ => (i * 37) % 5000,
                };
                let line = format!("// file {i}\n");
                TestFile {
                    file: MemFile::new(
                        format!("p{}/f{i}.go", i % 7),
                        line.bytes().cycle().take(len).collect::<Vec<u8>>(),
                    ),
                    grows: false,
                    unreadable: false,
                    key: None,
                    opened: AtomicUsize::new(0),
                }
            })
            .collect()
    }

    #[test]
    fn archive_is_the_same_on_any_number_of_threads() {
        let version = m("example.com/m", "v1.0.0");
        let files = many_files();
        let one = create_on_threads(
            Cursor::new(Vec::new()),
            &version,
            &files,
            &Limits::GO,
            1,
            None,
        )
        .expect("one thread")
        .into_inner();
        for threads in [2, 3, 4] {
            let more = create_on_threads(
                Cursor::new(Vec::new()),
                &version,
                &files,
                &Limits::GO,
                threads,
                None,
            )
            .expect("threads")
            .into_inner();
            assert!(one == more, "{threads} threads gave another archive");
        }
        let checked = check_zip(&version, Cursor::new(&one)).expect("check");
        assert_eq!(checked.valid.len(), files.len());
        let mut other = ::zip::ZipArchive::new(Cursor::new(&one)).expect("zip crate");
        for file in &files {
            let mut content = Vec::new();
            other
                .by_name(&format!("example.com/m@v1.0.0/{}", file.path()))
                .expect("entry")
                .read_to_end(&mut content)
                .expect("read");
            assert!(content == file.file.data, "{}", file.path());
        }
    }

    #[test]
    fn a_failing_file_fails_the_parallel_zip() {
        let version = m("example.com/m", "v1.0.0");
        for (index, grows) in [(3, true), (150, true), (298, false), (299, false)] {
            let mut files = many_files();
            files[index].grows = grows;
            files[index].unreadable = !grows;
            let err = create_on_threads(
                Cursor::new(Vec::new()),
                &version,
                &files,
                &Limits::GO,
                3,
                None,
            )
            .unwrap_err();
            let path = files[index].path();
            match err {
                ZipError::LargerThanDeclared { path: p, .. } if grows => assert_eq!(&p, path),
                ZipError::Io { path: p, .. } if !grows => assert_eq!(&p, path),
                other => panic!("file {index}: {other}"),
            }
        }
    }

    #[test]
    fn create_enforces_total_size() {
        let limits = Limits {
            zip_file: 20,
            go_mod: 20,
            license: 20,
        };
        let files = vec![MemFile::new("a", [0u8; 15]), MemFile::new("b", [0u8; 6])];
        let err = create_with(
            Cursor::new(Vec::new()),
            &m("example.com/m", "v1.0.0"),
            &files,
            &limits,
            None,
        )
        .unwrap_err();
        assert!(
            matches!(err, ZipError::SourceTreeTooLarge { max: 20 }),
            "{err}"
        );
    }

    #[test]
    fn create_from_dir_matches_create() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        fs::write(root.join("go.mod"), "module example.com/m\n").expect("write");
        fs::create_dir_all(root.join(".git")).expect("mkdir");
        fs::write(root.join(".git/HEAD"), "ref").expect("write");
        fs::write(root.join("a.go"), "package m\n").expect("write");
        let version = m("example.com/m", "v1.0.0");
        let from_dir = create_from_dir(Cursor::new(Vec::new()), &version, root)
            .expect("create")
            .into_inner();
        let from_files = create_bytes(
            &version,
            &[
                MemFile::new("a.go", "package m\n"),
                MemFile::new("go.mod", "module example.com/m\n"),
            ],
        );
        assert_eq!(from_dir, from_files);
    }

    fn zip_of(entries: &[RawEntry]) -> Cursor<Vec<u8>> {
        Cursor::new(raw_zip(entries))
    }

    fn invalid_reasons(entries: &[RawEntry]) -> Vec<(String, FileErrorKind)> {
        let checked = check_zip(&m("example.com/m", "v1.0.0"), zip_of(entries)).expect("readable");
        checked
            .invalid
            .into_iter()
            .map(|e| (e.path, e.reason))
            .collect()
    }

    const P: &str = "example.com/m@v1.0.0/";

    fn entry(name: &str, data: &str) -> RawEntry {
        RawEntry::new(format!("{P}{name}"), data)
    }

    #[test]
    fn check_zip_rejects_hostile_names() {
        let entries = vec![
            RawEntry::new("other@v1.0.0/a.go", ""),
            RawEntry::new("../evil", ""),
            RawEntry::new("/abs", ""),
            // Clean, so the file path rules reject it.
            entry("../escape", ""),
            entry("a/../b", ""),
            entry("/abs", ""),
            entry("back\\slash", ""),
            entry("nul\0byte", ""),
            RawEntry::new([P.as_bytes(), b"bad\xffutf8"].concat(), ""),
            entry("x/go.mod", ""),
            entry("GO.MOD", ""),
            entry("ok.go", ""),
        ];
        let reasons = invalid_reasons(&entries);
        let kinds: Vec<String> = reasons
            .iter()
            .map(|(path, reason)| format!("{path} => {}", reason_name(reason)))
            .collect();
        assert_eq!(
            kinds,
            [
                "other@v1.0.0/a.go => prefix",
                "../evil => prefix",
                "/abs => prefix",
                format!("{P}../escape => path").as_str(),
                format!("{P}a/../b => clean").as_str(),
                format!("{P}/abs => path").as_str(),
                format!("{P}back\\slash => path").as_str(),
                format!("{P}nul\0byte => path").as_str(),
                format!("{P}bad\u{FFFD}utf8 => utf8").as_str(),
                format!("{P}x/go.mod => not-root").as_str(),
                format!("{P}GO.MOD => case").as_str(),
            ]
        );
    }

    fn reason_name(reason: &FileErrorKind) -> &'static str {
        match reason {
            FileErrorKind::MissingPrefix { .. } => "prefix",
            FileErrorKind::NotClean => "clean",
            FileErrorKind::InvalidPath(_) => "path",
            FileErrorKind::InvalidUtf8 => "utf8",
            FileErrorKind::GoModNotAtRoot => "not-root",
            FileErrorKind::GoModCase => "case",
            FileErrorKind::Duplicate { .. } => "duplicate",
            FileErrorKind::CaseCollision { .. } => "collision",
            FileErrorKind::FileAndDirectory { .. } => "file-and-dir",
            _ => "other",
        }
    }

    #[test]
    fn check_zip_finds_duplicates_collisions_and_directories() {
        let entries = vec![
            entry("", ""),
            entry("dir/", ""),
            entry("dir/a.go", "1"),
            entry("dir/a.go", "2"),
            entry("Dir/b.go", ""),
            entry("f", ""),
            entry("f/", ""),
        ];
        let reasons: Vec<&str> = invalid_reasons(&entries)
            .iter()
            .map(|(_, r)| reason_name(r))
            .collect();
        assert_eq!(reasons, ["duplicate", "collision", "file-and-dir"]);
        let checked = check_zip(&m("example.com/m", "v1.0.0"), zip_of(&entries)).expect("read");
        assert_eq!(checked.valid, [format!("{P}dir/a.go"), format!("{P}f")]);
    }

    #[test]
    fn check_zip_enforces_size_limits() {
        let limits = Limits {
            zip_file: 1000,
            go_mod: 10,
            license: 5,
        };
        let version = m("example.com/m", "v1.0.0");
        let mut big_go_mod = entry("go.mod", "module example.com/m\n");
        big_go_mod.declared_size = Some(11);
        let mut big_license = entry("LICENSE", "abcdef");
        big_license.declared_size = Some(6);
        let (_, checked) =
            check_zip_with(&version, zip_of(&[big_go_mod, big_license]), &limits).expect("read");
        assert!(matches!(
            checked.invalid[0].reason,
            FileErrorKind::GoModTooLarge { max: 10 }
        ));
        assert!(matches!(
            checked.invalid[1].reason,
            FileErrorKind::LicenseTooLarge { max: 5 }
        ));

        let mut huge = entry("huge", "x");
        huge.declared_size = Some(1001);
        let (_, checked) = check_zip_with(&version, zip_of(&[huge]), &limits).expect("read");
        assert!(matches!(
            checked.err(),
            Err(ZipError::ContentsTooLarge { max: 1000 })
        ));

        let small = Limits {
            zip_file: 50,
            ..limits
        };
        let (archive, checked) =
            check_zip_with(&version, zip_of(&[entry("a", "")]), &small).expect("read");
        assert!(archive.is_none());
        assert!(matches!(
            checked.err(),
            Err(ZipError::ZipFileTooLarge { max: 50, .. })
        ));
        // The same with the real limits is fine.
        let checked = check_zip(&version, zip_of(&[entry("a", "")])).expect("read");
        assert!(checked.err().is_ok());
    }

    #[test]
    fn check_zip_requires_canonical_valid_module() {
        let err = check_zip(&m("example.com/m", "v1"), zip_of(&[])).unwrap_err();
        assert!(matches!(err, ZipError::NotCanonical { .. }));
        let err = check_zip(&m("example.com/m/v2", "v1.0.0"), zip_of(&[])).unwrap_err();
        assert!(matches!(err, ZipError::Module(_)));
    }

    fn unzip_err(entries: &[RawEntry]) -> ZipError {
        let tmp = tempfile::tempdir().expect("tempdir");
        unzip(
            &tmp.path().join("out"),
            &m("example.com/m", "v1.0.0"),
            zip_of(entries),
        )
        .unwrap_err()
    }

    #[test]
    fn verify_zip_checks_data_and_returns_the_go_mod() {
        let m = m("example.com/m", "v1.0.0");
        let good = [
            entry("go.mod", "module example.com/m\n"),
            entry("a.go", "package a\n"),
        ];
        assert_eq!(
            verify_zip(&m, zip_of(&good)).unwrap().as_deref(),
            Some(&b"module example.com/m\n"[..])
        );
        assert_eq!(
            verify_zip(&m, zip_of(&[entry("a.go", "package a\n")])).unwrap(),
            None
        );
        // Only the root go.mod counts (a nested one makes the zip invalid).
        assert!(verify_zip(&m, zip_of(&[entry("sub/go.mod", "module x\n")])).is_err());
        let mut corrupt = entry("a.go", "package a\n");
        corrupt.crc = Some(12345);
        assert!(matches!(
            verify_zip(&m, zip_of(&[corrupt])),
            Err(ZipError::Checksum { .. })
        ));
        let mut bomb = entry("bomb", "");
        bomb.data = vec![0u8; 1 << 20];
        bomb.declared_size = Some(100);
        assert!(matches!(
            verify_zip(&m, zip_of(&[bomb])),
            Err(ZipError::LargerThanDeclared { declared: 100, .. })
        ));
        assert!(matches!(
            verify_zip(&m, zip_of(&[entry("a.go", ""), entry("a.go", "")])),
            Err(ZipError::InvalidFiles(_))
        ));
    }

    #[test]
    fn unzip_stops_a_zip_bomb_at_the_declared_size() {
        // 64 MiB of zeros deflates to about 64 KiB; the header claims 100 bytes.
        let mut bomb = entry("bomb", "");
        bomb.data = vec![0u8; 64 << 20];
        bomb.declared_size = Some(100);
        let err = unzip_err(&[bomb]);
        assert!(
            matches!(&err, ZipError::LargerThanDeclared { path, declared: 100 } if path.ends_with("/bomb")),
            "{err}"
        );
    }

    #[test]
    fn unzip_verifies_sizes_and_checksums() {
        let mut short = entry("short", "abc");
        short.declared_size = Some(10);
        assert!(matches!(
            unzip_err(&[short]),
            ZipError::ShorterThanDeclared { declared: 10, .. }
        ));

        let mut corrupt = entry("corrupt", "abc");
        corrupt.crc = Some(12345);
        assert!(matches!(unzip_err(&[corrupt]), ZipError::Checksum { .. }));

        let mut stored_long = entry("stored", "abcdef");
        stored_long.method = 0;
        stored_long.declared_size = Some(2);
        assert!(matches!(
            unzip_err(&[stored_long]),
            ZipError::LargerThanDeclared { declared: 2, .. }
        ));

        let mut descriptor = entry("descriptor", "abc");
        descriptor.crc = Some(1);
        descriptor.descriptor_crc = Some(2);
        assert!(matches!(
            unzip_err(&[descriptor]),
            ZipError::Checksum { .. }
        ));

        let mut odd_method = entry("odd", "abc");
        odd_method.method = 12;
        assert!(matches!(
            unzip_err(&[odd_method]),
            ZipError::UnsupportedMethod { method: 12, .. }
        ));

        let mut good_descriptor = entry("descriptor", "abc");
        let mut crc = flate2::Crc::new();
        crc.update(b"abc");
        good_descriptor.descriptor_crc = Some(crc.sum());
        let tmp = tempfile::tempdir().expect("tempdir");
        unzip(
            tmp.path(),
            &m("example.com/m", "v1.0.0"),
            zip_of(&[good_descriptor]),
        )
        .expect("unzip");
        assert_eq!(
            fs::read(tmp.path().join("descriptor")).expect("read"),
            b"abc"
        );
    }

    #[test]
    fn unzip_refuses_invalid_zips_and_full_directories() {
        let err = unzip_err(&[entry("a", ""), entry("A", "")]);
        assert!(matches!(err, ZipError::InvalidFiles(_)), "{err}");

        let tmp = tempfile::tempdir().expect("tempdir");
        fs::write(tmp.path().join("existing"), "").expect("write");
        let err = unzip(
            tmp.path(),
            &m("example.com/m", "v1.0.0"),
            zip_of(&[entry("a", "")]),
        )
        .unwrap_err();
        assert!(matches!(err, ZipError::TargetNotEmpty { .. }), "{err}");
    }

    #[test]
    fn malformed_archives_are_errors_not_panics() {
        let version = m("example.com/m", "v1.0.0");
        for bytes in [
            Vec::new(),
            b"PK".to_vec(),
            vec![0u8; 5000],
            b"not a zip at all".to_vec(),
        ] {
            let err = check_zip(&version, Cursor::new(bytes)).unwrap_err();
            assert!(matches!(err, ZipError::Format { .. }), "{err}");
        }
        // An end record claiming 65535 entries with a one-entry directory.
        let lying = raw_zip_with_count(&[entry("a", "")], Some(0xffff));
        assert!(check_zip(&version, Cursor::new(lying)).is_err());
        // Counts are compared modulo 65536, as the go command does.
        let wrapped = raw_zip_with_count(&[entry("a", "")], Some(1));
        assert!(check_zip(&version, Cursor::new(wrapped)).is_ok());

        let good = raw_zip(&[
            entry("go.mod", "module example.com/m\n"),
            entry("a.go", "package m"),
        ]);
        for cut in 0..good.len() {
            let _ = check_zip(&version, Cursor::new(&good[..cut]));
            let tmp = tempfile::tempdir().expect("tempdir");
            let _ = unzip(&tmp.path().join("x"), &version, Cursor::new(&good[..cut]));
        }
        for at in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[at] ^= flip;
                let _ = check_zip(&version, Cursor::new(&bad));
                let _ = crate::dirhash::hash_zip(Cursor::new(&bad));
                let tmp = tempfile::tempdir().expect("tempdir");
                let _ = unzip(&tmp.path().join("x"), &version, Cursor::new(&bad));
            }
        }
    }
}
