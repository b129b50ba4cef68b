//! Reading what `athens prefill` is asked to fill into a [`Plan`]: a
//! go.mod (with the go.sum beside it), a go.work (with go.work.sum and
//! the go.sum of every module it uses), list files of `module@version`
//! lines and `module@version` / `module@all` arguments.

use std::path::{Path, PathBuf};

use modzip::modfile::{self, Replace, Replacement};
use modzip::module::Version;

use super::{Listed, MainModule, Plan, Source};

/// Why the input cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A go.mod or go.work file is malformed.
    #[error("{path}: {source}")]
    ModFile {
        /// The file.
        path: String,
        /// What is wrong.
        #[source]
        source: modfile::ModFileError,
    },
    /// Anything else that makes the input unusable.
    #[error("{0}")]
    Invalid(String),
    /// A go.sum file is malformed.
    #[error(transparent)]
    GoSum(#[from] super::gosum::GoSumError),
}

/// Where to read go.sum lines from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SumFiles {
    /// The go.sum beside the go.mod (go.work.sum and the modules' go.sum
    /// for a go.work), when they exist.
    Beside,
    /// None but those named explicitly.
    Explicit,
}

fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|source| InputError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The go.mod file `path` names: the file itself, or `go.mod` in the
/// directory.
fn go_mod_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("go.mod")
    } else {
        path.to_path_buf()
    }
}

