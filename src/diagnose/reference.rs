//! Image references as the distribution grammar defines them, checked character by character
//! so a finding can point at what is wrong: upper case in a repository path, a stray space or
//! an invisible character, a pasted `https://`, an unexpanded `${VAR}`, two references glued
//! together. A parser would only say "invalid reference format".

use serde::{Deserialize, Serialize};

/// One thing wrong with a reference, at a character position (0-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefProblem {
    pub at: usize,
    /// How many characters from `at`.
    pub len: usize,
    /// The offending characters; invisible ones are spelled `U+200B`.
    pub text: String,
    pub what: String,
}

/// Everything wrong with `image`; empty when it is a valid reference.
pub fn check(image: &str) -> Vec<RefProblem> {
    let chars: Vec<char> = image.chars().collect();
    let mut problems = Vec::new();
    if chars.is_empty() {
        problems.push(problem(0, "", "the reference is empty"));
        return problems;
    }

    // Characters no reference may contain, wherever they are.
    let mut i = 0;
    while i < chars.len() {
        if is_foreign(chars[i]) {
            let start = i;
            while i < chars.len() && is_foreign(chars[i]) {
                i += 1;
            }
            let text: Vec<String> = chars[start..i].iter().map(|c| visible(*c)).collect();
            let len = i - start;
            let what = if chars[start..i].iter().all(|c| c.is_whitespace()) {
                "whitespace"
            } else if chars[start..i].iter().all(|c| is_invisible(*c)) {
                "an invisible character"
            } else {
                "a character outside the reference alphabet (a look-alike pasted from a document?)"
            };
            problems.push(RefProblem {
                at: start,
                len,
                text: text.join(""),
                what: what.to_string(),
            });
        } else {
            i += 1;
        }
    }

    let text: String = chars.iter().collect();
    for scheme in ["https://", "http://"] {
        if text.to_ascii_lowercase().starts_with(scheme) {
            problems.push(problem(
                0,
                &text[..scheme.len()],
                "a URL scheme; references name the registry without one",
            ));
        }
    }
    for marker in ["${", "{{", "$(", "<", "%"] {
        if let Some(byte) = text.find(marker) {
            problems.push(problem(
                char_index(&text, byte),
                marker,
                "an unexpanded template or variable",
            ));
            break;
        }
    }
    if !problems.is_empty() {
        // The grammar checks below would only repeat these in vaguer words.
        return problems;
    }

    grammar_problems(&text, &mut problems);
    problems
}

/// The reference with the problems `check` can repair repaired, if that makes it valid:
/// invisible characters and spaces dropped, a URL scheme dropped, the path in lower case.
pub fn suggest(image: &str) -> Option<String> {
    let mut fixed: String = image.chars().filter(|c| !is_foreign(*c)).collect();
    for scheme in ["https://", "http://"] {
        if fixed.to_ascii_lowercase().starts_with(scheme) {
            fixed = fixed[scheme.len()..].to_string();
        }
    }
    let (name, suffix) = split_suffix(&fixed);
    let (domain, path) = split_domain(name);
    let lowered = match domain {
        Some(d) => format!("{d}/{}", path.to_lowercase()),
        None => path.to_lowercase(),
    };
    let fixed = format!("{lowered}{suffix}");
    (fixed != image && check(&fixed).is_empty()).then_some(fixed)
}

/// A reference taken apart as written (no defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    /// Everything before the tag or digest: `localhost:5001/orders-api`.
    pub name: String,
    /// The registry host when the reference names one.
    pub registry: Option<String>,
    /// The repository path within the registry: `orders-api`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Parts {
    /// The tag, or `latest` as runtimes assume when there is neither tag nor digest.
    pub fn tag_or_latest(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }
}

pub fn parts(image: &str) -> Parts {
    let (name, suffix) = split_suffix(image);
    let (registry, path) = split_domain(name);
    let (tag, digest) = match suffix.split_once('@') {
        Some((tag, digest)) => (tag, Some(digest.to_string())),
        None => (suffix, None),
    };
    Parts {
        name: name.to_string(),
        registry: registry.map(str::to_string),
        path: path.to_string(),
        tag: tag.strip_prefix(':').map(str::to_string),
        digest,
    }
}

