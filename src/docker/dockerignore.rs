//! `.dockerignore` read and applied exactly as Docker reads it, so the build context kindlab
//! sends (and hashes into the content tag) is the one `docker build` would send.
//!
//! Docker's rules (the moby `patternmatcher` and `ignorefile` packages, and the context walk of
//! its archive package), written down here from their documented behaviour and test cases:
//! - each line is trimmed, `#` lines and empty lines are skipped, `!` makes an exception;
//!   the pattern is cleaned like a path (`./a/../b/` -> `b`) and a leading `/` is dropped;
//! - the **last** pattern that matches the path, or any of its parent directories, decides;
//! - `*` and `?` never cross a `/`, `**` crosses any number of directories (zero included),
//!   `[...]` is a character class, `\` escapes the next character;
//! - the context walk does not enter an excluded directory unless an exception pattern
//!   starts with that directory's path, so `!**/keep.txt` cannot bring a file back out of an
//!   excluded `dir` but `!dir/keep.txt` can;
//! - the Dockerfile and `.dockerignore` are always sent (the CLI appends exceptions for them).
//!
//! No crate reads these rules as Docker does (the gitignore matchers anchor, order and
//! re-include differently), hence this module and its table test.

use std::path::{Path, PathBuf};

use regex::Regex;

/// A `.dockerignore` line that is not a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

/// How one pattern matches, as Docker decides it from the pattern's shape.
#[derive(Debug, Clone)]
enum Matcher {
    /// No wildcard: the path equals the pattern.
    Exact,
    /// `dir/**` (no other wildcard): the path starts with what precedes the `**`.
    Prefix(String),
    /// `**/name` or `**name` (no other wildcard): the path ends with what follows the `**`.
    Suffix(String),
    Regex(Regex),
}

#[derive(Debug, Clone)]
struct Pattern {
    exception: bool,
    cleaned: String,
    matcher: Matcher,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.cleaned,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    // `**/foo` matches `foo` itself.
                    || suffix.strip_prefix('/') == Some(path)
            }
            Matcher::Regex(re) => re.is_match(path),
        }
    }
}

/// The patterns of one `.dockerignore`, in file order.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// Which patterns matched a directory (itself or through its parents): a child inherits them.
#[derive(Debug, Clone, Default)]
pub struct ParentMatches(Vec<bool>);

