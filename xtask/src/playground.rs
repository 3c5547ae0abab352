//! The book's heap playground: building its WebAssembly module into the site, and
//! `cargo xtask playground`, which drives the built page in headless Chromium.
//!
//! The browser test serves the built book on a local port, starts `chromedriver`, and
//! speaks WebDriver to it over HTTP. For every allocator of the registry it works the
//! widget as a reader would (picks the allocator, types sizes, clicks Allocate, clicks a
//! block and Free or Reallocate, loads a trace and plays it) and after each action
//! compares what the page drew with what the heap in the page reports: the SVG map's
//! blocks against `walk`, their widths against their sizes, the stats table against
//! `stats`, the refusal message against the numbers that explain it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use base64::Engine;
use serde_json::{Value, json};

use crate::shell::{cargo, is_root, on_path, output, root, run};

/// The target the module is compiled for.
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The cargo profile it is built with (root `Cargo.toml`: release, optimised for size).
const PROFILE: &str = "wasm";
/// The module's file name in `target/`.
const MODULE: &str = "heaplab_playground.wasm";
/// The script in the site's `playground/` folder that holds the module (widget.js loads it).
const MODULE_SCRIPT: &str = "heaplab_playground.wasm.js";
/// The page the test drives.
const PAGE: &str = "playground.html";
/// The width of the widget's map in SVG units (widget.js `ROW_WIDTH`).
const ROW_WIDTH: f64 = 720.0;
/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Debian's packages of the browser and its WebDriver server.
const BROWSER_PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];

#[derive(clap::Args, Default)]
pub struct Args {
    /// Test the site `cargo xtask book` built last instead of building the book first.
    #[arg(long)]
    no_build: bool,
}

/// Compiles the playground module and writes it into the built site's `playground/`
/// as a script (see [`module_script`]).
pub fn build_into(site: &Path) -> anyhow::Result<()> {
    install_wasm_target()?;
    run(
        "the playground's WebAssembly module",
        &mut cargo(&[
            "build",
            "-p",
            "heaplab-playground",
            "--target",
            WASM_TARGET,
            "--profile",
            PROFILE,
            "--locked",
        ]),
    )?;
    let built = target_dir()?.join(WASM_TARGET).join(PROFILE).join(MODULE);
    let module = std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    let folder = site.join("playground");
    std::fs::create_dir_all(&folder)?;
    let script = module_script(&module);
    std::fs::write(folder.join(MODULE_SCRIPT), &script)
        .with_context(|| format!("writing {MODULE_SCRIPT} into the site"))?;
    println!(
        "playground: {MODULE} is {} bytes, {MODULE_SCRIPT} {} bytes",
        module.len(),
        script.len()
    );
    Ok(())
}

/// The module as a classic script that sets `window.heaplabPlaygroundWasm` to its bytes
/// in base64. A page loads it with a `<script>` element, which a browser does for a page
/// opened from `file://` too, where it refuses `fetch()` of a `.wasm` beside the page;
/// so the book works wherever it is opened: from the disk or from any static server.
fn module_script(module: &[u8]) -> String {
    let base64 = base64::engine::general_purpose::STANDARD.encode(module);
    format!(
        "// The heap playground's WebAssembly module (crates/playground), written by \
         `cargo xtask book`.\nwindow.heaplabPlaygroundWasm = \"{base64}\";\n"
    )
}

/// Adds the standard library for wasm32 to the toolchain when it is missing, as
/// `cargo xtask miri` adds Miri. `targets` in rust-toolchain.toml is honoured only when
/// rustup installs the toolchain; a stable toolchain installed before keeps lacking it.
pub fn install_wasm_target() -> anyhow::Result<()> {
    if has_wasm_target() {
        return Ok(());
    }
    if on_path("rustup").is_none() {
        bail!(
            "the book's playground is compiled for {WASM_TARGET}, which this toolchain lacks \
             and which only rustup installs: install Rust with rustup"
        );
    }
    // Run from the workspace root, rustup adds it to the toolchain rust-toolchain.toml
    // picks (or RUSTUP_TOOLCHAIN names), without updating that toolchain.
    run(
        &format!("adding the {WASM_TARGET} target (the book's playground is compiled for it)"),
        Command::new("rustup")
            .args(["target", "add", WASM_TARGET])
            .current_dir(root()),
    )?;
    ensure!(
        has_wasm_target(),
        "rustup added {WASM_TARGET}, but rustc still has no standard library for it"
    );
    Ok(())
}