/// The reference with a caret line under each problem, for text output.
pub fn pointer(image: &str, problems: &[RefProblem]) -> String {
    let shown: String = image.chars().map(visible_narrow).collect();
    let mut marks = vec![' '; image.chars().count().max(1)];
    for p in problems {
        for m in marks.iter_mut().skip(p.at).take(p.len.max(1)) {
            *m = '^';
        }
    }
    let marks: String = marks.into_iter().collect();
    format!("{shown}\n{}", marks.trim_end())
}

fn problem(at: usize, text: &str, what: &str) -> RefProblem {
    RefProblem {
        at,
        len: text.chars().count(),
        text: text.to_string(),
        what: what.to_string(),
    }
}

fn char_index(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' | '\u{202A}'..='\u{202E}'
    ) || c.is_control()
}

/// Not allowed anywhere in a reference.
fn is_foreign(c: char) -> bool {
    c.is_whitespace() || is_invisible(c) || !c.is_ascii()
}

fn visible(c: char) -> String {
    if c == ' ' {
        "' '".to_string()
    } else if is_foreign(c) {
        format!("U+{:04X}", c as u32)
    } else {
        c.to_string()
    }
}

/// One column per character, so the caret line stays aligned.
fn visible_narrow(c: char) -> char {
    if c.is_whitespace() {
        '␠'
    } else if is_invisible(c) {
        '◌'
    } else {
        c
    }
}

/// `name` and what follows it (`:tag`, `@digest`, both or neither).
fn split_suffix(text: &str) -> (&str, &str) {
    let (before_digest, _) = text.split_once('@').unwrap_or((text, ""));
    let last_slash = before_digest.rfind('/').map_or(0, |i| i + 1);
    let end = match before_digest[last_slash..].find(':') {
        Some(colon) => last_slash + colon,
        None => before_digest.len(),
    };
    (&text[..end], &text[end..])
}

/// The registry host, if the first component names one (the distribution rule: it has a dot
/// or a port, is `localhost`, or has upper case, which hostnames may but paths may not).
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn grammar_problems(text: &str, problems: &mut Vec<RefProblem>) {
    let (name, suffix) = split_suffix(text);
    let (domain, path) = split_domain(name);
    let path_start = domain.map_or(0, |d| d.chars().count() + 1);

    if let Some(domain) = domain {
        // `[::1]:5000`: the host is bracketed, the port follows the bracket.
        let (host, port) = match domain.find(']') {
            Some(end) => (&domain[..=end], domain[end + 1..].strip_prefix(':')),
            None => match domain.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (domain, None),
            },
        };
        if let Some((i, c)) = host
            .char_indices()
            .filter(|_| !host.starts_with('['))
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']')))
        {
            problems.push(problem(
                char_index(domain, i),
                &c.to_string(),
                "not allowed in a registry host name",
            ));
        }
        if let Some(port) = port
            && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
        {
            problems.push(problem(
                host.chars().count(),
                &format!(":{port}"),
                "the registry port must be a number",
            ));
        }
    }

    let mut offset = path_start;
    let components: Vec<&str> = path.split('/').collect();
    for (k, component) in components.iter().enumerate() {
        if component.is_empty() {
            // Point at the '/' that makes it empty: the one after it, or, for the last
            // component, the one before it (`app/`, `localhost:5001/`).
            if k + 1 < components.len() {
                problems.push(problem(offset, "/", EMPTY_COMPONENT));
            } else if offset > 0 {
                problems.push(problem(offset - 1, "/", EMPTY_COMPONENT));
            } else {
                problems.push(problem(0, "", "the reference names no repository"));
            }
        } else {
            component_problems(component, offset, problems);
        }
        offset += component.chars().count() + 1;
    }
    if name.len() > 255 {
        problems.push(problem(
            0,
            "",
            "the repository name is longer than 255 characters",
        ));
    }

    let suffix_start = name.chars().count();
    let (tag, digest) = match suffix.split_once('@') {
        Some((tag, digest)) => (tag, Some(digest)),
        None => (suffix, None),
    };
    if let Some(tag) = tag.strip_prefix(':') {
        let valid = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            let bad = tag
                .char_indices()
                .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')));
            match bad {
                Some((i, c)) => problems.push(problem(
                    suffix_start + 1 + i,
                    &c.to_string(),
                    if c == ':' {
                        "a second ':' (two tags, or two references pasted together?)"
                    } else {
                        "not allowed in a tag"
                    },
                )),
                None => problems.push(problem(
                    suffix_start,
                    &format!(":{tag}"),
                    "a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
                )),
            }
        }
    }
    if let Some(digest) = digest {
        let valid = digest.split_once(':').is_some_and(|(algorithm, hex)| {
            !algorithm.is_empty()
                && algorithm
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c))
                && hex.len() >= 32
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !valid {
            problems.push(problem(
                suffix_start + tag.chars().count(),
                &format!("@{digest}"),
                "a digest is ALGORITHM:HEX, e.g. sha256: and 64 hex digits",
            ));
        }
    }
}