impl DockerIgnore {
    /// The patterns of a `.dockerignore` file's text.
    pub fn parse(text: &str) -> Result<DockerIgnore, PatternError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = Vec::new();
        for line in text.lines() {
            // Comments are recognised before trimming, as Docker does.
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let mut pattern = if pattern.is_empty() {
                String::new()
            } else {
                clean(pattern)
            };
            if pattern.len() > 1 && pattern.starts_with('/') {
                pattern.remove(0);
            }
            lines.push(if exception {
                format!("!{pattern}")
            } else {
                pattern
            });
        }
        DockerIgnore::from_patterns(&lines)
    }

    /// Patterns as Docker's matcher takes them (`!` for an exception).
    pub fn from_patterns<S: AsRef<str>>(lines: &[S]) -> Result<DockerIgnore, PatternError> {
        let mut patterns = Vec::new();
        for line in lines {
            let line = line.as_ref().trim();
            if line.is_empty() {
                continue;
            }
            let cleaned = clean(line);
            let (exception, cleaned) = match cleaned.strip_prefix('!') {
                Some("") => {
                    return Err(PatternError {
                        pattern: line.to_string(),
                        reason: "a lone \"!\" excepts nothing".into(),
                    });
                }
                Some(rest) => (true, rest.to_string()),
                None => (false, cleaned),
            };
            let matcher = compile(&cleaned).map_err(|reason| PatternError {
                pattern: line.to_string(),
                reason,
            })?;
            patterns.push(Pattern {
                exception,
                cleaned,
                matcher,
            });
        }
        Ok(DockerIgnore { patterns })
    }

    fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Docker's "matches or parent matches": is `path` (slash-separated, relative to the
    /// context) excluded, judging the path and each of its parent directories.
    pub fn excludes(&self, path: &str) -> bool {
        let parents: Vec<&str> = match path.rsplit_once('/') {
            Some((parent, _)) if !parent.is_empty() => parent.split('/').collect(),
            _ => Vec::new(),
        };
        let mut excluded = false;
        for pattern in &self.patterns {
            // An exclusion cannot change an excluded path, nor an exception a kept one.
            if pattern.exception != excluded {
                continue;
            }
            let matched = pattern.matches(path)
                || (1..=parents.len()).any(|n| pattern.matches(&parents[..n].join("/")));
            if matched {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// The same judgement during a walk, reusing what the parent directory matched (Docker's
    /// context walk does this; for a path it differs from [`excludes`](Self::excludes) only
    /// in which patterns are looked at once the path is already excluded).
    pub fn excludes_in(&self, path: &str, parent: &ParentMatches) -> (bool, ParentMatches) {
        let mut excluded = false;
        let mut matches = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut matched = parent.0.get(i).copied().unwrap_or(false);
            if !matched {
                if pattern.exception != excluded {
                    continue;
                }
                matched = pattern.matches(path);
            }
            matches[i] = matched;
            if matched {
                excluded = !pattern.exception;
            }
        }
        (excluded, ParentMatches(matches))
    }

    /// Whether the walk must still enter the excluded directory `dir`: only when an exception
    /// pattern starts with its path (Docker's archive walk skips it otherwise).
    fn enters_excluded_dir(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| format!("{}/", p.cleaned).starts_with(&dir_slash))
    }
}

/// One path of the build context as `docker build` sends it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContextEntry {
    /// Relative to the context, `/`-separated.
    pub path: String,
    pub is_dir: bool,
}

/// Reads `<context>/.dockerignore` (none: nothing excluded).
pub fn load(context: &Path) -> Result<DockerIgnore, PatternError> {
    match std::fs::read_to_string(context.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text),
        Err(_) => Ok(DockerIgnore::default()),
    }
}

/// The paths `docker build` sends for `context` with `dockerfile` (relative to it), in the
/// walk's order: the Dockerfile and `.dockerignore` always, everything else as the
/// `.dockerignore` says. Directories are entries too (an empty one is part of the context).
pub fn context_entries(
    context: &Path,
    ignore: &DockerIgnore,
    dockerfile: &str,
) -> std::io::Result<Vec<ContextEntry>> {
    // The CLI keeps the build's own files by appending exceptions for them when excluded.
    let mut effective = ignore.clone();
    for own in [".dockerignore".to_string(), clean(dockerfile)] {
        if effective.excludes(&own) {
            effective.patterns.push(Pattern {
                exception: true,
                cleaned: own,
                matcher: Matcher::Exact,
            });
        }
    }
    let mut out = Vec::new();
    walk(&effective, context, "", &ParentMatches::default(), &mut out)?;
    Ok(out)
}

fn walk(
    ignore: &DockerIgnore,
    dir: &Path,
    rel: &str,
    parent: &ParentMatches,
    out: &mut Vec<ContextEntry>,
) -> std::io::Result<()> {
    let mut children: Vec<(String, PathBuf, bool)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type()?.is_dir();
        children.push((name, entry.path(), is_dir));
    }
    // Docker walks in lexical order of names.
    children.sort();
    for (name, path, is_dir) in children {
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let (excluded, matches) = ignore.excludes_in(&rel, parent);
        if excluded {
            // An excluded directory is entered (without its own entry) only for an
            // exception below it.
            if is_dir && ignore.has_exceptions() && ignore.enters_excluded_dir(&rel) {
                walk(ignore, &path, &rel, &matches, out)?;
            }
            continue;
        }
        out.push(ContextEntry {
            path: rel.clone(),
            is_dir,
        });
        if is_dir {
            walk(ignore, &path, &rel, &matches, out)?;
        }
    }
    Ok(())
}