/// Whether the toolchain has the standard library for wasm32.
fn has_wasm_target() -> bool {
    output(
        Command::new("rustc")
            .args(["--print", "target-libdir", "--target", WASM_TARGET])
            .current_dir(root()),
    )
    .is_some_and(|dir| Path::new(dir.trim()).is_dir())
}

/// What `cargo xtask ci` and `cargo xtask playground` need beyond cargo, checked before
/// their first step rather than after the many minutes that lead to the playground: the
/// wasm32 target, and Chromium with chromedriver ([`install_browser`]).
pub fn install_prerequisites() -> anyhow::Result<()> {
    install_wasm_target()?;
    install_browser()
}

/// Chromium and chromedriver on the PATH; when they are missing and this runs as root
/// where apt-get is (CI), Debian's packages are installed; otherwise one line says what
/// to install.
fn install_browser() -> anyhow::Result<()> {
    if browser().is_ok() {
        return Ok(());
    }
    if !(is_root() && on_path("apt-get").is_some()) {
        bail!(browser().err().unwrap_or_default());
    }
    run(
        "apt-get update (to install Chromium and chromedriver)",
        Command::new("apt-get").arg("update"),
    )?;
    run(
        "installing Chromium and chromedriver (Debian's packages)",
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(BROWSER_PACKAGES)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    browser().map(drop).map_err(|missing| anyhow!(missing))
}

/// chromedriver and the browser it drives, as found on the PATH; or the one line that
/// says what to install.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let driver = on_path("chromedriver");
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(on_path);
    match (driver, chromium) {
        (Some(driver), Some(chromium)) => Ok((driver, chromium)),
        (driver, chromium) => {
            let missing: Vec<&str> = [("chromedriver", driver), ("chromium", chromium)]
                .into_iter()
                .filter(|(_, found)| found.is_none())
                .map(|(name, _)| name)
                .collect();
            Err(format!(
                "the book's playground is tested in headless Chromium, but there is no {} on \
                 the PATH: install Chromium and chromedriver (Debian: `apt-get install {}`)",
                missing.join(" or "),
                BROWSER_PACKAGES.join(" "),
            ))
        }
    }
}

/// Where cargo writes its builds, as cargo itself says.
fn target_dir() -> anyhow::Result<PathBuf> {
    let metadata = output(&mut cargo(&[
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--locked",
    ]))
    .context("`cargo metadata` failed")?;
    let metadata: Value = serde_json::from_str(&metadata)?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("`cargo metadata` names no target directory")
}

/// `cargo xtask playground`: build the book (unless told not to) and drive its playground.
pub fn run_args(args: &Args) -> anyhow::Result<()> {
    install_prerequisites()?;
    if !args.no_build {
        crate::book::check()?;
    }
    test()
}

