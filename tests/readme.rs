//! The README keeps its promises: the two commands exist, CI runs the test one, every error code is listed.

use std::path::Path;

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn readme_lists_every_error_code_with_its_summary() {
    let readme = read("README.md");
    for c in ferry_engine::codes::ALL {
        let row = format!("| {} | {} |", c.id, c.summary);
        assert!(readme.contains(&row), "README.md lacks the row `{row}`");
    }
    let listed = readme.lines().filter(|l| l.starts_with("| FERRY-")).count();
    assert_eq!(
        listed,
        ferry_engine::codes::ALL.len(),
        "README.md lists codes that codes.rs does not have"
    );
}

#[test]
fn the_two_commands_exist_and_ci_runs_the_test_one() {
    let readme = read("README.md");
    for cmd in ["scripts/demo", "scripts/test"] {
        assert!(
            readme.contains(&format!("\n{cmd} ")),
            "README.md does not show {cmd}"
        );
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(cmd).is_file(),
            "{cmd} is missing"
        );
    }
    assert!(read(".ci/run").contains("exec scripts/test"));
}

#[test]
fn codes_are_unique_and_well_formed() {
    let mut seen = std::collections::BTreeSet::new();
    for c in ferry_engine::codes::ALL {
        assert!(seen.insert(c.id), "{} twice", c.id);
        assert!(c.id.starts_with("FERRY-") && c.id.len() == 13, "{}", c.id);
        assert!(!c.hint.is_empty());
    }
}
