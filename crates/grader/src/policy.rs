//! The dependency policy: what a submission may build on.
//!
//! An assignment asks for a heap of the student's own, so the grade must not be earned
//! by another crate's allocator: `pub type Heap = tlsf::Tlsf;` with a path dependency on
//! heaplab's own `tlsf`, or `pub type Heap = SomeCrate::Heap;` from crates.io, builds and
//! keeps every rule. The grader therefore reads the submission's manifest through
//! `cargo metadata` (offline: `--no-deps` gives every dependency it declares, which is
//! all the policy needs, since anything but `rawheap` is refused whatever it pulls in)
//! and by default allows exactly one dependency: heaplab's own `rawheap`, without its
//! default features (`std` would hand the heap `Arena`, memory from the system
//! allocator instead of its region). Its `tags` feature (the boundary-tag block format,
//! `rawheap::tags`) is allowed unless the staff switch it off with `--no-tags`, which
//! the [`harness`](crate::harness) enforces by building without it. Staff allow more
//! with `--allow CRATE`. Dev-dependencies are not linked into the graded heap and are
//! not checked.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

/// The crate every submission may depend on.
pub const RAWHEAP: &str = "rawheap";

/// The feature of `rawheap` that holds `rawheap::tags`.
pub const TAGS_FEATURE: &str = "tags";

/// Which dependencies a submission may have.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Crates allowed besides `rawheap`, by package name (`--allow CRATE`).
    pub allow: Vec<String>,
    /// Whether `rawheap::tags` may be used (`--no-tags` switches it off).
    pub tags: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            allow: Vec::new(),
            tags: true,
        }
    }
}

/// A submission as its manifest describes it.
#[derive(Clone, Debug)]
pub struct Submission {
    /// The package name.
    pub name: String,
    /// The crate's folder.
    pub dir: PathBuf,
    /// The library's root source file.
    pub lib: PathBuf,
    /// Its build script, if it has one.
    pub build_script: Option<PathBuf>,
    /// Every dependency it declares (dev-dependencies included).
    pub dependencies: Vec<Dependency>,
}

/// One declared dependency.
#[derive(Clone, Debug)]
pub struct Dependency {
    /// The package name.
    pub name: String,
    /// Whether it is a dev-dependency (tests only, never in the graded heap).
    pub dev: bool,
    /// Where it comes from, in words: a path, crates.io and a version, a git URL.
    pub origin: String,
    /// The folder of a path dependency.
    pub path: Option<PathBuf>,
    /// Whether its default features are on.
    pub default_features: bool,
    /// The features it asks for.
    pub features: Vec<String>,
}

/// A dependency the policy refuses, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// The dependency's package name.
    pub dependency: String,
    /// Why it is refused, in words.
    pub why: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.dependency, self.why)
    }
}

/// Reads the submission at `dir` with `cargo metadata`.
pub fn read(dir: &Path) -> anyhow::Result<Submission> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!("{} is not a crate: no Cargo.toml", dir.display());
    }
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata could not read {}: {}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)?;
    from_metadata(&metadata, &manifest)
}

/// The package of `manifest` in `cargo metadata`'s answer.
fn from_metadata(metadata: &Value, manifest: &Path) -> anyhow::Result<Submission> {
    let manifest = manifest.canonicalize()?;
    let package = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["manifest_path"]
                .as_str()
                .and_then(|m| Path::new(m).canonicalize().ok())
                .is_some_and(|m| m == manifest)
        })
        .with_context(|| format!("{} names no package", manifest.display()))?;
    let target_of = |kind: &str| {
        package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == kind))
            })
            .and_then(|t| t["src_path"].as_str())
            .map(PathBuf::from)
    };
    let lib = target_of("lib")
        .with_context(|| format!("{} has no library (src/lib.rs)", manifest.display()))?;
    let dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
    let dependencies = package["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            // Cargo gives it absolute; a relative one would be the manifest's.
            let path = d["path"].as_str().map(|p| dir.join(p));
            let req = d["req"].as_str().unwrap_or("*");
            let origin = match (&path, d["source"].as_str()) {
                (Some(path), _) => format!("a path dependency on {}", path.display()),
                (None, Some(source)) if source.starts_with("registry+") => {
                    format!("from crates.io, version {req}")
                }
                (None, Some(source)) => format!("from {source}"),
                (None, None) => format!("version {req}"),
            };
            Dependency {
                name: d["name"].as_str().unwrap_or_default().to_owned(),
                dev: d["kind"] == "dev",
                origin,
                path,
                default_features: d["uses_default_features"].as_bool().unwrap_or(true),
                features: d["features"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect(),
            }
        })
        .collect();
    Ok(Submission {
        name: package["name"].as_str().unwrap_or_default().to_owned(),
        dir,
        lib,
        build_script: target_of("custom-build"),
        dependencies,
    })
}