fn absolute(path: &Path) -> Result<PathBuf, InputError> {
    std::path::absolute(path).map_err(|source| InputError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Reads the main module at `path` (a go.mod file or its directory).
fn main_module(path: &Path) -> Result<(MainModule, PathBuf), InputError> {
    let file_path = absolute(&go_mod_file(path))?;
    let data = read(&file_path)?;
    let file = modfile::parse_main_mod(&data).map_err(|source| InputError::ModFile {
        path: file_path.display().to_string(),
        source,
    })?;
    let module_path = file.module.clone().ok_or_else(|| {
        InputError::Invalid(format!("{}: no module directive", file_path.display()))
    })?;
    let dir = file_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Ok((
        MainModule {
            path: module_path,
            dir,
            file,
        },
        file_path,
    ))
}

/// Adds `replace` directives of a file in `dir` to `map`; two different
/// replacements of one module are an error, as for the go command.
fn add_replacements(
    map: &mut std::collections::HashMap<Version, Source>,
    replace: &[Replace],
    dir: &Path,
    file: &Path,
) -> Result<(), InputError> {
    for r in replace {
        let source = match &r.new {
            Replacement::Module(v) => Source::Module(v.clone()),
            Replacement::Dir(d) => Source::Dir(dir.join(d)),
        };
        if let Some(previous) = map.get(&r.old) {
            if *previous != source {
                return Err(InputError::Invalid(format!(
                    "{}: conflicting replacements for {}",
                    file.display(),
                    r.old
                )));
            }
        }
        map.insert(r.old.clone(), source);
    }
    Ok(())
}

fn add_sums_if_present(plan: &mut Plan, path: &Path) -> Result<(), InputError> {
    if path.is_file() {
        plan.sums.read_file(path)?;
    }
    Ok(())
}

/// Sets `plan` up for the main module at `path` (a go.mod or its
/// directory).
pub fn add_go_mod(plan: &mut Plan, path: &Path, sums: SumFiles) -> Result<(), InputError> {
    if !plan.mains.is_empty() {
        return Err(InputError::Invalid(
            "only one go.mod or go.work can be given".into(),
        ));
    }
    let (main, file_path) = main_module(path)?;
    add_replacements(
        &mut plan.replace.modules,
        &main.file.replace,
        &main.dir,
        &file_path,
    )?;
    plan.exclude.extend(main.file.exclude.iter().cloned());
    if sums == SumFiles::Beside {
        add_sums_if_present(plan, &main.dir.join("go.sum"))?;
    }
    plan.mains.push(main);
    plan.workspace = false;
    Ok(())
}

/// Sets `plan` up for the workspace of the go.work file at `path`.
pub fn add_go_work(plan: &mut Plan, path: &Path, sums: SumFiles) -> Result<(), InputError> {
    if !plan.mains.is_empty() {
        return Err(InputError::Invalid(
            "only one go.mod or go.work can be given".into(),
        ));
    }
    let work_path = absolute(path)?;
    let data = read(&work_path)?;
    let work = modfile::parse_work(&data).map_err(|source| InputError::ModFile {
        path: work_path.display().to_string(),
        source,
    })?;
    let work_dir = work_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    add_replacements(&mut plan.replace.work, &work.replace, &work_dir, &work_path)?;
    if work.uses.is_empty() {
        return Err(InputError::Invalid(format!(
            "{}: no use directive",
            work_path.display()
        )));
    }
    for used in &work.uses {
        let (main, file_path) = main_module(&work_dir.join(used))?;
        if plan.mains.iter().any(|m| m.path == main.path) {
            return Err(InputError::Invalid(format!(
                "{}: module {} appears twice in the workspace",
                work_path.display(),
                main.path
            )));
        }
        add_replacements(
            &mut plan.replace.modules,
            &main.file.replace,
            &main.dir,
            &file_path,
        )?;
        plan.exclude.extend(main.file.exclude.iter().cloned());
        if sums == SumFiles::Beside {
            add_sums_if_present(plan, &main.dir.join("go.sum"))?;
        }
        plan.mains.push(main);
    }
    if sums == SumFiles::Beside {
        add_sums_if_present(plan, &work_dir.join("go.work.sum"))?;
    }
    plan.workspace = true;
    Ok(())
}

/// Parses `module@version` or `module@all`.
pub fn parse_listed(text: &str) -> Result<Listed, String> {
    let (module, query) = text
        .rsplit_once('@')
        .ok_or_else(|| format!("{text:?}: expected module@version or module@all"))?;
    modzip::module::check_path(module).map_err(|e| format!("{text:?}: {e}"))?;
    if query.is_empty() || query.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{text:?}: malformed version"));
    }
    if query == "all" {
        return Ok(Listed::All(module.to_string()));
    }
    if query == "none" || query == "upgrade" || query == "patch" {
        return Err(format!("{text:?}: {query} does not name versions to store"));
    }
    Ok(Listed::Version(Version::new(module, query)))
}

/// Reads a list file: one `module@version` (or `module@all`) per line;
/// blank lines and lines starting with `#` are skipped.
pub fn read_list(path: &Path) -> Result<Vec<Listed>, InputError> {
    let data = read(path)?;
    let text = String::from_utf8(data)
        .map_err(|_| InputError::Invalid(format!("{}: not UTF-8", path.display())))?;
    let mut listed = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        listed.push(
            parse_listed(line).map_err(|e| {
                InputError::Invalid(format!("{}:{}: {e}", path.display(), index + 1))
            })?,
        );
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    const H: &str = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn go_mod_with_its_go_sum_replacements_and_exclusions() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "app/go.mod",
            "module example.com/app\ngo 1.21\nrequire a.com/x v1.0.0\nreplace a.com/y => ../y\nreplace a.com/z v1.0.0 => b.com/z v1.1.0\nexclude a.com/x v0.9.0\n",
        );
        write(dir.path(), "app/go.sum", &format!("a.com/x v1.0.0 {H}\n"));
        let mut plan = Plan::default();
        add_go_mod(&mut plan, &dir.path().join("app"), SumFiles::Beside).unwrap();
        assert_eq!(plan.mains.len(), 1);
        assert_eq!(plan.mains[0].path, "example.com/app");
        assert!(!plan.workspace);
        assert!(plan.sums.covers("a.com/x", "v1.0.0"));
        let app = std::path::absolute(dir.path().join("app")).unwrap();
        assert_eq!(
            plan.replace.resolve(&Version::new("a.com/y", "v3.0.0")),
            Some(&Source::Dir(app.join("../y")))
        );
        assert_eq!(
            plan.replace.resolve(&Version::new("a.com/z", "v1.0.0")),
            Some(&Source::Module(Version::new("b.com/z", "v1.1.0")))
        );
        assert_eq!(
            plan.replace.resolve(&Version::new("a.com/z", "v1.0.1")),
            None
        );
        assert!(plan.exclude.contains(&Version::new("a.com/x", "v0.9.0")));
        // A second main module is refused; so is a go.mod without module.
        assert!(add_go_mod(&mut plan, &dir.path().join("app"), SumFiles::Beside).is_err());
        write(dir.path(), "bad/go.mod", "go 1.21\n");
        let mut plan = Plan::default();
        assert!(add_go_mod(
            &mut plan,
            &dir.path().join("bad/go.mod"),
            SumFiles::Explicit
        )
        .is_err());
    }

    #[test]
    fn go_work_with_its_modules() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a/go.mod",
            "module example.com/a\ngo 1.22\nreplace x.com/m => ./m\n",
        );
        write(dir.path(), "b/go.mod", "module example.com/b\ngo 1.22\n");
        write(
            dir.path(),
            "b/go.sum",
            &format!("x.com/n v1.0.0/go.mod {H}\n"),
        );
        write(dir.path(), "go.work.sum", &format!("x.com/o v1.0.0 {H}\n"));
        let work = write(
            dir.path(),
            "go.work",
            "go 1.22\nuse (\n\t./a\n\t./b\n)\nreplace x.com/m => x.com/fork v1.0.0\n",
        );
        let mut plan = Plan::default();
        add_go_work(&mut plan, &work, SumFiles::Beside).unwrap();
        assert!(plan.workspace);
        let paths: Vec<&str> = plan.mains.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["example.com/a", "example.com/b"]);
        // go.work's replacement wins over the module's.
        assert_eq!(
            plan.replace.resolve(&Version::new("x.com/m", "v1.0.0")),
            Some(&Source::Module(Version::new("x.com/fork", "v1.0.0")))
        );
        assert!(plan.sums.covers("x.com/n", "v1.0.0"));
        assert!(plan.sums.covers("x.com/o", "v1.0.0"));
        let mut explicit = Plan::default();
        add_go_work(&mut explicit, &work, SumFiles::Explicit).unwrap();
        assert!(explicit.sums.is_empty());
    }

    #[test]
    fn list_files_and_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let list = write(
            dir.path(),
            "list.txt",
            "# modules\n\na.com/x@v1.0.0\n  b.com/y@all  \nc.com/z@master\n",
        );
        assert_eq!(
            read_list(&list).unwrap(),
            vec![
                Listed::Version(Version::new("a.com/x", "v1.0.0")),
                Listed::All("b.com/y".into()),
                Listed::Version(Version::new("c.com/z", "master")),
            ]
        );
        for bad in [
            "a.com/x",
            "a.com/x@",
            "Bad Path@v1.0.0",
            "a.com/x@none",
            "-x@v1",
        ] {
            assert!(parse_listed(bad).is_err(), "accepted {bad:?}");
        }
        let bad = write(dir.path(), "bad.txt", "a.com/x@v1.0.0\nnonsense\n");
        let err = read_list(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.txt:2"), "{err}");
    }
}
