//! The book's references to other files, resolved and checked.
//!
//! A chapter shows code with `{{#include FILE:ANCHOR}}` and `{{#rustdoc_include FILE:ANCHOR}}`
//! (mdBook's syntax), shows figures with `<img src="generated/…">`, and links to other
//! chapters with `[text](chapter.md)`. mdBook only logs a warning when such a target is
//! missing and builds the page anyway, so a renamed function or a deleted anchor would
//! quietly leave a hole in the book. [`check`] turns every such hole into a [`Problem`].
//!
//! Anchors are found the way mdBook finds them: a line containing `ANCHOR: name` opens
//! the listing and a later line containing `ANCHOR_END: name` closes it.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

/// The folder under the book's `src/` that only `cargo xtask figures` writes.
pub const GENERATED: &str = "generated";

/// `{{#include …}}` and `{{#rustdoc_include …}}`, as mdBook's own link pattern reads them;
/// an escaped `\{{#…}}` is matched too so that it can be skipped.
static INCLUDE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\\\{\{#.*\}\}|\{\{\s*#(include|rustdoc_include)\s+([^}\s]+)[^}]*\}\}")
        .expect("the include pattern is a valid regex")
});

/// Markdown links and images `[..](target)`, and HTML `src="target"`.
static LOCAL_LINK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\]\(([^)\s]+)\)|\bsrc="([^"]+)""#).expect("the link pattern is a valid regex")
});

static ANCHOR_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"ANCHOR:\s*([\w_-]+)").expect("valid regex"));
static ANCHOR_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"ANCHOR_END:\s*([\w_-]+)").expect("valid regex"));

/// How to treat targets inside `src/generated/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generated<'a> {
    /// The figures were just generated into this folder (`src/generated/` itself, or a
    /// stand-in for it in tests): every generated target must exist there, and every
    /// file there must be used by some chapter (a figure no page shows is stale).
    In(&'a Path),
    /// The figures may not have been generated yet (a fresh clone running `cargo test`):
    /// generated targets are not looked at. Everything else is still checked.
    Skipped,
}

/// Which part of a file an include takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// The whole file.
    Whole,
    /// The lines between `ANCHOR: name` and `ANCHOR_END: name`.
    Anchor(String),
    /// A range of lines starting at `first` (from the start of the file if `None`).
    Lines {
        /// The first line taken, 1-based.
        first: Option<usize>,
    },
}

/// One reference from a chapter to another file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The chapter holding the reference.
    pub chapter: PathBuf,
    /// 1-based line number in the chapter.
    pub line: usize,
    /// The reference as written.
    pub text: String,
    /// The target file, resolved against the chapter's folder.
    pub target: PathBuf,
    /// The part of the target that is used.
    pub part: Part,
}

/// A reference that points at nothing, or a generated file nothing points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: a chapter and line, or the unused generated file.
    pub place: String,
    /// What is wrong, in words.
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.what)
    }
}

/// Checks every chapter under `src` (the book's source folder) and returns what is broken.
/// An empty list means every include, anchor, image and local link resolves.
pub fn check(src: &Path, generated: Generated<'_>) -> std::io::Result<Vec<Problem>> {
    // Where chapters point, and where the generated files really are.
    let pointed_at = normalize(&src.join(GENERATED));
    let generated_dir = match generated {
        Generated::In(dir) => Some(normalize(dir)),
        Generated::Skipped => None,
    };
    let mut files: Vec<PathBuf> = markdown_files(src)?
        .into_iter()
        .filter(|file| !file.starts_with(&pointed_at))
        .collect();
    if let Some(dir) = &generated_dir {
        files.extend(markdown_files(dir)?);
    }
    let mut problems = Vec::new();
    let mut used_generated = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        // A generated Markdown file is pasted into a chapter, so its links are read from
        // the chapter's folder, not its own.
        let from_generated = generated_dir
            .as_ref()
            .is_some_and(|dir| file.starts_with(dir));
        let base = if from_generated {
            src
        } else {
            file.parent().unwrap_or(src)
        };
        for mut reference in references(&file, base, &text) {
            if let Ok(name) = reference.target.strip_prefix(&pointed_at) {
                let Some(dir) = &generated_dir else { continue };
                reference.target = dir.join(name);
                used_generated.push(reference.target.clone());
            }
            if let Err(what) = resolve(&reference) {
                let place = format!(
                    "{}:{}: `{}`",
                    reference.chapter.display(),
                    reference.line,
                    reference.text
                );
                problems.push(Problem { place, what });
            }
        }
    }
    if let Some(dir) = &generated_dir {
        for file in files_under(dir)? {
            if !used_generated.contains(&file) {
                problems.push(Problem {
                    place: file.display().to_string(),
                    what: "generated, but no chapter includes or shows it".into(),
                });
            }
        }
    }
    Ok(problems)
}

