//! `cargo xtask new-assignment NAME`: a student's crate, made from the template in
//! `coursework/template`: a `RawHeap` skeleton whose methods each say what to write,
//! the conformance suite in one line, a property test and a README.
//!
//! The crate is a workspace of its own (it builds wherever it is put) unless it is made
//! under this workspace's `crates/`, where it joins the workspace. Its path
//! dependencies on `rawheap` and `conformance` point into this repository: relative
//! inside it, absolute outside.

use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};

use crate::shell::root;

/// Creates a student's crate (`cargo xtask new-assignment`).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The crate's name: lowercase letters, digits, `-` and `_`, starting with a letter.
    pub name: String,
    /// Where to create it [default: ./NAME]. It must not exist or be empty.
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
}

/// `cargo xtask new-assignment`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()?.join(&args.name),
    };
    let dir = create(&args.name, &dir)?;
    println!(
        "created {name} in {dir}\n\nnext:\n  cd {dir}\n  cargo test        # every test says which part to write next\n  cat README.md     # the rules and how the heap is graded",
        name = args.name,
        dir = dir.display()
    );
    Ok(())
}

/// The template's files, relative to `coursework/template`.
const TEMPLATE_FILES: &[&str] = &[
    "Cargo.toml",
    "README.md",
    "src/lib.rs",
    "tests/conformance.rs",
    "tests/properties.rs",
];

/// The template's package (and library) name, which a new crate replaces with its own.
const TEMPLATE_NAME: &str = "assignment";

/// Creates the crate `name` from the template in `dir`, which must not exist or be
/// empty; returns `dir`, absolute.
pub fn create(name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    if dir.exists() && fs::read_dir(dir)?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    write_crate(name, dir, None, &[])
}

/// Writes the crate `name` from the template into `dir`, with `lib_rs` as its
/// `src/lib.rs` when given, and depending besides `rawheap` on the crates of this
/// repository named in `uses` (`conformance`, where the teaching heaps live, for the
/// grader's own test submissions). Files that already hold the same text are left
/// alone, so cargo sees nothing new in a crate written again unchanged.
pub fn write_crate(
    name: &str,
    dir: &Path,
    lib_rs: Option<&str>,
    uses: &[&str],
) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let template = root().join("coursework/template");
    for file in TEMPLATE_FILES {
        let text = fs::read_to_string(template.join(file))
            .with_context(|| format!("reading the template's {file}"))?;
        let text = match (*file, lib_rs) {
            ("Cargo.toml", _) => manifest(&text, name, &dir, uses)?,
            ("README.md", _) => text.replace("`assignment`", &format!("`{name}`")),
            ("src/lib.rs", Some(lib_rs)) => lib_rs.to_owned(),
            _ => text.replace(
                &format!("use {TEMPLATE_NAME}::"),
                &format!("use {}::", name.replace('-', "_")),
            ),
        };
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        grader::write_if_changed(&path, &text)?;
    }
    // The workspace's dependency versions, so the crate builds with what this
    // repository was tested with, and without a registry lookup when it is cached.
    let lock = fs::read_to_string(root().join("Cargo.lock"))?;
    grader::write_if_changed(&dir.join("Cargo.lock"), &lock)?;
    grader::write_if_changed(&dir.join(".gitignore"), "/target\n")?;
    Ok(dir)
}

/// Refuses names cargo would refuse, with the reason.
fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !starts_with_letter || !rest_ok {
        bail!(
            "`{name}` is not a crate name for an assignment: use lowercase letters, digits, `-` and `_`, starting with a letter"
        );
    }
    Ok(())
}

/// The template's Cargo.toml for the crate `name` in `dir`: its name, its path
/// dependencies pointing into this repository (with the crates in `uses` added to its
/// dependencies), and `[workspace]` unless `dir` is a member of this workspace.
fn manifest(template: &str, name: &str, dir: &Path, uses: &[&str]) -> anyhow::Result<String> {
    let name_line = format!("name = \"{TEMPLATE_NAME}\"");
    if template.matches(&name_line).count() != 1 {
        bail!("the template's Cargo.toml must name its package `{TEMPLATE_NAME}` once");
    }
    let repo = root().canonicalize()?;
    let crates = match dir.strip_prefix(&repo) {
        Ok(inside) => {
            let up = inside
                .components()
                .filter(|c| matches!(c, Component::Normal(_)));
            let mut path = PathBuf::new();
            for _ in up {
                path.push("..");
            }
            path.join("crates")
        }
        Err(_) => repo.join("crates"),
    };
    let mut text = template
        .replace(&name_line, &format!("name = \"{name}\""))
        .replace("\"../../crates/", &format!("\"{}/", crates.display()));
    if !text.contains("[dependencies]\n") {
        bail!("the template's Cargo.toml has no [dependencies] table");
    }
    for used in uses {
        let line = format!("{used} = {{ path = \"{}/{used}\" }}", crates.display());
        text = text.replacen("[dependencies]\n", &format!("[dependencies]\n{line}\n"), 1);
    }
    let member = dir.parent() == Some(repo.join("crates").as_path());
    if member {
        text = text.replace(
            "\n# This crate is a workspace of its own, so it builds wherever it is copied.\n[workspace]\n",
            "\n",
        );
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cargo_would_refuse_are_refused_with_a_reason() {
        assert!(check_name("my-heap_2").is_ok());
        for bad in ["", "2heap", "My", "a b", "heap!"] {
            let error = check_name(bad).unwrap_err().to_string();
            assert!(error.contains("lowercase letters"), "{bad}: {error}");
        }
    }
}
