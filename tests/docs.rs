//! Docs that follow the code (issue 29): the README's layout table names every entry of
//! `src/` and nothing that is gone, and its explain example is what explain prints.

use std::collections::BTreeSet;
use std::path::Path;

fn readme_layout() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("## Layout\n").expect("a Layout section");
    let rest = &readme[start..];
    let end = rest[1..].find("\n## ").map_or(rest.len(), |i| i + 1);
    rest[..end].to_owned()
}

/// Every `src/...` or `e2e/...` path written in backticks in the table.
fn named_paths(layout: &str) -> BTreeSet<String> {
    layout
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| word.starts_with("src/") || word.starts_with("e2e/"))
        .map(|word| word.trim_end_matches('/').to_owned())
        .collect()
}

#[test]
fn every_path_the_layout_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layout = readme_layout();
    let named = named_paths(&layout);
    assert!(named.len() > 10, "{named:?}");
    let missing: Vec<&String> = named.iter().filter(|p| !root.join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "README's layout names {missing:?}, which do not exist"
    );
}

#[test]
fn every_entry_of_src_is_in_the_layout() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let named = named_paths(&readme_layout());
    let mut unnamed = Vec::new();
    for entry in std::fs::read_dir(root.join("src")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let path = format!("src/{name}");
        let inside = format!("{path}/");
        // A folder beside a file module (`pod.rs` + `pod/tests.rs`) is that module's.
        let module_file = format!("{path}.rs");
        if !named.contains(&path)
            && !named.contains(&module_file)
            && !named.iter().any(|n| n.starts_with(&inside))
        {
            unnamed.push(path);
        }
    }
    unnamed.sort();
    assert!(
        unnamed.is_empty(),
        "README's layout does not name {unnamed:?}"
    );
}

/// The planner's row names each of its files: it is the one folder whose files are phases.
#[test]
fn every_planner_file_is_named_in_its_row() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layout = readme_layout();
    let row = layout
        .lines()
        .find(|line| line.starts_with("| `src/plan/`"))
        .expect("a row for src/plan/");
    let mut unnamed = Vec::new();
    for entry in std::fs::read_dir(root.join("src/plan")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_suffix(".rs") else {
            continue;
        };
        if stem != "mod" && !row.contains(&format!("`{stem}`")) {
            unnamed.push(stem.to_owned());
        }
    }
    assert!(
        unnamed.is_empty(),
        "the src/plan/ row does not name {unnamed:?}"
    );
}

/// The README's seed example is what `drain-webhook explain` prints for it today.
#[test]
fn the_readme_explain_example_is_the_real_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let command =
        "$ drain-webhook explain -f tests/fixtures/pods/seed-nginx-app.yaml --kube-version 1.34\n";
    let start = readme.find(command).expect("the example's command") + command.len();
    let shown = &readme[start..start + readme[start..].find("```").unwrap()];
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_drain-webhook"))
        .current_dir(root)
        .args([
            "explain",
            "-f",
            "tests/fixtures/pods/seed-nginx-app.yaml",
            "--kube-version",
            "1.34",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        shown, printed,
        "README's explain example is stale: paste the output above into it"
    );
}