/// Every reference in `text`, the contents of `chapter`, resolved from the folder
/// `base`: includes anywhere, links and images outside code blocks.
pub fn references(chapter: &Path, base: &Path, text: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut in_code = false;
    for (index, line) in text.lines().enumerate() {
        let at = |raw: &str, text: &str, part: Part| Reference {
            chapter: chapter.to_path_buf(),
            line: index + 1,
            text: text.to_owned(),
            target: normalize(&base.join(raw)),
            part,
        };
        for capture in INCLUDE.captures_iter(line) {
            if let Some(path) = capture.get(2) {
                let (file, part) = split_part(path.as_str());
                found.push(at(file, &capture[0], part));
            }
        }
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        for capture in LOCAL_LINK.captures_iter(line) {
            let raw = capture.get(1).or(capture.get(2)).map_or("", |m| m.as_str());
            let file = raw.split('#').next().unwrap_or("");
            if !file.is_empty() && !file.contains("://") && !file.starts_with("mailto:") {
                found.push(at(file, &capture[0], Part::Whole));
            }
        }
    }
    found
}

/// `FILE`, `FILE:ANCHOR`, `FILE:FIRST`, `FILE:FIRST:LAST`, `FILE::LAST` as mdBook reads them.
fn split_part(path: &str) -> (&str, Part) {
    let Some((file, rest)) = path.split_once(':') else {
        return (path, Part::Whole);
    };
    let first = rest.split(':').next().unwrap_or("");
    let part = match first.parse::<usize>() {
        Ok(line) => Part::Lines { first: Some(line) },
        Err(_) if first.is_empty() => Part::Lines { first: None },
        Err(_) => Part::Anchor(first.to_owned()),
    };
    (file, part)
}

