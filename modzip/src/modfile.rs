//! The requirement-graph part of `go.mod` and `go.work` files: `module`,
//! `go`, `toolchain`, `require`, `exclude`, `replace` and `use`, read with
//! the go command's tokenizer and grammar (see [`crate::gomod`]).
//!
//! [`parse_main_mod`] reads a main module's go.mod, whose `replace` and
//! `exclude` directives the go command applies, and rejects what the go
//! command's strict parse (`modfile.Parse`) rejects among those
//! directives; [`parse_dependency_mod`] reads a dependency's go.mod the
//! way the lax parse does (`modfile.ParseLax`: only `module`, `go` and
//! `require` matter, `replace` and `exclude` are ignored);
//! [`parse_work`] reads a `go.work` file.

use crate::gomod::{self, Parser, Statement};
use crate::module::{self, Version as ModuleVersion};

/// What a `replace` directive replaces its module with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    /// Another module version, fetched like any other.
    Module(ModuleVersion),
    /// A directory on disk (relative to the file the directive is in, or
    /// absolute), read in place: nothing is downloaded.
    Dir(String),
}

/// One `replace` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replace {
    /// The replaced module; an empty version replaces every version.
    pub old: ModuleVersion,
    /// What replaces it.
    pub new: Replacement,
}

/// A go.mod file, as far as the module graph needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModFile {
    /// The `module` path, when there is one.
    pub module: Option<String>,
    /// The `go` version, when there is one.
    pub go: Option<String>,
    /// The `toolchain` name, when there is one.
    pub toolchain: Option<String>,
    /// `require` directives, in file order (canonical versions).
    pub require: Vec<ModuleVersion>,
    /// `exclude` directives (main module only).
    pub exclude: Vec<ModuleVersion>,
    /// `replace` directives (main module only).
    pub replace: Vec<Replace>,
}

/// A go.work file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkFile {
    /// The `go` version, when there is one.
    pub go: Option<String>,
    /// The `toolchain` name, when there is one.
    pub toolchain: Option<String>,
    /// The module directories of `use` directives, as written.
    pub uses: Vec<String>,
    /// `replace` directives, which override the modules' own.
    pub replace: Vec<Replace>,
}

/// Why a go.mod or go.work file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModFileError {
    /// The tokenizer or the grammar failed.
    #[error("syntax error")]
    Syntax,
    /// A directive is malformed.
    #[error("line {line:?}: {reason}")]
    Directive {
        /// The directive's words, joined by spaces.
        line: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `module` or `go` directive is repeated.
    #[error("repeated {verb} directive")]
    Repeated {
        /// The verb.
        verb: &'static str,
    },
    /// A verb the file format does not have.
    #[error("unknown directive: {verb}")]
    Unknown {
        /// The verb.
        verb: String,
    },
}