/// Drives the built book's playground in headless Chromium for every allocator, on the
/// site served over HTTP (as a course's own site serves it) and opened from `file://`
/// (as `cargo xtask book --open` opens it); writes screenshots of each to
/// `playground/http/` and `playground/file/` in cargo's target directory.
pub fn test() -> anyhow::Result<()> {
    println!("\n==> the playground in headless Chromium");
    let started = Instant::now();
    let site = crate::book::build_dir();
    ensure!(
        site.join("playground").join(MODULE_SCRIPT).is_file(),
        "no built playground in {}: run `cargo xtask book` first",
        site.display()
    );
    let listener = TcpListener::bind("127.0.0.1:0").context("a local port for the site")?;
    let served = format!("http://127.0.0.1:{}/", listener.local_addr()?.port());
    let on_disk = file_url(&site);
    crate::book::serve_in_background(listener, site, Arc::new(AtomicU64::new(1)));
    let shots = target_dir()?.join("playground");
    let driver = Chromedriver::start()?;
    let browser = driver.session()?;
    let outcome = [(served, "http"), (on_disk, "file")]
        .into_iter()
        .try_for_each(|(base, kind)| {
            println!("    the site at {base}");
            drive(&browser, &base, &shots.join(kind)).with_context(|| format!("the site at {base}"))
        });
    // End the session even when the test failed, so no browser is left behind.
    let closed = browser.close();
    outcome?;
    closed?;
    println!(
        "    ok: the playground in headless Chromium ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The `file://` URL of a folder (absolute, as `book::build_dir` is), ending in `/`.
fn file_url(folder: &Path) -> String {
    let mut url = String::from("file://");
    for byte in folder.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(byte) {
            url.push(char::from(*byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url.push('/');
    url
}

/// Works the playground page of the site at `base` (a URL ending in `/`) for every
/// allocator, then every chapter that embeds the widget; screenshots go to `shots`.
fn drive(browser: &Browser<'_>, base: &str, shots: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(shots)?;
    browser.open(&format!("{base}{PAGE}"))?;
    wait_until_ready(browser)?;
    let offered = browser.script(
        "return [...document.querySelectorAll('.heaplab-playground .pg-heap option')].map(o => o.textContent);",
    )?;
    let registry: Vec<&str> = heaplab::registry::entries()
        .iter()
        .map(|e| e.name)
        .collect();
    ensure!(
        offered == json!(registry),
        "the page offers {offered}, the registry has {registry:?}"
    );
    for (index, name) in registry.iter().enumerate() {
        let started = Instant::now();
        let checks = exercise(browser, index, name)
            .with_context(|| format!("the playground with {name}"))?;
        browser.screenshot(".heaplab-playground", &shots.join(format!("{name}.png")))?;
        println!(
            "    {name}: {checks} states drawn as the heap reports them ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
    }
    replay(browser, shots)?;
    embeds(browser, base, shots)
}

/// Opens every chapter that embeds the widget and checks that it starts with the
/// allocator the embed names (a misspelt name would silently show another).
fn embeds(browser: &Browser<'_>, base: &str, shots: &Path) -> anyhow::Result<()> {
    let src = root().join("book").join("src");
    let mut chapters: Vec<PathBuf> = std::fs::read_dir(&src)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    chapters.sort();
    for chapter in chapters {
        let text = std::fs::read_to_string(&chapter)?;
        let Some(heap) = text
            .lines()
            .filter(|line| line.contains("src=\"playground/widget.js\""))
            .find_map(|line| line.split("data-heap=\"").nth(1)?.split('"').next())
        else {
            continue;
        };
        let page = chapter.with_extension("html");
        let page = page.file_name().and_then(|n| n.to_str()).unwrap_or("");
        browser.open(&format!("{base}{page}"))?;
        wait_until_ready(browser)?;
        let shown = browser.script(
            "const s = document.querySelector('.heaplab-playground .pg-heap'); \
             return s.options[s.selectedIndex].textContent;",
        )?;
        ensure!(shown == heap, "{page} embeds {heap} but shows {shown}");
        agrees(browser).with_context(|| format!("the widget in {page}"))?;
        browser.script("document.querySelector('.heaplab-playground').scrollIntoView();")?;
        browser.window_screenshot(&shots.join(format!("page-{page}.png")))?;
        println!("    {page}: the embedded widget shows {heap}");
    }
    Ok(())
}

fn wait_until_ready(browser: &Browser<'_>) -> anyhow::Result<()> {
    browser.wait_for(
        "the widget to load its module",
        "const w = document.querySelector('.heaplab-playground'); \
         return w && (w.dataset.ready || w.dataset.error) ? (w.dataset.error || 'ready') : null;",
        |answer| match answer.as_str() {
            Some("ready") => Ok(true),
            Some(_) => Err(()),
            None => Ok(false),
        },
    )
}

/// Works one allocator's widget by hand and checks the drawing after every action;
/// returns how many states were checked.
fn exercise(browser: &Browser<'_>, index: usize, name: &str) -> anyhow::Result<usize> {
    let mut checks = 0;
    let mut check = |what: &str| -> anyhow::Result<Value> {
        checks += 1;
        agrees(browser).with_context(|| format!("after {what}"))
    };
    browser.click(&format!(".pg-heap option[value='{index}']"))?;
    browser.click(".pg-region option[value='16384']")?;
    browser.click(".pg-reset")?;
    let state = check("opening the heap")?;
    ensure!(state["heap"] == name, "the page opened {}", state["heap"]);
    let mut offsets = Vec::new();
    for (size, align) in [(96, 8), (200, 16), (40, 64), (500, 8), (24, 256)] {
        let state = allocate(browser, size, align)?;
        let state_checked = check(&format!("allocate({size}, {align})"))?;
        ensure!(state == state_checked, "the state changed by itself");
        let last = &state["last"];
        ensure!(last["ok"] == true, "allocate({size}, {align}): {last}");
        let offset = last["offset"].as_u64().context("an offset")?;
        ensure!(offset % align == 0, "block at {offset} for align {align}");
        ensure!(
            state["live"]
                .as_array()
                .is_some_and(|live| live.contains(&json!([offset, size, align]))),
            "the new block is live: {}",
            state["live"]
        );
        offsets.push(offset);
    }
    // Click a block in the middle, then Free: the map must no longer show it used.
    let middle = offsets[1];
    browser.click(&format!(".pg-map .pg-block[data-offset='{middle}'] rect"))?;
    let picked = browser.text(".pg-selected-text")?;
    ensure!(
        picked.contains(&format!("offset {middle}")),
        "clicking the block picked: {picked}"
    );
    browser.click(".pg-free")?;
    let state = check("freeing a middle block")?;
    ensure!(
        state["last"]["ok"] == true && !live_at(&state, middle),
        "freed: {}",
        state["last"]
    );
    // The newest block: every allocator takes it back, bump included.
    let newest = offsets[4];
    browser.click(&format!(".pg-map .pg-block[data-offset='{newest}'] rect"))?;
    browser.click(".pg-free")?;
    let state = check("freeing the newest block")?;
    ensure!(!live_at(&state, newest), "freed: {}", state["last"]);
    // Reallocate the first block to 300 bytes.
    browser.click(&format!(
        ".pg-map .pg-block[data-offset='{}'] rect",
        offsets[0]
    ))?;
    browser.type_into(".pg-resize", "300")?;
    browser.click(".pg-reallocate")?;
    let state = check("reallocating")?;
    let last = &state["last"];
    ensure!(last["ok"] == true, "reallocate: {last}");
    ensure!(live_at(&state, last["offset"].as_u64().unwrap_or(u64::MAX)));
    // A request larger than the region can never be served.
    let state = allocate(browser, 32768, 8)?;
    check("a request larger than the region")?;
    ensure!(state["last"]["cause"] == "unsupported", "{}", state["last"]);
    refused_as_explained(browser, &state)?;
    // Fill the heap until a request is refused; the page must say why, as the numbers do.
    let mut state = allocate(browser, 3000, 8)?;
    while state["last"]["ok"] == true {
        browser.click(".pg-allocate")?;
        state = heap_state(browser)?;
    }
    check("filling the heap")?;
    refused_as_explained(browser, &state)?;
    // Holes everywhere: free every other block of a full heap and ask for two blocks'
    // worth. A heap that reuses freed blocks has the bytes, but not in one piece.
    browser.click(".pg-reset")?;
    let mut state = allocate(browser, 2000, 8)?;
    while state["last"]["ok"] == true {
        browser.click(".pg-allocate")?;
        state = heap_state(browser)?;
    }
    let live: Vec<u64> = state["live"]
        .as_array()
        .context("live blocks")?
        .iter()
        .filter_map(|block| block[0].as_u64())
        .collect();
    for offset in live.iter().step_by(2) {
        browser.click(&format!(".pg-map .pg-block[data-offset='{offset}'] rect"))?;
        browser.click(".pg-free")?;
    }
    check("freeing every other block")?;
    let state = allocate(browser, 4000, 8)?;
    check("asking for two blocks' worth")?;
    // A heap may serve it (bump got its top back when the newest block was freed); a
    // refusal must be explained.
    if state["last"]["ok"] == false {
        refused_as_explained(browser, &state)?;
    }
    if name == "free-list-first" {
        ensure!(
            state["last"]["cause"] == "fragmentation",
            "first fit among 2000-byte holes: {}",
            state["last"]
        );
    }
    Ok(checks)
}

/// Loads a trace, steps it, plays it at speed, pauses it and plays it to the end, with
/// the first allocator (the widget's state after `exercise`) switched to free-list-first.
fn replay(browser: &Browser<'_>, shots: &Path) -> anyhow::Result<()> {
    let registry = heaplab::registry::entries();
    let index = registry
        .iter()
        .position(|e| e.name == "free-list-first")
        .unwrap_or(0);
    browser.click(&format!(".pg-heap option[value='{index}']"))?;
    let workload = trace::Workload::ALL
        .iter()
        .position(|w| *w == trace::Workload::RandomMixed)
        .context("random-mixed is a workload")?;
    browser.click(&format!(".pg-workload option[value='{workload}']"))?;
    browser.type_into(".pg-seed", "7")?;
    browser.click(".pg-load")?;
    for _ in 0..3 {
        browser.click(".pg-step")?;
    }
    let state = agrees(browser).context("after three steps of a trace")?;
    ensure!(state["trace"]["next"] == 3, "{}", state["trace"]);
    browser.click(".pg-speed option[value='10']")?;
    browser.click(".pg-play")?;
    browser.wait_for(
        "the replay to run a few frames",
        "return document.querySelector('.heaplab-playground').heaplab.call('pg_state').trace.next;",
        |next| Ok(next.as_u64().is_some_and(|next| next >= 50)),
    )?;
    browser.click(".pg-play")?;
    let paused = agrees(browser).context("after pausing a replay")?;
    browser.screenshot(
        ".heaplab-playground",
        &shots.join("replay-random-mixed.png"),
    )?;
    let len = paused["trace"]["len"].as_u64().context("a trace length")?;
    let next = paused["trace"]["next"]
        .as_u64()
        .context("a trace position")?;
    ensure!(
        next > 3 && next < len,
        "a paused replay stops midway: {next} of {len}"
    );
    println!("    replay: paused at operation {next} of {len}");
    browser.click(".pg-speed option[value='100']")?;
    browser.click(".pg-play")?;
    browser.wait_for(
        "the replay to stop",
        "return document.querySelector('.pg-play').textContent;",
        |label| Ok(label == "Play"),
    )?;
    let end = agrees(browser).context("at the end of a replay")?;
    ensure!(
        end["trace"]["next"] == len,
        "the replay stopped early: {}",
        end["last"]["message"]
    );
    ensure!(end["live"] == json!([]), "a balanced trace leaves no block");
    Ok(())
}

/// Types a size, picks an alignment, clicks Allocate; the heap's state afterwards.
fn allocate(browser: &Browser<'_>, size: u64, align: u64) -> anyhow::Result<Value> {
    browser.type_into(".pg-size", &size.to_string())?;
    browser.click(&format!(".pg-align option[value='{align}']"))?;
    browser.click(".pg-allocate")?;
    heap_state(browser)
}

fn live_at(state: &Value, offset: u64) -> bool {
    state["live"]
        .as_array()
        .is_some_and(|live| live.iter().any(|block| block[0] == offset))
}

/// The state as the module in the page reports it, asked directly (not the drawing).
fn heap_state(browser: &Browser<'_>) -> anyhow::Result<Value> {
    browser.script("return document.querySelector('.heaplab-playground').heaplab.call('pg_state');")
}

/// Checks that the page draws the heap's state and returns that state: one SVG group
/// per `walk` stretch with its offset, size and kind, rectangles to scale at the right
/// place, and the stats table showing `stats`.
fn agrees(browser: &Browser<'_>) -> anyhow::Result<Value> {
    let page = browser.script(
        "const w = document.querySelector('.heaplab-playground'); \
         const map = w.querySelector('.pg-map'); \
         return { \
           state: w.heaplab.call('pg_state'), \
           perRow: +map.dataset.bytesPerRow, \
           blocks: [...map.querySelectorAll('.pg-block')].map(g => ({ \
             offset: +g.dataset.offset, size: +g.dataset.size, kind: g.dataset.kind, \
             rects: [...g.querySelectorAll('rect')].map(r => [+r.getAttribute('x'), +r.getAttribute('y'), +r.getAttribute('width')]) })), \
           stats: Object.fromEntries([...w.querySelectorAll('.pg-stats td')].map(td => [td.dataset.stat, td.textContent])), \
         };",
    )?;
    let state = page["state"].clone();
    ensure!(
        state["error"].is_null(),
        "the module answered {}",
        state["error"]
    );
    ensure!(
        state["check"].is_null(),
        "the heap's check: {}",
        state["check"]
    );
    let walk = state["blocks"].as_array().context("walk's stretches")?;
    let drawn = page["blocks"].as_array().context("the drawn blocks")?;
    ensure!(
        walk.len() == drawn.len(),
        "{} stretches drawn, the heap walks {}",
        drawn.len(),
        walk.len()
    );
    let per_row = page["perRow"].as_f64().context("bytes per row")?;
    let scale = ROW_WIDTH / per_row;
    for (stretch, block) in walk.iter().zip(drawn) {
        let (offset, size) = (
            stretch[0].as_f64().unwrap_or(-1.0),
            stretch[1].as_f64().unwrap_or(-1.0),
        );
        ensure!(
            block["offset"].as_f64() == Some(offset)
                && block["size"].as_f64() == Some(size)
                && block["kind"] == stretch[2],
            "drawn {block}, the heap walks {stretch}"
        );
        let rects = block["rects"].as_array().context("rectangles")?;
        let width: f64 = rects.iter().filter_map(|r| r[2].as_f64()).sum();
        ensure!(
            (width - size * scale).abs() < 1e-6 * ROW_WIDTH,
            "the block at {offset} is {width} wide for {size} bytes at {scale} per byte"
        );
        let x = rects.first().and_then(|r| r[0].as_f64()).unwrap_or(-1.0);
        ensure!(
            (x - (offset % per_row) * scale).abs() < 1e-6 * ROW_WIDTH,
            "the block at {offset} starts at x = {x}"
        );
    }
    for key in [
        "region",
        "live_blocks",
        "requested",
        "usable",
        "free",
        "largest_free",
        "overhead",
        "high_water",
    ] {
        let shown = page["stats"][key].as_str().unwrap_or("");
        let digits: String = shown
            .chars()
            .take_while(|c| *c != '(')
            .filter(char::is_ascii_digit)
            .collect();
        ensure!(
            digits.parse::<u64>().ok() == state["stats"][key].as_u64(),
            "the table shows {key} = {shown}, the heap says {}",
            state["stats"][key]
        );
    }
    Ok(state)
}

/// Checks that the message of a refused request names the cause that the heap's numbers
/// give: out of memory when fewer bytes are free than asked, fragmentation when enough
/// are free but not in one piece.
fn refused_as_explained(browser: &Browser<'_>, state: &Value) -> anyhow::Result<()> {
    let last = &state["last"];
    ensure!(last["ok"] == false, "a refusal: {last}");
    let shown = browser.script(
        "const m = document.querySelector('.pg-message'); return [m.dataset.cause, m.textContent];",
    )?;
    ensure!(
        shown[0] == last["cause"],
        "the page shows cause {}, the heap {}",
        shown[0],
        last["cause"]
    );
    let text = shown[1].as_str().unwrap_or("");
    let size: u64 = browser
        .script("return +document.querySelector('.pg-size').value;")?
        .as_u64()
        .unwrap_or(0);
    let free = state["stats"]["free"].as_u64().unwrap_or(0);
    let region = state["stats"]["region"].as_u64().unwrap_or(0);
    // Unsupported is the heap's own verdict (beyond its capabilities); exhaustion is
    // told apart from the numbers.
    let (cause, words) = if size > region || last["cause"] == "unsupported" {
        ("unsupported", "can never serve")
    } else if free >= size {
        ("fragmentation", "fragmentation")
    } else {
        ("out-of-memory", "out of memory")
    };
    ensure!(
        last["cause"] == cause && text.contains(words),
        "asking {size} with {free} free bytes: the page says `{text}`"
    );
    Ok(())
}

/// A `chromedriver` this test started, stopped when dropped.
struct Chromedriver {
    process: Child,
    /// The browser it starts.
    chromium: PathBuf,
    url: String,
    agent: ureq::Agent,
}

impl Chromedriver {
    fn start() -> anyhow::Result<Chromedriver> {
        let (chromedriver, chromium) = browser().map_err(|missing| anyhow!(missing))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let process = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", chromedriver.display()))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let driver = Chromedriver {
            process,
            chromium,
            url: format!("http://127.0.0.1:{port}"),
            agent,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = driver.request("GET", "/status", None);
            if ready.is_ok_and(|status| status["ready"] == true) {
                return Ok(driver);
            }
            ensure!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A headless Chromium session.
    fn session(&self) -> anyhow::Result<Browser<'_>> {
        let chrome = json!({ "binary": self.chromium.to_string_lossy(), "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1000,1400", "--hide-scrollbars",
        ] });
        let created = self.request(
            "POST",
            "/session",
            Some(json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome", "goog:chromeOptions": chrome,
            } } })),
        )?;
        let id = created["sessionId"]
            .as_str()
            .context("chromedriver made no session")?;
        Ok(Browser {
            driver: self,
            session: format!("/session/{id}"),
        })
    }

    /// One WebDriver command; its `value`, or the WebDriver error as an error.
    fn request(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.url);
        let mut response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self.agent.post(&url).send_json(body.unwrap_or(json!({}))),
        }
        .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let answer: Value = response.body_mut().read_json()?;
        let value = answer["value"].clone();
        if !status.is_success() {
            bail!(
                "{method} {path}: {} ({})",
                value["error"],
                value["message"].as_str().unwrap_or("")
            );
        }
        Ok(value)
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // Only this test's own chromedriver, by its handle.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A WebDriver session: one headless browser window.
struct Browser<'a> {
    driver: &'a Chromedriver,
    session: String,
}

