//! The existing tags nearest to one that does not exist: the neighbouring versions (the one
//! just below and the one just above, among tags shaped alike) and the closest spellings.

use std::cmp::Ordering;

/// At most this many suggestions.
const MAX_NEAREST: usize = 3;

/// A repository with this few tags gets all of them suggested when none is near.
const FEW_TAGS: usize = 3;

/// The tags nearest to `wanted`, best first.
pub fn nearest(wanted: &str, tags: &[String]) -> Vec<String> {
    let mut picked: Vec<String> = Vec::new();
    let push = |tag: &str, picked: &mut Vec<String>| {
        if tag != wanted && !picked.iter().any(|p| p == tag) && picked.len() < MAX_NEAREST {
            picked.push(tag.to_string());
        }
    };

    if let Some(wanted_version) = Version::parse(wanted) {
        let alike: Vec<(Version, &String)> = tags
            .iter()
            .filter_map(|t| Version::parse(t).map(|v| (v, t)))
            .filter(|(v, _)| v.shape == wanted_version.shape)
            .collect();
        let below = alike
            .iter()
            .filter(|(v, _)| v.cmp_numbers(&wanted_version) == Ordering::Less)
            .max_by(|(a, _), (b, _)| a.cmp_numbers(b));
        let above = alike
            .iter()
            .filter(|(v, _)| v.cmp_numbers(&wanted_version) == Ordering::Greater)
            .min_by(|(a, _), (b, _)| a.cmp_numbers(b));
        for (_, tag) in below.into_iter().chain(above) {
            push(tag, &mut picked);
        }
    }

    let limit = (wanted.chars().count() / 3).max(2);
    let mut spelled: Vec<(usize, &String)> = tags
        .iter()
        .map(|t| (strsim::damerau_levenshtein(wanted, t), t))
        .filter(|(d, _)| *d <= limit)
        .collect();
    spelled.sort();
    for (_, tag) in spelled {
        push(tag, &mut picked);
    }

    if picked.is_empty() && tags.len() <= FEW_TAGS {
        for tag in tags {
            push(tag, &mut picked);
        }
    }
    picked
}

/// A tag read as a version: its numbers, and its shape with the numbers taken out
/// (`v1.18.20` is `v#.#.#` with 1, 18, 20).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    shape: String,
    numbers: Vec<u64>,
}

impl Version {
    fn parse(tag: &str) -> Option<Version> {
        let mut shape = String::new();
        let mut numbers = Vec::new();
        let mut digits = String::new();
        for c in tag.chars().chain(std::iter::once('\0')) {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            if !digits.is_empty() {
                // Commit hashes and dates are not versions; 10 digits is past any version part.
                if digits.len() > 9 {
                    return None;
                }
                numbers.push(digits.parse().ok()?);
                shape.push('#');
                digits.clear();
            }
            if c != '\0' {
                shape.push(c);
            }
        }
        (!numbers.is_empty()).then_some(Version { shape, numbers })
    }

    fn cmp_numbers(&self, other: &Version) -> Ordering {
        self.numbers.cmp(&other.numbers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn neighbouring_versions_first() {
        let all = tags(&[
            "latest", "v1.18.18", "v1.18.19", "v1.19.0", "v1.19.1", "v1.20.0",
        ]);
        let near = nearest("v1.18.20", &all);
        assert_eq!(near[..2], ["v1.18.19", "v1.19.0"]);
        assert_eq!(near.len(), 3);
    }

    #[test]
    fn close_spellings() {
        let all = tags(&["stable", "latest", "1.0.0"]);
        assert_eq!(nearest("lastest", &all), ["latest"]);
        assert_eq!(nearest("stabel", &all), ["stable"]);
    }

    #[test]
    fn a_repository_with_few_tags_suggests_them_all() {
        assert_eq!(nearest("latest", &tags(&["15"])), ["15"]);
        assert_eq!(
            nearest("does-not-exist", &tags(&["4aaa724028c0"])),
            ["4aaa724028c0"]
        );
        let many = tags(&["a1", "b2", "c3", "d4"]);
        assert!(nearest("zzzzzzzz", &many).is_empty());
    }

    #[test]
    fn hashes_are_not_versions() {
        assert_eq!(
            Version::parse("4aaa724028c0").map(|v| v.numbers.len()),
            Some(3)
        );
        assert_eq!(Version::parse("20240101123456"), None);
        assert_eq!(
            Version::parse("v1.2.3-rc1"),
            Some(Version {
                shape: "v#.#.#-rc#".into(),
                numbers: vec![1, 2, 3, 1]
            })
        );
    }
}