/// Whether a replacement target is a directory path rather than a module
/// path: the go command's `modfile.IsDirectoryPath`, which knows both Unix
/// and Windows spellings because go.mod files move between systems.
pub fn is_directory_path(ns: &str) -> bool {
    let b = ns.as_bytes();
    ns == "."
        || ns.starts_with("./")
        || ns.starts_with(".\\")
        || ns == ".."
        || ns.starts_with("../")
        || ns.starts_with("..\\")
        || ns.starts_with('/')
        || ns.starts_with('\\')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

/// Reads a main module's go.mod: every directive must be well formed and
/// known, as the go command's strict parse requires.
pub fn parse_main_mod(data: &[u8]) -> Result<ModFile, ModFileError> {
    let mut file = ModFile::default();
    for_each_directive(data, |verb, args| {
        let fail = |reason: &str| directive_error(verb, args, reason);
        match verb {
            "module" => {
                if file.module.is_some() {
                    return Err(ModFileError::Repeated { verb: "module" });
                }
                // `module path` plus an optional deprecation comment we
                // never see (comments are dropped by the tokenizer).
                let [path] = args else {
                    return Err(fail("usage: module module/path"));
                };
                file.module = Some(string(path).map_err(|()| fail("invalid quoted string"))?);
            }
            "go" => {
                if file.go.is_some() {
                    return Err(ModFileError::Repeated { verb: "go" });
                }
                let [version] = args else {
                    return Err(fail("usage: go 1.23"));
                };
                if !gomod::is_strict_go_version(version) {
                    return Err(fail("invalid go version"));
                }
                file.go = Some(text(version));
            }
            "toolchain" => {
                let [name] = args else {
                    return Err(fail("usage: toolchain go1.23.0"));
                };
                file.toolchain = Some(text(name));
            }
            "require" => file.require.push(path_version(verb, args)?),
            "exclude" => file.exclude.push(path_version(verb, args)?),
            "replace" => file.replace.push(replace(verb, args)?),
            "retract" | "godebug" | "tool" | "ignore" => {}
            other => {
                return Err(ModFileError::Unknown {
                    verb: other.to_string(),
                })
            }
        }
        Ok(())
    })?;
    Ok(file)
}

/// Reads a dependency's go.mod as the go command's lax parse does: the
/// file must parse, `module`, `go` and `require` must be well formed,
/// every other directive is ignored (so `replace` and `exclude` stay
/// empty).
pub fn parse_dependency_mod(data: &[u8]) -> Result<ModFile, ModFileError> {
    let lax = gomod::parse_lax(data).map_err(|e| match e {
        gomod::GoModError::Syntax => ModFileError::Syntax,
        gomod::GoModError::Directive { verb } => ModFileError::Directive {
            line: verb,
            reason: "malformed or repeated".into(),
        },
    })?;
    let mut file = ModFile {
        module: lax.module,
        go: lax.go,
        ..ModFile::default()
    };
    // parse_lax has already checked every require line.
    for_each_directive(data, |verb, args| {
        if verb == "require" {
            file.require.push(path_version(verb, args)?);
        }
        Ok(())
    })?;
    Ok(file)
}

/// Reads a go.work file.
pub fn parse_work(data: &[u8]) -> Result<WorkFile, ModFileError> {
    let mut file = WorkFile::default();
    for_each_directive(data, |verb, args| {
        let fail = |reason: &str| directive_error(verb, args, reason);
        match verb {
            "go" => {
                if file.go.is_some() {
                    return Err(ModFileError::Repeated { verb: "go" });
                }
                let [version] = args else {
                    return Err(fail("usage: go 1.23"));
                };
                if !gomod::is_strict_go_version(version) {
                    return Err(fail("invalid go version"));
                }
                file.go = Some(text(version));
            }
            "toolchain" => {
                let [name] = args else {
                    return Err(fail("usage: toolchain go1.23.0"));
                };
                file.toolchain = Some(text(name));
            }
            "use" => {
                let [dir] = args else {
                    return Err(fail("usage: use local/dir"));
                };
                file.uses
                    .push(string(dir).map_err(|()| fail("invalid quoted string"))?);
            }
            "replace" => file.replace.push(replace(verb, args)?),
            "godebug" => {}
            other => {
                return Err(ModFileError::Unknown {
                    verb: other.to_string(),
                })
            }
        }
        Ok(())
    })?;
    Ok(file)
}

/// Calls `f` with the verb and arguments of every directive, block lines
/// included; stops at the first error.
fn for_each_directive(
    data: &[u8],
    mut f: impl FnMut(&str, &[&[u8]]) -> Result<(), ModFileError>,
) -> Result<(), ModFileError> {
    let statements = Parser::parse(data).map_err(|_| ModFileError::Syntax)?;
    for statement in &statements {
        match statement {
            Statement::Line(tokens) => {
                let Some((verb, args)) = tokens.split_first() else {
                    return Err(ModFileError::Syntax);
                };
                f(&text(verb), args)?;
            }
            Statement::Block { head, lines } => {
                let [verb] = head.as_slice() else {
                    return Err(ModFileError::Syntax);
                };
                let verb = text(verb);
                for line in lines {
                    f(&verb, line)?;
                }
            }
        }
    }
    Ok(())
}

fn text(token: &[u8]) -> String {
    String::from_utf8_lossy(token).into_owned()
}

fn directive_error(verb: &str, args: &[&[u8]], reason: &str) -> ModFileError {
    let mut line = verb.to_string();
    for arg in args {
        line.push(' ');
        line.push_str(&text(arg));
    }
    ModFileError::Directive {
        line,
        reason: reason.to_string(),
    }
}

/// A quoted or bare path argument as UTF-8.
fn string(token: &[u8]) -> Result<String, ()> {
    let raw = gomod::parse_string(token).map_err(|_| ())?;
    String::from_utf8(raw).map_err(|_| ())
}

/// A module path argument, checked as the go command checks it.
fn module_path(verb: &str, args: &[&[u8]], token: &[u8]) -> Result<String, ModFileError> {
    let fail = |reason: &str| directive_error(verb, args, reason);
    let path = string(token).map_err(|()| fail("invalid quoted string"))?;
    module::check_path(&path).map_err(|e| fail(&e.to_string()))?;
    Ok(path)
}

/// A version argument for `path`, canonicalized and checked against the
/// path's major-version suffix.
fn version_for(
    verb: &str,
    args: &[&[u8]],
    path: &str,
    token: &[u8],
) -> Result<String, ModFileError> {
    let fail = |reason: &str| directive_error(verb, args, reason);
    let version =
        gomod::parse_version(token).map_err(|_| fail("version must be of the form v1.2.3"))?;
    let (_, path_major) =
        module::split_path_version(path).ok_or_else(|| fail("invalid module path"))?;
    module::check_path_major(&version, path_major).map_err(|e| fail(&e.to_string()))?;
    Ok(version)
}

/// `path version` of `require` and `exclude`.
fn path_version(verb: &str, args: &[&[u8]]) -> Result<ModuleVersion, ModFileError> {
    let [path, version] = args else {
        return Err(directive_error(
            verb,
            args,
            &format!("usage: {verb} module/path v1.2.3"),
        ));
    };
    let path = module_path(verb, args, path)?;
    let version = version_for(verb, args, &path, version)?;
    Ok(ModuleVersion { path, version })
}

/// `old [version] => new [version]` or `old [version] => directory`.
fn replace(verb: &str, args: &[&[u8]]) -> Result<Replace, ModFileError> {
    let fail = |reason: &str| directive_error(verb, args, reason);
    let arrow = if args.len() >= 2 && args[1] == b"=>" {
        1
    } else {
        2
    };
    if args.len() < arrow + 2 || args.len() > arrow + 3 || args[arrow] != b"=>" {
        return Err(fail(
            "usage: replace module/path [v1.2.3] => other/module v1.4 or => ../local/directory",
        ));
    }
    let old_path = module_path(verb, args, args[0])?;
    let old_version = if arrow == 2 {
        version_for(verb, args, &old_path, args[1])?
    } else {
        String::new()
    };
    let target = string(args[arrow + 1]).map_err(|()| fail("invalid quoted string"))?;
    let new = if args.len() == arrow + 2 {
        if !is_directory_path(&target) {
            return Err(fail(
                "replacement module without version must be directory path (rooted or starting with . or ..)",
            ));
        }
        Replacement::Dir(target)
    } else {
        if is_directory_path(&target) {
            return Err(fail(
                "replacement module directory path cannot have version",
            ));
        }
        module::check_path(&target).map_err(|e| fail(&e.to_string()))?;
        let version = version_for(verb, args, &target, args[arrow + 2])?;
        Replacement::Module(ModuleVersion {
            path: target,
            version,
        })
    };
    Ok(Replace {
        old: ModuleVersion {
            path: old_path,
            version: old_version,
        },
        new,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(path: &str, version: &str) -> ModuleVersion {
        ModuleVersion::new(path, version)
    }

    #[test]
    fn main_module_directives() {
        let data = br#"// a comment
module example.com/app

go 1.22

toolchain go1.22.3

require (
	example.com/a v1.2.0 // indirect
	"example.com/b" v1.0
	example.com/c/v2 v2.0.0
)

require example.com/d v0.0.0-20240101000000-0123456789ab

exclude example.com/a v1.1.0

replace (
	example.com/b => ./local/b
	example.com/c/v2 v2.0.0 => example.com/fork/v2 v2.0.1
	example.com/e v1.0.0 => /abs/e
)
retract v0.1.0
"#;
        let file = parse_main_mod(data).unwrap();
        assert_eq!(file.module.as_deref(), Some("example.com/app"));
        assert_eq!(file.go.as_deref(), Some("1.22"));
        assert_eq!(file.toolchain.as_deref(), Some("go1.22.3"));
        assert_eq!(
            file.require,
            vec![
                mv("example.com/a", "v1.2.0"),
                mv("example.com/b", "v1.0.0"),
                mv("example.com/c/v2", "v2.0.0"),
                mv("example.com/d", "v0.0.0-20240101000000-0123456789ab"),
            ]
        );
        assert_eq!(file.exclude, vec![mv("example.com/a", "v1.1.0")]);
        assert_eq!(
            file.replace,
            vec![
                Replace {
                    old: mv("example.com/b", ""),
                    new: Replacement::Dir("./local/b".into()),
                },
                Replace {
                    old: mv("example.com/c/v2", "v2.0.0"),
                    new: Replacement::Module(mv("example.com/fork/v2", "v2.0.1")),
                },
                Replace {
                    old: mv("example.com/e", "v1.0.0"),
                    new: Replacement::Dir("/abs/e".into()),
                },
            ]
        );
    }

    #[test]
    fn malformed_main_module_directives_are_refused() {
        for bad in [
            "module a.com/x\nmodule a.com/y\n",
            "go 1.21\ngo 1.22\n",
            "go v1.21\n",
            "require a.com/x\n",
            "require a.com/x master\n",
            "require a.com/x/v2 v1.0.0\n",
            "exclude a.com/x\n",
            "replace a.com/x => b.com/y\n",
            "replace a.com/x => ./dir v1.0.0\n",
            "replace a.com/x v1.0.0 b.com/y v1.0.0\n",
            "replace a.com/x => b.com/y@v1.0.0\n",
            "frobnicate a.com/x\n",
            "require (\na.com/x v1.0.0\n",
            "module \"a.com/x\n",
        ] {
            assert!(parse_main_mod(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn dependency_go_mod_ignores_what_only_the_main_module_uses() {
        let data = b"module a.com/x\ngo 1.16\nrequire b.com/y v1.0.0\nreplace b.com/y => ../y\nexclude c.com/z v1.0.0\nfrobnicate\n";
        let file = parse_dependency_mod(data).unwrap();
        assert_eq!(file.module.as_deref(), Some("a.com/x"));
        assert_eq!(file.go.as_deref(), Some("1.16"));
        assert_eq!(file.require, vec![mv("b.com/y", "v1.0.0")]);
        assert!(file.replace.is_empty() && file.exclude.is_empty());
        // A malformed require line fails the lax parse too.
        assert!(parse_dependency_mod(b"module a.com/x\nrequire b.com/y\n").is_err());
        // No module line is the caller's business.
        assert_eq!(parse_dependency_mod(b"").unwrap(), ModFile::default());
    }

    #[test]
    fn work_files() {
        let data = b"go 1.22\n\nuse (\n\t./app\n\t\"./lib\"\n)\nuse /abs/mod\nreplace a.com/x v1.0.0 => a.com/y v1.0.1\n";
        let file = parse_work(data).unwrap();
        assert_eq!(file.go.as_deref(), Some("1.22"));
        assert_eq!(file.uses, vec!["./app", "./lib", "/abs/mod"]);
        assert_eq!(file.replace.len(), 1);
        for bad in ["use\n", "use a b\n", "require a.com/x v1.0.0\n", "go 1\n"] {
            assert!(parse_work(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn directory_paths() {
        for dir in [
            ".", "..", "./a", "../a", "/a", "\\a", ".\\a", "..\\a", "C:\\a", "c:/a",
        ] {
            assert!(is_directory_path(dir), "{dir}");
        }
        for not in ["a", "example.com/a", "a/./b", ".a"] {
            assert!(!is_directory_path(not), "{not}");
        }
    }
}
