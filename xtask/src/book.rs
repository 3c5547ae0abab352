//! `cargo xtask book`: regenerates the book's figures, checks every include, and builds
//! the book with mdBook used as a library (nothing to install, no network).
//!
//! `--serve` serves the built site on localhost and watches `book/` and `crates/`: a
//! change to a chapter rebuilds the book, a change to the code also regenerates the
//! figures first (they come from running that code). Each served page polls a tiny
//! version endpoint and reloads itself when a rebuild succeeds.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use book_tests::links::{self, Generated};

use crate::figures;
use crate::shell::root;

/// The page asks this path for the build number, and reloads when it changes.
const VERSION_PATH: &str = "/__heaplab_build";

/// Added before `</body>` of every page served by `--serve` (never written to disk): asks
/// for the build number every second and reloads the page when it changes.
fn reload_script() -> String {
    format!(
        "<script>(() => {{ let seen = null; setInterval(async () => {{ try {{ \
         const now = await (await fetch('{VERSION_PATH}', {{ cache: 'no-store' }})).text(); \
         if (seen !== null && now !== seen) location.reload(); seen = now; }} catch (_) {{}} }}, 1000); }})();</script>"
    )
}

/// How often `--serve` looks for changed files.
const POLL: Duration = Duration::from_millis(500);

#[derive(clap::Args)]
pub struct Args {
    /// Serve the book on localhost; rebuild it when `book/` or `crates/` change and reload the page.
    #[arg(long)]
    serve: bool,
    /// Open the book in the default browser once it is built.
    #[arg(long)]
    open: bool,
    /// The port `--serve` listens on (localhost only).
    #[arg(long, default_value_t = 3000)]
    port: u16,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    check()?;
    if args.serve {
        serve(args.port, args.open)
    } else {
        if args.open {
            open(&build_dir().join("index.html").display().to_string());
        }
        Ok(())
    }
}

/// What CI runs: regenerate the figures, check every include, anchor, figure and local
/// link, and build the book.
pub fn check() -> anyhow::Result<()> {
    // Before the figures' minutes of building, so that a toolchain rustup cannot
    // complete stops the build at once.
    crate::playground::install_wasm_target()?;
    figures::generate(&figures::Args::default())?;
    build()
}

/// The book's root folder (holding `book.toml`).
fn book_dir() -> PathBuf {
    root().join("book")
}

/// Where the site is written (`[build] build-dir` of `book.toml`).
pub(crate) fn build_dir() -> PathBuf {
    book_dir().join("build")
}

/// Checks the references and builds the site from the current sources and figures.
fn build() -> anyhow::Result<()> {
    let src = book_dir().join("src");
    let problems = links::check(&src, Generated::In(&src.join(links::GENERATED)))
        .context("reading the book's sources")?;
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("  {problem}");
        }
        bail!("{} broken reference(s) in the book", problems.len());
    }
    let started = Instant::now();
    let book = mdbook_driver::MDBook::load(book_dir()).context("loading the book")?;
    book.build().context("building the book")?;
    crate::playground::build_into(&build_dir())?;
    println!(
        "book: built in {:.1} s into {}",
        started.elapsed().as_secs_f64(),
        build_dir().display()
    );
    Ok(())
}

fn open(target: &str) {
    if let Err(error) = opener::open_browser(target) {
        eprintln!("could not open a browser ({error}); open {target} yourself");
    }
}

/// Serves the site and rebuilds it on changes until interrupted.
fn serve(port: u16, open_browser: bool) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("listening on localhost:{port} (pick another with --port)"))?;
    let build_number = Arc::new(AtomicU64::new(1));
    serve_in_background(listener, build_dir(), Arc::clone(&build_number));
    let url = format!("http://127.0.0.1:{port}/");
    println!("book: serving {url}; edit book/ or crates/ and the page reloads (Ctrl-C stops)");
    if open_browser {
        open(&url);
    }
    let (mut prose, mut code) = (fingerprint(&prose_dirs()), fingerprint(&code_dirs()));
    loop {
        std::thread::sleep(POLL);
        let (prose_now, code_now) = (fingerprint(&prose_dirs()), fingerprint(&code_dirs()));
        if prose_now == prose && code_now == code {
            continue;
        }
        let rebuilt = if code_now != code {
            println!("book: code changed; regenerating figures and rebuilding");
            check()
        } else {
            println!("book: chapters changed; rebuilding");
            build()
        };
        (prose, code) = (prose_now, code_now);
        match rebuilt {
            Ok(()) => {
                build_number.fetch_add(1, Ordering::SeqCst);
            }
            Err(error) => eprintln!("book: {error:#}\nbook: still serving the last good build"),
        }
    }
}