/// `Ok` if the reference's target exists and holds the part it takes.
fn resolve(reference: &Reference) -> Result<(), String> {
    let target = &reference.target;
    if !target.exists() {
        return Err(format!("{} does not exist", target.display()));
    }
    match &reference.part {
        Part::Whole | Part::Lines { first: None } => Ok(()),
        Part::Lines { first: Some(line) } => {
            let lines = read(target)?.lines().count();
            if *line == 0 || *line > lines {
                Err(format!(
                    "{} has {lines} lines, not line {line}",
                    target.display()
                ))
            } else {
                Ok(())
            }
        }
        Part::Anchor(name) => anchored_lines(&read(target)?, name)
            .map(|_| ())
            .map_err(|why| format!("{} in {}", why, target.display())),
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// How many lines the anchor `name` encloses in `text`, or why it cannot be used.
pub fn anchored_lines(text: &str, name: &str) -> Result<usize, String> {
    let is = |pattern: &Regex, line: &str| pattern.captures(line).is_some_and(|c| &c[1] == name);
    let mut lines = text.lines();
    if !lines.by_ref().any(|line| is(&ANCHOR_START, line)) {
        return Err(format!("no `ANCHOR: {name}`"));
    }
    let mut enclosed = 0;
    for line in lines {
        if is(&ANCHOR_END, line) {
            return if enclosed == 0 {
                Err(format!("anchor `{name}` encloses no lines"))
            } else {
                Ok(enclosed)
            };
        }
        if !ANCHOR_START.is_match(line) && !ANCHOR_END.is_match(line) {
            enclosed += 1;
        }
    }
    Err(format!("`ANCHOR: {name}` has no `ANCHOR_END: {name}`"))
}

/// Every Markdown file under `dir`, sorted.
fn markdown_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = files_under(dir)?
        .into_iter()
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    found.sort();
    Ok(found)
}

/// Every file under `dir`, recursively, with normalized paths; none if `dir` is missing.
fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![normalize(dir)];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// `path` with `.` and `..` folded away, without asking the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_include_forms_mdbook_knows() {
        let text = "```rust,ignore\n{{#include ../../crates/a/src/lib.rs:alloc}}\n```\n\
                    {{#rustdoc_include x.rs:3:9}}\n{{#include all.md}}\n\\{{#include escaped.rs}}\n";
        let refs = references(Path::new("book/src/ch.md"), Path::new("book/src"), text);
        let parts: Vec<(&Path, &Part)> =
            refs.iter().map(|r| (r.target.as_path(), &r.part)).collect();
        assert_eq!(
            parts,
            [
                (
                    Path::new("crates/a/src/lib.rs"),
                    &Part::Anchor("alloc".into())
                ),
                (Path::new("book/src/x.rs"), &Part::Lines { first: Some(3) }),
                (Path::new("book/src/all.md"), &Part::Whole),
            ]
        );
        assert_eq!(refs[1].line, 4);
    }

    #[test]
    fn links_and_images_count_outside_code_only() {
        let text = "See [bump](bump.md#cost) and <img src=\"generated/map.svg\">, [web](https://x.org).\n\
                    ```rust\nlet a = v[i](x);\n```\n";
        let targets: Vec<PathBuf> = references(Path::new("src/ch.md"), Path::new("src"), text)
            .into_iter()
            .map(|r| r.target)
            .collect();
        assert_eq!(
            targets,
            [
                PathBuf::from("src/bump.md"),
                PathBuf::from("src/generated/map.svg")
            ]
        );
    }

    #[test]
    fn anchors_need_a_start_an_end_and_lines_between() {
        let text = "a\n// ANCHOR: alloc\nfn alloc() {}\n// ANCHOR: inner\nx\n// ANCHOR_END: inner\n// ANCHOR_END: alloc\n// ANCHOR: empty\n// ANCHOR_END: empty\n// ANCHOR: open\n";
        assert_eq!(anchored_lines(text, "alloc"), Ok(2));
        assert_eq!(anchored_lines(text, "inner"), Ok(1));
        assert!(
            anchored_lines(text, "missing")
                .unwrap_err()
                .contains("no `ANCHOR: missing`")
        );
        assert!(
            anchored_lines(text, "empty")
                .unwrap_err()
                .contains("encloses no lines")
        );
        assert!(
            anchored_lines(text, "open")
                .unwrap_err()
                .contains("no `ANCHOR_END: open`")
        );
    }

    #[test]
    fn check_reports_missing_files_anchors_and_unused_figures() {
        let root = std::env::temp_dir().join(format!("book-links-{}", std::process::id()));
        let src = root.join("src");
        std::fs::create_dir_all(src.join(GENERATED)).unwrap();
        std::fs::write(
            root.join("code.rs"),
            "// ANCHOR: here\nfn here() {}\n// ANCHOR_END: here\n",
        )
        .unwrap();
        std::fs::write(src.join(GENERATED).join("unused.md"), "x").unwrap();
        std::fs::write(
            src.join(GENERATED).join("table.md"),
            "<img src=\"generated/map.svg\">",
        )
        .unwrap();
        std::fs::write(src.join(GENERATED).join("map.svg"), "<svg/>").unwrap();
        std::fs::write(
            src.join("ch.md"),
            "{{#include ../code.rs:here}}\n{{#include ../code.rs:gone}}\n{{#include ../nothing.rs}}\n\
             {{#include generated/table.md}}\n{{#include generated/later.md}}\n",
        )
        .unwrap();
        let skipped = check(&src, Generated::Skipped).unwrap();
        let required = check(&src, Generated::In(&src.join(GENERATED))).unwrap();
        std::fs::remove_dir_all(&root).unwrap();

        let whats =
            |problems: &[Problem]| problems.iter().map(|p| p.what.clone()).collect::<Vec<_>>();
        assert_eq!(skipped.len(), 2, "{:?}", whats(&skipped));
        assert!(skipped[0].what.starts_with("no `ANCHOR: gone`"));
        assert!(skipped[1].what.ends_with("nothing.rs does not exist"));
        assert_eq!(required.len(), 4, "{:?}", whats(&required));
        assert!(required[2].what.ends_with("later.md does not exist"));
        assert!(required[3].place.ends_with("unused.md"));
    }
}
