//! The README's promises that can drift: its flag table and its commands.

use std::process::Command;

const README: &str = include_str!("../README.md");

#[test]
fn every_flag_in_help_is_documented_in_the_readme() {
    let help = Command::new(env!("CARGO_BIN_EXE_ferrocorn"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let flags: Vec<&str> = help
        .split_whitespace()
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| word.trim_end_matches([',', ':', ';', '.', ')']))
        .filter(|flag| *flag != "--help" && *flag != "--version")
        // A flag, not a pattern the help text speaks of (`--allow-*`).
        .filter(|flag| {
            flag[2..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        .collect();
    assert!(flags.len() > 10, "flags found in --help: {flags:?}");
    let table = flag_table();
    assert!(table.len() > 10, "flags found in the table: {table:?}");
    for flag in flags {
        assert!(
            table.contains(&flag),
            "README's flag table lacks a row for {flag}"
        );
    }
}

/// The flags named in the first cell of each row of README's "### Flags"
/// table (`` | `-c`, `--config` | ... ``, `` | `-u`, `--user` / `-g`, `--group` | ``).
fn flag_table() -> Vec<&'static str> {
    let section = README
        .split_once("\n### Flags\n")
        .map(|(_, rest)| rest)
        .expect("README has a ### Flags section");
    let section = section.split("\n#").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|row| row.split(" |").next())
        .flat_map(|cell| cell.split([',', '/']))
        .map(str::trim)
        .filter_map(|name| name.strip_prefix('`')?.strip_suffix('`'))
        .collect()
}

#[test]
fn ci_runs_the_readme_test_command() {
    let ci = include_str!("../.ci/run");
    assert!(README.contains("cargo test --release --ignore-rust-version"));
    assert!(ci.contains("\ncargo test --release --ignore-rust-version\n"));
}
