//! `kindlab completion SHELL` and `kindlab man`: shell completions and man pages generated
//! from the same clap definition as the command line, so they cannot drift from it.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use serde::Serialize;

use crate::cli::Cli;
use crate::error::{Error, Result};
use crate::ui::{self, Report};

/// The completion script for `shell`, as the shell sources it.
pub fn completion(shell: clap_complete::Shell) -> Vec<u8> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "kindlab", &mut script);
    script
}

/// kindlab.1: the top-level page (roff).
pub fn man_page() -> Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|source| Error::Output {
            path: "stdout".into(),
            source,
        })?;
    Ok(page)
}

/// The pages `kindlab man --dir` wrote.
#[derive(Debug, Serialize)]
pub struct ManPages {
    pub dir: PathBuf,
    pub pages: Vec<String>,
}

/// Writes kindlab.1 and one kindlab-VERB.1 (and kindlab-VERB-SUB.1) per command into `dir`.
pub fn write_man_pages(dir: &Path) -> Result<ManPages> {
    let write_error = |source| Error::Output {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let mut command = Cli::command();
    // Subcommands' pages are named after their parents (`kindlab-lab-start.1`), as
    // clap_mangen's generator names them.
    command.build();
    clap_mangen::generate_to(command, dir).map_err(write_error)?;
    let mut pages: Vec<String> = std::fs::read_dir(dir)
        .map_err(write_error)?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.starts_with("kindlab") && name.ends_with(".1"))
        .collect();
    pages.sort();
    Ok(ManPages {
        dir: dir.to_path_buf(),
        pages,
    })
}

impl Report for ManPages {
    fn text(&self) -> String {
        ui::lines([format!(
            "wrote {} man page(s) into {}; `man kindlab` reads them when that directory is on MANPATH",
            self.pages.len(),
            self.dir.display()
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_completes_in_bash() {
        let script = String::from_utf8(completion(clap_complete::Shell::Bash)).unwrap();
        for verb in ["up", "down", "lab", "workshop", "diagnose", "completion"] {
            assert!(script.contains(verb), "{verb} missing from the bash script");
        }
        assert!(
            script.contains("complete -F"),
            "not a bash completion script"
        );
    }

    #[test]
    fn the_man_page_names_the_program_and_its_verbs() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        assert!(page.starts_with(".ie"), "not roff: {}", &page[..40]);
        assert!(page.contains(".TH kindlab 1"), "no title header");
        assert!(page.contains("kindlab\\-workshop"), "workshop not listed");
    }

    #[test]
    fn a_page_per_command_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(dir.path()).unwrap();
        assert!(written.pages.contains(&"kindlab.1".to_string()));
        assert!(
            written.pages.contains(&"kindlab-lab-start.1".to_string()),
            "{:?}",
            written.pages
        );
    }
}