/// Go's `path.Clean`: one `/` between elements, no `.`, `..` resolved lexically, no trailing
/// `/`; the empty path is `.`.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Regex metacharacters that are literal in a pattern.
fn is_literal_special(c: char) -> bool {
    ".+()|{}$".contains(c)
}

/// Turns a cleaned pattern into its matcher, deciding the kind from its wildcards as Docker
/// does (so `dir/**` is a prefix test and `**/name` a suffix test).
fn compile(pattern: &str) -> Result<Matcher, String> {
    check_syntax(pattern)?;
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut kind = Kind::Exact;
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    let mut index = 0;
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                // `**/` is `**`: the slash is eaten.
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if index == 0 {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = Kind::Regex;
            }
            '\\' => match chars.next() {
                Some(next) => {
                    re.push('\\');
                    re.push(next);
                    kind = Kind::Regex;
                }
                None => re.push_str("\\\\"),
            },
            '[' | ']' => {
                re.push(c);
                kind = Kind::Regex;
            }
            c if is_literal_special(c) => {
                re.push('\\');
                re.push(c);
            }
            c => re.push(c),
        }
        index += 1;
    }
    Ok(match kind {
        Kind::Exact => Matcher::Exact,
        Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_string()),
        Kind::Suffix => Matcher::Suffix(pattern[2..].to_string()),
        Kind::Regex => {
            re.push('$');
            Matcher::Regex(Regex::new(&re).map_err(|e| e.to_string())?)
        }
    })
}

