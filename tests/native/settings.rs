//! Every setting's default is defined once (`spec::settings`) and reaches the CLI's flags and the
//! README's table from there (the page's controls are checked in tests/e2e/settings.test.mjs).

use crate::cli::lens2logit;
use lens2logit::spec::settings::{markdown, Value, SETTINGS};

fn stdout(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = lens2logit(args, dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The README holds `lens2logit settings` between its markers: a changed default changes the
/// docs, or this fails.
#[test]
fn the_readme_lists_the_settings_the_core_defines() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
    )
    .unwrap();
    let start = "<!-- settings: lens2logit settings -->\n";
    let block = readme
        .split_once(start)
        .and_then(|(_, rest)| rest.split_once("<!-- /settings -->"))
        .map(|(table, _)| table)
        .expect("the README's settings table between its markers");
    assert_eq!(
        block,
        markdown(),
        "regenerate it with `lens2logit settings`"
    );
    assert_eq!(stdout(&["settings"]), markdown());
}

/// The option entries of a `--help`: each from its flag's line to the next flag's.
fn entries(help: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in help.lines() {
        if line.trim_start().starts_with('-') {
            out.push(String::new());
        }
        if let Some(entry) = out.last_mut() {
            entry.push_str(line);
            entry.push('\n');
        }
    }
    out
}

/// Each flag of `train` defaults to the described default.
#[test]
fn the_cli_flags_default_to_the_described_defaults() {
    let help = stdout(&["train", "--help"]);
    for setting in SETTINGS {
        let (Some(flag), default) = (setting.flag, setting.default) else {
            continue;
        };
        let flag = format!("--{flag}");
        let entry = entries(&help)
            .into_iter()
            .find(|e| {
                let first = e.lines().next().unwrap_or("");
                first.split([' ', ',']).any(|word| word == flag)
            })
            .unwrap_or_else(|| panic!("train --help has no {flag}:\n{help}"));
        match default {
            Value::Unset => assert!(!entry.contains("[default:"), "{flag}: {entry}"),
            value => assert!(
                entry.contains(&format!("[default: {value}]")),
                "{flag} does not default to {value}: {entry}"
            ),
        }
    }
}