const EMPTY_COMPONENT: &str = "an empty path component (a leading, trailing or doubled '/')";

/// One path component, not empty: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn component_problems(component: &str, offset: usize, problems: &mut Vec<RefProblem>) {
    let chars: Vec<char> = component.chars().collect();
    // Runs of upper case, reported once each.
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_uppercase() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_uppercase() {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            problems.push(problem(
                offset + start,
                &text,
                "upper case; repository names must be lower case",
            ));
        } else {
            i += 1;
        }
    }
    if let Some((i, c)) = chars.iter().enumerate().find(|(_, c)| {
        !(c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || c.is_ascii_uppercase()
            || matches!(c, '.' | '_' | '-'))
    }) {
        problems.push(problem(
            offset + i,
            &c.to_string(),
            if *c == ':' {
                "a ':' inside the repository path (two references pasted together?)"
            } else {
                "not allowed in a repository name"
            },
        ));
        return;
    }
    let separator = |c: char| matches!(c, '.' | '_' | '-');
    if chars.first().copied().is_some_and(separator) || chars.last().copied().is_some_and(separator)
    {
        let at = if chars.first().copied().is_some_and(separator) {
            0
        } else {
            chars.len() - 1
        };
        problems.push(problem(
            offset + at,
            &chars[at].to_string(),
            "a path component must start and end with a letter or digit",
        ));
        return;
    }
    // Separators: '.', '_', '__' or any run of '-'; never two different ones in a row.
    let mut j = 0;
    while j < chars.len() {
        if separator(chars[j]) {
            let start = j;
            while j < chars.len() && separator(chars[j]) {
                j += 1;
            }
            let run: String = chars[start..j].iter().collect();
            let ok = run == "." || run == "_" || run == "__" || run.chars().all(|c| c == '-');
            if !ok {
                problems.push(problem(
                    offset + start,
                    &run,
                    "separators are '.', '_', '__' or dashes, one kind at a time",
                ));
            }
        } else {
            j += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whats(image: &str) -> Vec<(usize, String)> {
        check(image).into_iter().map(|p| (p.at, p.text)).collect()
    }

    #[test]
    fn valid_references_have_no_problems() {
        for image in [
            "busybox",
            "busybox:1.36",
            "localhost:5001/orders-api:4aaa724028c0",
            "registry.example:5000/team/app__x/a-b--c.d_e:v1.2-rc_3",
            "Registry.Example/app:1",
            "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "app:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "[::1]:5000/app:1",
        ] {
            assert_eq!(check(image), vec![], "{image}");
        }
    }

    #[test]
    fn upper_case_in_the_path_is_pointed_at() {
        let image = "registry.internal.renku.ch/GaRaLi/renku-challenge:e75f5d6";
        assert_eq!(
            whats(image),
            vec![(27, "G".into()), (29, "R".into()), (31, "L".into())]
        );
        assert_eq!(
            suggest(image).as_deref(),
            Some("registry.internal.renku.ch/garali/renku-challenge:e75f5d6")
        );
        assert_eq!(
            pointer(image, &check(image)).lines().nth(1),
            Some("                           ^ ^ ^")
        );
    }

    #[test]
    fn a_first_component_in_upper_case_is_a_host_but_the_rest_is_not() {
        assert_eq!(whats("Orders/API:1"), vec![(7, "API".into())]);
        assert_eq!(whats("None:None"), vec![(0, "N".into())]);
    }

    #[test]
    fn invisible_and_stray_characters() {
        assert_eq!(
            whats(" mesoscloud/zookeeper:latest"),
            vec![(0, "' '".into())]
        );
        let zwsp = "localhost:5001/orders\u{200B}-api:1";
        assert_eq!(whats(zwsp), vec![(21, "U+200B".into())]);
        assert_eq!(
            suggest(zwsp).as_deref(),
            Some("localhost:5001/orders-api:1")
        );
        // A Cyrillic 'о' that looks like an 'o'.
        let lookalike = "busyb\u{043E}x:1.36";
        assert_eq!(check(lookalike)[0].text, "U+043E");
        assert!(check(lookalike)[0].what.contains("look-alike"));
    }

    #[test]
    fn schemes_templates_and_pasted_references() {
        let url = "https://harbor.k8s.mybank/release/name:1.1.0";
        assert_eq!(whats(url), vec![(0, "https://".into())]);
        assert_eq!(
            suggest(url).as_deref(),
            Some("harbor.k8s.mybank/release/name:1.1.0")
        );
        assert_eq!(whats("${PHP_FPM_IMAGE}"), vec![(0, "${".into())]);
        assert_eq!(suggest("${PHP_FPM_IMAGE}"), None);
        let glued = "gcr.io/p/dark-gcp:gcr.io/p/dark-gcp:8e3213495373";
        let problems = check(glued);
        assert_eq!(problems[0].text, ":");
        assert!(problems[0].what.contains("pasted"), "{problems:?}");
        assert_eq!(whats("/cloudfoundry/app:1")[0], (0, "/".into()));
    }

    /// Found by fuzzing (fuzz/fuzz_targets/image_reference.rs): a trailing '/' was reported
    /// one character past the end of the reference, so the caret line marked nothing.
    #[test]
    fn an_empty_last_component_points_at_its_slash() {
        for (image, at) in [
            ("orders-api/", 10),
            ("localhost:5001/", 14),
            ("team/app/", 8),
            ("a//b", 2),
            ("/a", 0),
        ] {
            assert_eq!(whats(image), vec![(at, "/".into())], "{image}");
            let marks = pointer(image, &check(image));
            assert_eq!(
                marks.lines().nth(1),
                Some(format!("{}^", " ".repeat(at)).as_str()),
                "{image}"
            );
        }
        assert_eq!(whats(":1.36"), vec![(0, String::new())]);
        assert_eq!(check(":1.36")[0].what, "the reference names no repository");
    }

    #[test]
    fn parts_as_written() {
        let p = parts("localhost:5001/team/app:v1");
        assert_eq!(p.registry.as_deref(), Some("localhost:5001"));
        assert_eq!(p.path, "team/app");
        assert_eq!(p.name, "localhost:5001/team/app");
        assert_eq!(p.tag.as_deref(), Some("v1"));
        let p = parts("busybox");
        assert_eq!(
            (p.registry.as_deref(), p.tag_or_latest()),
            (None, Some("latest"))
        );
        let p = parts("app@sha256:abc");
        assert_eq!(
            (p.tag_or_latest(), p.digest.as_deref()),
            (None, Some("sha256:abc"))
        );
    }

    #[test]
    fn tags_and_digests() {
        assert_eq!(whats("app:.hidden")[0].0, 3);
        assert_eq!(whats("app:v1!")[0], (6, "!".into()));
        assert_eq!(whats("app@sha256:xyz")[0].0, 3);
        assert!(
            check(&format!("app:{}", "a".repeat(129)))[0]
                .what
                .contains("128")
        );
    }
}