impl Policy {
    /// Every dependency of `submission` the policy refuses (none: it may be graded),
    /// with `heaplab` the tree whose `rawheap` is the one allowed.
    pub fn check(&self, submission: &Submission, heaplab: &Path) -> Vec<Refusal> {
        let own_rawheap = heaplab.join("crates").join(RAWHEAP).canonicalize().ok();
        let mut refused = Vec::new();
        let mut refuse = |dependency: &Dependency, why: String| {
            refused.push(Refusal {
                dependency: dependency.name.clone(),
                why,
            });
        };
        for dependency in submission.dependencies.iter().filter(|d| !d.dev) {
            if self.allow.contains(&dependency.name) {
                continue;
            }
            if dependency.name != RAWHEAP {
                refuse(
                    dependency,
                    format!(
                        "not allowed ({}). The staff allow {}: a heap that comes from another crate is not the student's own.",
                        dependency.origin,
                        self.allowed()
                    ),
                );
                continue;
            }
            let path = dependency.path.as_ref().and_then(|p| p.canonicalize().ok());
            if path.is_none() || path != own_rawheap {
                refuse(
                    dependency,
                    format!(
                        "not heaplab's own `rawheap` ({}): the heap must be built on the contract the suite checks.",
                        dependency.origin
                    ),
                );
                continue;
            }
            if dependency.default_features {
                refuse(
                    dependency,
                    "with its default features, which include `std` (`Arena`: memory from the system allocator, not the heap's region). Declare it with `default-features = false`.".into(),
                );
            }
            for feature in &dependency.features {
                if feature != TAGS_FEATURE {
                    refuse(
                        dependency,
                        format!(
                            "with the feature `{feature}`, which the staff did not allow (only `{TAGS_FEATURE}` may be asked for)."
                        ),
                    );
                }
            }
        }
        refused
    }

    /// The allowed crates, in words.
    fn allowed(&self) -> String {
        let mut names = vec![format!("`{RAWHEAP}`")];
        names.extend(self.allow.iter().map(|a| format!("`{a}`")));
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn dependency(name: &str, path: Option<&Path>, features: &[&str], default: bool) -> Value {
        json!({
            "name": name,
            "kind": null,
            "req": "*",
            "source": if path.is_some() { Value::Null } else { json!("registry+https://github.com/rust-lang/crates.io-index") },
            "path": path,
            "uses_default_features": default,
            "features": features,
        })
    }

    fn heaplab() -> PathBuf {
        crate::default_heaplab()
    }

    fn submission(dependencies: Vec<Value>) -> Submission {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let metadata = json!({ "packages": [{
            "name": "student",
            "manifest_path": manifest,
            "targets": [{ "kind": ["lib"], "src_path": "/s/src/lib.rs" }],
            "dependencies": dependencies,
        }]});
        from_metadata(&metadata, &manifest).unwrap()
    }

    #[test]
    fn rawheap_without_default_features_is_allowed_with_or_without_tags() {
        let rawheap = heaplab().join("crates/rawheap");
        for features in [&[][..], &["tags"][..]] {
            let s = submission(vec![dependency("rawheap", Some(&rawheap), features, false)]);
            assert_eq!(Policy::default().check(&s, &heaplab()), []);
        }
    }

    #[test]
    fn rawheap_with_std_or_from_elsewhere_is_refused() {
        let rawheap = heaplab().join("crates/rawheap");
        let with_std = submission(vec![dependency("rawheap", Some(&rawheap), &[], true)]);
        let refused = Policy::default().check(&with_std, &heaplab());
        assert_eq!(refused.len(), 1);
        assert!(refused[0].why.contains("default features"), "{refused:?}");
        let std_feature = submission(vec![dependency("rawheap", Some(&rawheap), &["std"], false)]);
        assert!(
            Policy::default().check(&std_feature, &heaplab())[0]
                .why
                .contains("feature `std`")
        );
        let registry = submission(vec![dependency("rawheap", None, &[], false)]);
        assert!(
            Policy::default().check(&registry, &heaplab())[0]
                .why
                .contains("not heaplab's own")
        );
    }

    #[test]
    fn every_other_dependency_is_its_own_refusal_unless_allowed() {
        let s = submission(vec![
            dependency("talc", None, &[], true),
            dependency("tlsf", Some(&heaplab().join("crates/tlsf")), &[], false),
            json!({ "name": "proptest", "kind": "dev", "req": "1", "source": "registry+x",
                    "path": null, "uses_default_features": true, "features": [] }),
        ]);
        let refused = Policy::default().check(&s, &heaplab());
        let names: Vec<&str> = refused.iter().map(|r| r.dependency.as_str()).collect();
        assert_eq!(names, ["talc", "tlsf"]);
        assert!(refused[0].why.contains("crates.io"), "{}", refused[0]);
        assert!(refused[1].why.contains("path dependency"), "{}", refused[1]);
        let staff = Policy {
            allow: vec!["talc".into()],
            ..Policy::default()
        };
        let names: Vec<String> = staff
            .check(&s, &heaplab())
            .into_iter()
            .map(|r| r.dependency)
            .collect();
        assert_eq!(names, ["tlsf"]);
    }
}