/// Serves the files of `site` to whoever connects to `listener`, from a background
/// thread (one more per connection); the version endpoint answers `build_number`.
pub(crate) fn serve_in_background(
    listener: TcpListener,
    site: PathBuf,
    build_number: Arc<AtomicU64>,
) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (site, served) = (site.clone(), Arc::clone(&build_number));
            std::thread::spawn(move || {
                // A browser closing a connection early is no reason to stop serving.
                let _ = respond(stream, &site, &served);
            });
        }
    });
}

/// Folders whose changes need only a rebuild: the chapters, not what xtask writes.
fn prose_dirs() -> Vec<PathBuf> {
    vec![book_dir()]
}

/// Folders whose changes need new figures too: the code the figures are computed from.
fn code_dirs() -> Vec<PathBuf> {
    vec![root().join("crates")]
}

/// Every file under `dirs` with its modification time and length, in a stable order;
/// skips what builds write (`build`, `generated`, `target`) and hidden folders.
fn fingerprint(dirs: &[PathBuf]) -> Vec<(PathBuf, SystemTime, u64)> {
    let mut files = Vec::new();
    let mut pending = dirs.to_vec();
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                let written_by_builds = matches!(&*name, "build" | "generated" | "target");
                if !written_by_builds && !name.starts_with('.') {
                    pending.push(path);
                }
            } else {
                files.push((
                    path,
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                ));
            }
        }
    }
    files.sort();
    files
}

/// Answers one HTTP request: the build number, a file of the site, or 404.
fn respond(stream: TcpStream, site: &Path, build_number: &AtomicU64) -> std::io::Result<()> {
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers are not needed; read them so the client sees a complete exchange.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let target = request.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/");
    if path == VERSION_PATH {
        let number = build_number.load(Ordering::SeqCst).to_string();
        return send(&stream, "200 OK", "text/plain", number.as_bytes());
    }
    let Some(file) = site_file(site, path) else {
        let page = std::fs::read(site.join("404.html")).unwrap_or_else(|_| b"not found".to_vec());
        return send(
            &stream,
            "404 Not Found",
            "text/html; charset=utf-8",
            &with_reload(page),
        );
    };
    let body = std::fs::read(&file)?;
    let kind = content_type(&file);
    let body = if kind.starts_with("text/html") {
        with_reload(body)
    } else {
        body
    };
    send(&stream, "200 OK", kind, &body)
}

/// The file a URL path names inside `site`, if there is one: `/` and folders mean their
/// `index.html`; paths climbing out of the site name nothing.
fn site_file(site: &Path, url_path: &str) -> Option<PathBuf> {
    let relative = Path::new(url_path.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let file = site.join(relative);
    let file = if file.is_dir() {
        file.join("index.html")
    } else {
        file
    };
    file.is_file().then_some(file)
}

fn with_reload(mut page: Vec<u8>) -> Vec<u8> {
    let at = page
        .windows(7)
        .rposition(|w| w == b"</body>")
        .unwrap_or(page.len());
    page.splice(at..at, reload_script().into_bytes());
    page
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn send(mut stream: &TcpStream, status: &str, kind: &str, body: &[u8]) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_paths_never_leave_the_site() {
        let site = root().join("xtask");
        assert_eq!(
            site_file(&site, "/src/book.rs"),
            Some(site.join("src/book.rs"))
        );
        assert_eq!(site_file(&site, "/../Cargo.toml"), None);
        assert_eq!(site_file(&site, "/src/../../Cargo.toml"), None);
        assert_eq!(site_file(&site, "/no-such-file.html"), None);
    }

    #[test]
    fn the_reload_script_goes_before_the_last_body_end() {
        let page = with_reload(b"<body>x</body>".to_vec());
        let page = String::from_utf8(page).unwrap();
        assert!(page.starts_with("<body>x<script>"), "{page}");
        assert!(page.ends_with("</script></body>"), "{page}");
        assert!(page.contains(VERSION_PATH));
    }
}