impl Browser<'_> {
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.driver
            .request(method, &format!("{}{path}", self.session), body)
    }

    fn open(&self, url: &str) -> anyhow::Result<()> {
        self.command("POST", "/url", Some(json!({ "url": url })))
            .map(drop)
    }

    fn close(&self) -> anyhow::Result<()> {
        self.command("DELETE", "", None).map(drop)
    }

    /// Runs `body` as a function in the page and returns what it returns.
    fn script(&self, body: &str) -> anyhow::Result<Value> {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": body, "args": [] })),
        )
    }

    /// Polls `body` until `done` accepts its answer (`Err` stops with the answer).
    fn wait_for(
        &self,
        what: &str,
        body: &str,
        done: impl Fn(&Value) -> Result<bool, ()>,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = self.script(body)?;
            match done(&answer) {
                Ok(true) => return Ok(()),
                Err(()) => bail!("waiting for {what}: {answer}"),
                Ok(false) => {}
            }
            ensure!(Instant::now() < deadline, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn find(&self, css: &str) -> anyhow::Result<String> {
        let found = self
            .command(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .with_context(|| format!("finding `{css}`"))?;
        found[ELEMENT]
            .as_str()
            .map(String::from)
            .ok_or_else(|| anyhow!("no element reference for `{css}`"))
    }

    fn click(&self, css: &str) -> anyhow::Result<()> {
        let element = self.find(css)?;
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .with_context(|| format!("clicking `{css}`"))
        .map(drop)
    }

    fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let element = self.find(css)?;
        self.command(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )?;
        self.command(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .map(drop)
    }

    fn text(&self, css: &str) -> anyhow::Result<String> {
        let element = self.find(css)?;
        let text = self.command("GET", &format!("/element/{element}/text"), None)?;
        Ok(text.as_str().unwrap_or("").to_string())
    }

    /// Saves a PNG of the element `css` to `path`.
    fn screenshot(&self, css: &str, path: &Path) -> anyhow::Result<()> {
        let element = self.find(css)?;
        save_png(
            &self.command("GET", &format!("/element/{element}/screenshot"), None)?,
            path,
        )
    }

    /// Saves a PNG of the whole window to `path`.
    fn window_screenshot(&self, path: &Path) -> anyhow::Result<()> {
        save_png(&self.command("GET", "/screenshot", None)?, path)
    }
}

/// Writes WebDriver's base64 screenshot `answer` to `path`.
fn save_png(answer: &Value, path: &Path) -> anyhow::Result<()> {
    let png = base64::engine::general_purpose::STANDARD
        .decode(answer.as_str().context("a base64 screenshot")?)?;
    std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_script_holds_every_byte_of_the_module() {
        let module: Vec<u8> = b"\0asm".iter().copied().chain(0..=255).collect();
        let script = module_script(&module);
        let assigned = script
            .split("window.heaplabPlaygroundWasm = \"")
            .nth(1)
            .and_then(|rest| rest.split("\";").next())
            .expect("the script assigns one string");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(assigned)
            .expect("the string is base64");
        assert_eq!(decoded, module);
    }

    #[test]
    fn the_widget_loads_the_script_the_build_writes() {
        let widget = std::fs::read_to_string(root().join("book/src/playground/widget.js"))
            .expect("the widget's source");
        assert!(widget.contains(&format!("\"{MODULE_SCRIPT}\"")));
        assert!(widget.contains("window.heaplabPlaygroundWasm"));
    }

    #[test]
    fn file_urls_escape_what_a_url_path_cannot_hold() {
        assert_eq!(
            file_url(Path::new("/work/my book/50%#1")),
            "file:///work/my%20book/50%25%231/"
        );
        assert_eq!(file_url(Path::new("/a-b_c.d~e")), "file:///a-b_c.d~e/");
    }
}