/// The syntax errors Go's `filepath.Match` reports for a pattern: an unclosed or empty
/// character class, and a trailing `\`.
fn check_syntax(pattern: &str) -> Result<(), String> {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            // The escaped character is consumed by the guard.
            '\\' if chars.next().is_none() => {
                return Err("ends with an escaping \\".into());
            }
            '[' => {
                let mut first = true;
                loop {
                    match chars.next() {
                        None => return Err("has a [ without its ]".into()),
                        Some(']') if !first => break,
                        Some(']') => return Err("has an empty character class []".into()),
                        Some('^') if first => continue,
                        Some('\\') if chars.next().is_none() => {
                            return Err("ends with an escaping \\".into());
                        }
                        Some(_) => {}
                    }
                    first = false;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, path: &str) -> bool {
        DockerIgnore::from_patterns(&[pattern])
            .unwrap()
            .excludes(path)
    }

    /// Docker's own single-pattern cases (moby/patternmatcher's table: pattern, path,
    /// whether it matches), each checked both ways Docker evaluates a path.
    #[test]
    fn dockers_pattern_table() {
        let table: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "/", true),
            ("**/", "/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\*b", "a*b", true),
        ];
        let mut wrong = Vec::new();
        for (pattern, path, want) in table {
            if matches(pattern, path) != *want {
                wrong.push(format!("{pattern:?} on {path:?}: want {want}"));
            }
            // The walk's way: each parent judged first, its matches handed down.
            let ignore = DockerIgnore::from_patterns(&[*pattern]).unwrap();
            let mut parent = ParentMatches::default();
            if let Some((dirs, _)) = path.rsplit_once('/').filter(|(d, _)| !d.is_empty()) {
                let parts: Vec<&str> = dirs.split('/').collect();
                for n in 1..=parts.len() {
                    parent = ignore.excludes_in(&parts[..n].join("/"), &parent).1;
                }
            }
            if ignore.excludes_in(path, &parent).0 != *want {
                wrong.push(format!("{pattern:?} on {path:?} (walk): want {want}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// Docker's multi-pattern cases and the order rules: the last matching pattern wins,
    /// judged on the path and every parent.
    #[test]
    fn the_last_matching_pattern_wins() {
        let table: &[(&[&str], &str, bool)] = &[
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"],
                "util/docker/web/foo",
                true,
            ),
            (&["**", "!dist/*.whl"], "dist/proxy.py-2.4.0-py3.whl", false),
            (&["*.go", "!fileutils.go"], "fileutils.go", false),
            (&["!fileutils.go", "*.go"], "fileutils.go", true),
            (&["docs", "!docs/README.md"], "docs/README.md", false),
            (&["docs/", "!docs/README.md"], "docs/README.md", false),
            (&["docs/*", "!docs/README.md"], "docs/README.md", false),
            (&["docs", "!docs/README.md"], "docs/other.md", true),
            (&["docs/**", "!docs/README.md"], "docs/a/b.md", true),
            // issue 19's case: the later `dir` excludes what the earlier exception kept.
            (&["!dir/keep.txt", "dir"], "dir/keep.txt", true),
            (&["dir", "!dir/keep.txt"], "dir/keep.txt", false),
            (&["dir", "!dir/keep.txt"], "dir/other.txt", true),
        ];
        for (patterns, path, want) in table {
            let ignore = DockerIgnore::from_patterns(patterns).unwrap();
            assert_eq!(ignore.excludes(path), *want, "{patterns:?} on {path:?}");
        }
    }

    #[test]
    fn lines_are_read_as_docker_reads_them() {
        let ignore = DockerIgnore::parse(
            "\u{feff}# comment\n  \n /abs/file \n./dot/../dotted/\n! spaced\n  # not a comment\n",
        )
        .unwrap();
        let shown: Vec<String> = ignore
            .patterns
            .iter()
            .map(|p| format!("{}{}", if p.exception { "!" } else { "" }, p.cleaned))
            .collect();
        assert_eq!(shown, ["abs/file", "dotted", "!spaced", "# not a comment"]);
        assert!(ignore.excludes("abs/file/inner"));
        assert!(ignore.excludes("dotted"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["[", "a[", "a[]b", "!", "x\\"] {
            assert!(
                DockerIgnore::from_patterns(&[bad]).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(DockerIgnore::parse("!\n").is_err());
    }

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let path = dir.path().join(f);
            if let Some(stripped) = f.strip_suffix('/') {
                std::fs::create_dir_all(dir.path().join(stripped)).unwrap();
                continue;
            }
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, f).unwrap();
        }
        dir
    }

    fn sent(dir: &Path, ignore: &str) -> Vec<String> {
        std::fs::write(dir.join(".dockerignore"), ignore).unwrap();
        let ignore = load(dir).unwrap();
        context_entries(dir, &ignore, "Dockerfile")
            .unwrap()
            .into_iter()
            .map(|e| format!("{}{}", e.path, if e.is_dir { "/" } else { "" }))
            .collect()
    }

    #[test]
    fn the_context_is_what_docker_sends() {
        let dir = tree(&[
            "Dockerfile",
            "dir/keep.txt",
            "dir/other.txt",
            "dir/sub/deep.txt",
            "empty/",
            "src/main.go",
            "src/main_test.go",
        ]);
        let p = dir.path();
        // The last pattern wins: `dir` after the exception takes keep.txt out again.
        assert_eq!(
            sent(p, "!dir/keep.txt\ndir\n"),
            [
                ".dockerignore",
                "Dockerfile",
                "empty/",
                "src/",
                "src/main.go",
                "src/main_test.go"
            ]
        );
        // An exception naming a path under the excluded directory brings that file back,
        // without the directory's own entry.
        assert_eq!(
            sent(p, "dir\n!dir/keep.txt\n**/*_test.go\n"),
            [
                ".dockerignore",
                "Dockerfile",
                "dir/keep.txt",
                "empty/",
                "src/",
                "src/main.go"
            ]
        );
        // An exception that does not start with the directory's path cannot enter it.
        assert_eq!(
            sent(p, "dir\n!**/keep.txt\nsrc\nempty\n"),
            [".dockerignore", "Dockerfile"]
        );
        // The Dockerfile and .dockerignore are sent even when excluded.
        assert_eq!(sent(p, "*\n"), [".dockerignore", "Dockerfile"]);
    }
}
