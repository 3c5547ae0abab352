//! The dependency policy on real crates, read by `cargo metadata` (offline: only the
//! manifests are read, nothing is built or fetched).

use std::fs;
use std::path::{Path, PathBuf};

use grader::{Options, Policy, default_heaplab, grade, policy};

/// A submission crate in a fresh temporary folder, with `dependencies` as its
/// `[dependencies]` table and `lib` as its `src/lib.rs`.
fn submission(name: &str, dependencies: &str, lib: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("grader-policy-{}", std::process::id()))
        .join(name);
    fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n{dependencies}\n[dev-dependencies]\nproptest = \"1\"\n\n[workspace]\n"
    );
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    fs::write(dir.join("src/lib.rs"), lib).unwrap();
    dir
}

fn crates() -> PathBuf {
    default_heaplab().join("crates")
}

fn rawheap(features: &str) -> String {
    format!(
        "rawheap = {{ path = {:?}, default-features = false{features} }}\n",
        crates().join("rawheap")
    )
}

fn refused(dir: &Path, policy: &Policy) -> Vec<String> {
    let submission = policy::read(dir).unwrap();
    policy
        .check(&submission, &default_heaplab())
        .into_iter()
        .map(|r| r.to_string())
        .collect()
}

#[test]
fn a_reexported_heaplab_allocator_is_refused_and_its_grade_withheld() {
    let tlsf = format!("tlsf = {{ path = {:?} }}\n", crates().join("tlsf"));
    let dir = submission(
        "reexport",
        &(rawheap("") + &tlsf),
        "pub type Heap = tlsf::Tlsf;\n",
    );
    let refusals = refused(&dir, &Policy::default());
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(refusals[0].starts_with("`tlsf`: not allowed (a path dependency on"));
    // The whole grader: nothing is built, the report says why.
    let options = Options::standard(&default_heaplab()).unwrap();
    let report = grade(&dir, &options).unwrap();
    assert!(report.withheld() && report.rules.is_empty());
    assert!(
        report.text().contains("## Grade withheld"),
        "{}",
        report.text()
    );
    let allowed = Policy {
        allow: vec!["tlsf".into()],
        ..Policy::default()
    };
    assert_eq!(refused(&dir, &allowed), Vec::<String>::new());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_crates_io_allocator_is_refused() {
    let dir = submission(
        "from-crates-io",
        &(rawheap(", features = [\"tags\"]") + "talc = \"4\"\nlinked_list_allocator = \"0.10\"\n"),
        "pub type Heap = talc::Talc<talc::ErrOnOom>;\n",
    );
    let refusals = refused(&dir, &Policy::default());
    assert_eq!(refusals.len(), 2, "one line each: {refusals:?}");
    assert!(
        refusals
            .iter()
            .any(|r| r.starts_with("`talc`: not allowed (from crates.io, version ^4)")),
        "{refusals:?}"
    );
    assert!(
        refusals
            .iter()
            .any(|r| r.starts_with("`linked_list_allocator`: not allowed")),
        "{refusals:?}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_template_s_dependencies_are_allowed() {
    let dir = submission(
        "template-like",
        &rawheap(", features = [\"tags\"]"),
        "pub struct Heap;\n",
    );
    assert_eq!(refused(&dir, &Policy::default()), Vec::<String>::new());
    let with_std = submission("with-std", &rawheap(", features = [\"std\"]"), "");
    assert_eq!(refused(&with_std, &Policy::default()).len(), 1);
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_dir_all(&with_std).unwrap();
}
