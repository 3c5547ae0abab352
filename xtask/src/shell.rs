//! Running commands the way every subcommand does: print, run, fail loudly.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// `cargo` with the given arguments, run from the workspace root.
pub fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(args).current_dir(root());
    command
}

/// `cargo +TOOLCHAIN` with the given arguments, run from the workspace root. It goes
/// through rustup's `cargo` proxy on the PATH: the `CARGO` that runs xtask is one
/// toolchain's own binary, which does not understand `+toolchain`.
pub fn cargo_on(toolchain: &str, args: &[&str]) -> Command {
    let mut command = Command::new("cargo");
    command
        .arg(format!("+{toolchain}"))
        .args(args)
        .current_dir(root());
    command
}

/// Prints a banner, runs `command`, and fails with the step's name if it fails.
pub fn run(step: &str, command: &mut Command) -> anyhow::Result<()> {
    println!("\n==> {step}\n    $ {}", describe(command));
    let started = Instant::now();
    let status = command
        .status()
        .with_context(|| format!("could not start `{}`", describe(command)))?;
    let took = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("step failed after {took:.1} s: {step} ({status})");
    }
    println!("    ok: {step} ({took:.1} s)");
    Ok(())
}

/// The first executable called `name` in a folder of the PATH, as a shell would find it.
pub fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|folder| folder.join(name))
        .find(|file| {
            file.metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Whether this process runs as root (CI does), which may install Debian's packages.
pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}

/// The output of `command` as text, when it succeeds.
pub fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn describe(command: &Command) -> String {
    let envs: Vec<String> = command
        .get_envs()
        .filter_map(|(key, value)| {
            Some(format!(
                "{}={}",
                key.to_string_lossy(),
                value?.to_string_lossy()
            ))
        })
        .collect();
    let args: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let program = command.get_program().to_string_lossy();
    let program = if program.ends_with("cargo") {
        "cargo".into()
    } else {
        program
    };
    [envs.join(" "), program.into_owned(), args.join(" ")]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
