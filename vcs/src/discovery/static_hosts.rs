//! Import paths whose repository the go command knows without asking the
//! network: a few well-known hosting sites, and any path with a VCS suffix
//! element such as `example.com/repo.git/sub`.
//!
//! The go command describes these with regular expressions; we match the same
//! languages by hand (they are simple element-wise shapes), including the
//! quirk that the VCS-suffix rule is not anchored at the start of the path.

use super::meta::has_path_prefix;
use super::Vcs;

/// Where the repository of a statically known path lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StaticRepo {
    /// A full URL.
    Url(String),
    /// Host and path without scheme; the scheme must be found by probing.
    Schemeless(String),
}

/// A path matched by the static table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StaticHit {
    pub root: String,
    pub vcs: Vcs,
    pub repo: StaticRepo,
}

/// Why a path under a well-known host was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StaticReject {
    /// The path does not have the shape the host uses.
    BadShape { host_prefix: &'static str },
    /// The repository element ends in `.git`, `.hg`, ... which that host's
    /// rule forbids.
    VcsSuffix { host_prefix: &'static str },
}

/// Result of consulting the table.
pub(crate) type StaticResult = Result<Option<StaticHit>, StaticReject>;

/// `[A-Za-z0-9_.-]+`: one element under a well-known host.
fn is_word_elem(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

fn all_word_elems(elems: &[&str]) -> bool {
    elems.iter().all(|e| is_word_elem(e))
}

/// github.com and bitbucket.org: `host/owner/repo(/more)*`, root `host/owner/repo`.
fn owner_repo(elems: &[&str]) -> Option<usize> {
    (elems.len() >= 3 && all_word_elems(&elems[1..])).then_some(3)
}

/// hub.jazz.net: `hub.jazz.net/git/<[a-z0-9]+>/repo(/more)*`.
fn jazz(elems: &[&str]) -> Option<usize> {
    let user_ok = elems.get(2).is_some_and(|u| {
        !u.is_empty()
            && u.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    (elems.len() >= 4 && elems[1] == "git" && user_ok && all_word_elems(&elems[3..])).then_some(4)
}

/// git.apache.org: `git.apache.org/<[a-z0-9_.-]+>.git(/more)*`.
fn apache(elems: &[&str]) -> Option<usize> {
    let repo_ok = elems.get(1).is_some_and(|r| {
        r.len() > ".git".len()
            && r.ends_with(".git")
            && r.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
            })
    });
    (repo_ok && all_word_elems(&elems[2..])).then_some(2)
}

/// git.openstack.org: `host/a/b(/more)*`. The optional `.git` the go
/// command's pattern allows after `b` is always absorbed into `b` itself,
/// so the root is simply the first three elements.
fn openstack(elems: &[&str]) -> Option<usize> {
    owner_repo(elems)
}

/// chiselapp.com: exactly `chiselapp.com/user/<[A-Za-z0-9]+>/repository/<name>`.
fn chiselapp(elems: &[&str]) -> Option<usize> {
    let ok = elems.len() == 5
        && elems[1] == "user"
        && !elems[2].is_empty()
        && elems[2].bytes().all(|b| b.is_ascii_alphanumeric())
        && elems[3] == "repository"
        && is_word_elem(elems[4]);
    ok.then_some(5)
}

struct HostRule {
    prefix: &'static str,
    vcs: Vcs,
    /// Number of leading elements forming the root, if the path fits.
    shape: fn(&[&str]) -> Option<usize>,
    /// Whether the repository must not end in a VCS suffix.
    forbid_vcs_suffix: bool,
}

const HOST_RULES: &[HostRule] = &[
    HostRule {
        prefix: "github.com",
        vcs: Vcs::Git,
        shape: owner_repo,
        forbid_vcs_suffix: true,
    },
    HostRule {
        prefix: "bitbucket.org",
        vcs: Vcs::Git,
        shape: owner_repo,
        forbid_vcs_suffix: true,
    },
    HostRule {
        prefix: "hub.jazz.net/git",
        vcs: Vcs::Git,
        shape: jazz,
        forbid_vcs_suffix: true,
    },
    HostRule {
        prefix: "git.apache.org",
        vcs: Vcs::Git,
        shape: apache,
        forbid_vcs_suffix: false,
    },
    HostRule {
        prefix: "git.openstack.org",
        vcs: Vcs::Git,
        shape: openstack,
        forbid_vcs_suffix: false,
    },
    HostRule {
        prefix: "chiselapp.com",
        vcs: Vcs::Fossil,
        shape: chiselapp,
        forbid_vcs_suffix: false,
    },
];

/// VCS suffixes in the order the go command lists its VCSes.
const VCS_SUFFIXES: &[(&str, Vcs)] = &[
    (".hg", Vcs::Hg),
    (".git", Vcs::Git),
    (".svn", Vcs::Svn),
    (".fossil", Vcs::Fossil),
];

/// Consults the static table. `Ok(None)` means dynamic discovery is needed.
pub(crate) fn lookup(path: &str) -> StaticResult {
    for rule in HOST_RULES {
        if !has_path_prefix(path, rule.prefix) {
            continue;
        }
        let elems: Vec<&str> = path.split('/').collect();
        let host_ok = elems.first() == Some(&rule.prefix.split('/').next().unwrap_or(""));
        let Some(n) = (rule.shape)(&elems).filter(|_| host_ok) else {
            return Err(StaticReject::BadShape {
                host_prefix: rule.prefix,
            });
        };
        let root = elems[..n].join("/");
        if rule.forbid_vcs_suffix && VCS_SUFFIXES.iter().any(|(sfx, _)| root.ends_with(sfx)) {
            return Err(StaticReject::VcsSuffix {
                host_prefix: rule.prefix,
            });
        }
        return Ok(Some(StaticHit {
            repo: StaticRepo::Url(format!("https://{root}")),
            root,
            vcs: rule.vcs,
        }));
    }
    Ok(vcs_suffix_rule(path))
}

/// The general rule: a host (`[a-z0-9.-]` with an inner dot, optional
/// `:port`), then `/`-separated elements (`~?[A-Za-z0-9_.-]+`), the last of
/// which that ends in `.git`/`.hg`/`.svn`/`.fossil` ends the root. "Last"
/// because in the go command's pattern the greedy element match outranks the
/// lazy repetition, so its backtracking search settles on the deepest
/// suffixed element. Like that unanchored pattern, the match may begin
/// anywhere in the path, the leftmost viable start winning.
fn vcs_suffix_rule(path: &str) -> Option<StaticHit> {
    (0..path.len()).find_map(|start| vcs_suffix_at(path, start))
}

fn vcs_suffix_at(path: &str, start: usize) -> Option<StaticHit> {
    let b = path.as_bytes();
    let is_host_byte =
        |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-';
    let mut pos = start;
    while pos < b.len() && is_host_byte(b[pos]) {
        pos += 1;
    }
    let host = &b[start..pos];
    // At least one character on each side of some dot.
    if host.len() < 3 || !host[1..host.len() - 1].contains(&b'.') {
        return None;
    }
    if b.get(pos) == Some(&b':') {
        let digits_start = pos + 1;
        pos = digits_start;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == digits_start {
            return None;
        }
    }
    if b.get(pos) != Some(&b'/') {
        return None;
    }
    let elems: Vec<&str> = path[pos + 1..].split('/').collect();
    let elem_ok = |e: &&str| is_word_elem(e.strip_prefix('~').unwrap_or(e));
    if !elems.iter().all(elem_ok) {
        return None;
    }
    let mut end = pos;
    let mut last_hit = None;
    for e in &elems {
        end += 1 + e.len();
        let stem_and_vcs = e.strip_prefix('~').unwrap_or(e);
        let hit = VCS_SUFFIXES
            .iter()
            .find(|(sfx, _)| stem_and_vcs.len() > sfx.len() && stem_and_vcs.ends_with(sfx));
        if let Some((sfx, vcs)) = hit {
            last_hit = Some((end, *sfx, *vcs));
        }
    }
    let (end, sfx, vcs) = last_hit?;
    let root = &path[start..end];
    Some(StaticHit {
        root: root.to_string(),
        vcs,
        repo: StaticRepo::Schemeless(root[..root.len() - sfx.len()].to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(root: &str, vcs: Vcs, repo: StaticRepo) -> StaticResult {
        Ok(Some(StaticHit {
            root: root.into(),
            vcs,
            repo,
        }))
    }

    fn url(s: &str) -> StaticRepo {
        StaticRepo::Url(s.into())
    }

    fn bare(s: &str) -> StaticRepo {
        StaticRepo::Schemeless(s.into())
    }

    #[test]
    fn github() {
        assert_eq!(
            lookup("github.com/golang/groupcache"),
            hit(
                "github.com/golang/groupcache",
                Vcs::Git,
                url("https://github.com/golang/groupcache")
            )
        );
        assert_eq!(
            lookup("github.com/Owner_1/re.po-x/sub/v2"),
            hit(
                "github.com/Owner_1/re.po-x",
                Vcs::Git,
                url("https://github.com/Owner_1/re.po-x")
            )
        );
        let bad = Err(StaticReject::BadShape {
            host_prefix: "github.com",
        });
        for p in [
            "github.com",
            "github.com/owner",
            "github.com/owner/",
            "github.com/o/r/",
            "github.com/o//r",
            "github.com/o/r~x",
            "github.com/o/r/s+t",
        ] {
            assert_eq!(lookup(p), bad, "{p}");
        }
        for p in [
            "github.com/o/r.git",
            "github.com/o/r.git/sub",
            "github.com/o/r.hg",
            "github.com/o/r.svn",
            "github.com/o/r.fossil",
        ] {
            assert_eq!(
                lookup(p),
                Err(StaticReject::VcsSuffix {
                    host_prefix: "github.com"
                }),
                "{p}"
            );
        }
        // Not under github.com at a path boundary: not this rule.
        assert_eq!(lookup("github.community/x/y"), Ok(None));
    }

    #[test]
    fn bitbucket() {
        assert_eq!(
            lookup("bitbucket.org/user/repo/pkg"),
            hit(
                "bitbucket.org/user/repo",
                Vcs::Git,
                url("https://bitbucket.org/user/repo")
            )
        );
        assert_eq!(
            lookup("bitbucket.org/user"),
            Err(StaticReject::BadShape {
                host_prefix: "bitbucket.org"
            })
        );
        assert_eq!(
            lookup("bitbucket.org/user/repo.git"),
            Err(StaticReject::VcsSuffix {
                host_prefix: "bitbucket.org"
            })
        );
    }

    #[test]
    fn jazz() {
        assert_eq!(
            lookup("hub.jazz.net/git/user1/pkgname/sub"),
            hit(
                "hub.jazz.net/git/user1/pkgname",
                Vcs::Git,
                url("https://hub.jazz.net/git/user1/pkgname")
            )
        );
        let bad = Err(StaticReject::BadShape {
            host_prefix: "hub.jazz.net/git",
        });
        for p in [
            "hub.jazz.net/git",
            "hub.jazz.net/git/user",
            "hub.jazz.net/git/User/pkg",
            "hub.jazz.net/git/us_er/pkg",
            "hub.jazz.net/git/user/pkg/",
        ] {
            assert_eq!(lookup(p), bad, "{p}");
        }
        assert_eq!(
            lookup("hub.jazz.net/git/user/pkg.git"),
            Err(StaticReject::VcsSuffix {
                host_prefix: "hub.jazz.net/git"
            })
        );
        // Other hub.jazz.net paths are not covered by the rule.
        assert_eq!(lookup("hub.jazz.net/other/x"), Ok(None));
    }

    #[test]
    fn apache() {
        assert_eq!(
            lookup("git.apache.org/package-name.git"),
            hit(
                "git.apache.org/package-name.git",
                Vcs::Git,
                url("https://git.apache.org/package-name.git")
            )
        );
        assert_eq!(
            lookup("git.apache.org/package_name.git/sub/Dir"),
            hit(
                "git.apache.org/package_name.git",
                Vcs::Git,
                url("https://git.apache.org/package_name.git")
            )
        );
        let bad = Err(StaticReject::BadShape {
            host_prefix: "git.apache.org",
        });
        for p in [
            "git.apache.org/package-name",
            "git.apache.org/.git",
            "git.apache.org/Pkg.git",
            "git.apache.org",
            "git.apache.org/p.git/",
        ] {
            assert_eq!(lookup(p), bad, "{p}");
        }
    }

    #[test]
    fn openstack() {
        assert_eq!(
            lookup("git.openstack.org/openstack/swift"),
            hit(
                "git.openstack.org/openstack/swift",
                Vcs::Git,
                url("https://git.openstack.org/openstack/swift")
            )
        );
        assert_eq!(
            lookup("git.openstack.org/openstack/swift.git/go/pkg"),
            hit(
                "git.openstack.org/openstack/swift.git",
                Vcs::Git,
                url("https://git.openstack.org/openstack/swift.git")
            )
        );
        assert_eq!(
            lookup("git.openstack.org/openstack"),
            Err(StaticReject::BadShape {
                host_prefix: "git.openstack.org"
            })
        );
    }

    #[test]
    fn chiselapp() {
        assert_eq!(
            lookup("chiselapp.com/user/kyle/repository/fossilgg"),
            hit(
                "chiselapp.com/user/kyle/repository/fossilgg",
                Vcs::Fossil,
                url("https://chiselapp.com/user/kyle/repository/fossilgg")
            )
        );
        let bad = Err(StaticReject::BadShape {
            host_prefix: "chiselapp.com",
        });
        for p in [
            "chiselapp.com/user/kyle/repository/fossilgg/sub",
            "chiselapp.com/user/ky_le/repository/x",
            "chiselapp.com/users/kyle/repository/x",
            "chiselapp.com/user/kyle/repo/x",
            "chiselapp.com",
        ] {
            assert_eq!(lookup(p), bad, "{p}");
        }
    }

    #[test]
    fn vcs_suffix_paths() {
        assert_eq!(
            lookup("example.com/repo.git"),
            hit("example.com/repo.git", Vcs::Git, bare("example.com/repo"))
        );
        assert_eq!(
            lookup("example.com/a/repo.hg/sub/pkg"),
            hit("example.com/a/repo.hg", Vcs::Hg, bare("example.com/a/repo"))
        );
        assert_eq!(
            lookup("example.com:8080/~user/r.svn"),
            hit(
                "example.com:8080/~user/r.svn",
                Vcs::Svn,
                bare("example.com:8080/~user/r")
            )
        );
        // The deepest suffixed element ends the root (as the go toolchain's
        // own pattern decides).
        assert_eq!(
            lookup("example.com/x.fossil/y.git"),
            hit(
                "example.com/x.fossil/y.git",
                Vcs::Git,
                bare("example.com/x.fossil/y")
            )
        );
        assert_eq!(
            lookup("example.com/a.hg/b/c.svn/d"),
            hit(
                "example.com/a.hg/b/c.svn",
                Vcs::Svn,
                bare("example.com/a.hg/b/c")
            )
        );
        assert_eq!(
            lookup("a.b/~x.git"),
            hit("a.b/~x.git", Vcs::Git, bare("a.b/~x"))
        );
        assert_eq!(
            lookup("-.-/x.git"),
            hit("-.-/x.git", Vcs::Git, bare("-.-/x"))
        );
        assert_eq!(lookup("a.b/x~.git"), Ok(None));
        // The element's final suffix decides the VCS.
        assert_eq!(
            lookup("example.com/x.git.hg/y"),
            hit("example.com/x.git.hg", Vcs::Hg, bare("example.com/x.git"))
        );
        // The match is unanchored: it can start after junk the host class rejects.
        assert_eq!(
            lookup("Example.com/repo.git"),
            hit("xample.com/repo.git", Vcs::Git, bare("xample.com/repo"))
        );
        assert_eq!(
            lookup("a.b/c+d/e.com/f.git"),
            hit("e.com/f.git", Vcs::Git, bare("e.com/f"))
        );
        for p in [
            "example.com/repo",
            "example.com/.git",
            "example.com/~.git",
            "example.com/repo.git/",
            "example.com/repo.git/a~b",
            "example.com:/repo.git",
            "example/repo.git",
            "ex.com.git",
            "example.com/repo.gitx",
            "golang.org/x/tools",
        ] {
            assert_eq!(lookup(p), Ok(None), "{p}");
        }
    }
}
