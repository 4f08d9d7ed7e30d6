//! What a Dockerfile's text says before it is built: the frontend it asks for and whether it
//! needs a frontend that reads heredocs. Pure; a leaf of `docker`.

/// The `# syntax=` frontend image a Dockerfile asks for, if any (only before the first
/// instruction, as BuildKit reads it).
pub fn frontend_image(dockerfile: &str) -> Option<String> {
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        // Parser directives (`# key=value`) end at the first other line.
        let (key, value) = line.strip_prefix('#')?.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("syntax") {
            let value = value.trim();
            return (!value.is_empty()).then(|| value.to_string());
        }
    }
    None
}

/// Whether a Dockerfile has a heredoc: `<<WORD` or `<<-WORD` (quoted or not) in an
/// instruction line.
pub fn uses_heredoc(dockerfile: &str) -> bool {
    dockerfile.lines().any(|line| {
        let line = line.trim_start();
        !line.starts_with('#')
            && line.match_indices("<<").any(|(at, _)| {
                let rest = line[at + 2..].trim_start_matches('-');
                let rest = rest.trim_start_matches(['"', '\'']);
                rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_lines_name_the_frontend() {
        assert_eq!(
            frontend_image("# syntax=docker/dockerfile:1.7\nFROM x\n").as_deref(),
            Some("docker/dockerfile:1.7")
        );
        assert_eq!(
            frontend_image("\n# escape=`\n#syntax = example/front:1\nFROM x").as_deref(),
            Some("example/front:1")
        );
        assert_eq!(
            frontend_image("# a comment\n# syntax=too/late:1\nFROM x"),
            None
        );
        assert_eq!(frontend_image("FROM x\n# syntax=late/ignored:1\n"), None);
        assert_eq!(frontend_image("# just a comment\nFROM x\n"), None);
    }

    #[test]
    fn heredocs_are_recognised() {
        assert!(uses_heredoc("FROM x\nRUN <<EOT\necho hi\nEOT\n"));
        assert!(uses_heredoc("FROM x\nCOPY <<-\"EOF\" /a\nhi\nEOF\n"));
        assert!(!uses_heredoc("FROM x\nRUN echo $((1 << 2))\n"));
        assert!(!uses_heredoc("FROM x\n# RUN <<EOT\n"));
    }
}
