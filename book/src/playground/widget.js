// The heap playground widget: a real heaplab allocator, compiled to WebAssembly, drawn
// as a heap map. Embed it with one line where the widget should appear:
//
//   <script src="playground/widget.js" data-heap="free-list-first"></script>
//
// data-heap picks the allocator shown first (any registry name; the reader can switch).
// Everything shown is the module's answer (crates/playground): the map is the heap's
// walk(), the numbers its stats(), the messages its refusals explained. This file only
// draws and forwards clicks.
(() => {
  "use strict";
  const script = document.currentScript;
  const folder = new URL(".", script.src);
  const SVG = "http://www.w3.org/2000/svg";
  const ROW_WIDTH = 720;
  const ROW_GAP = 4;
  const REGIONS = [4096, 16384, 65536];
  const ALIGNS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 4096];
  const SPEEDS = [[1, "1 op"], [10, "10 ops"], [100, "100 ops"]];

  if (!document.querySelector("link[data-heaplab-playground]")) {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = new URL("widget.css", folder).href;
    link.dataset.heaplabPlayground = "";
    document.head.appendChild(link);
  }
  // One download and compilation per page, one instance (one heap) per widget. The
  // module comes as a script holding its bytes in base64 (written by `cargo xtask book`):
  // a browser runs a <script> beside a page opened from file://, where it refuses to
  // fetch() a .wasm, so the book works from the disk as well as from any web server.
  window.heaplabPlaygroundModule ||= new Promise((resolve, reject) => {
    const module = document.createElement("script");
    module.src = new URL("heaplab_playground.wasm.js", folder).href;
    module.onload = () => resolve(window.heaplabPlaygroundWasm);
    module.onerror = () => reject(new Error(`${module.src} could not be loaded`));
    document.head.appendChild(module);
  }).then((base64) => {
    if (typeof base64 !== "string") throw new Error("heaplab_playground.wasm.js holds no module");
    const text = atob(base64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    delete window.heaplabPlaygroundWasm;
    return WebAssembly.compile(bytes);
  });

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    node.append(...children);
    return node;
  };
  const options = (select, items) =>
    select.append(...items.map(([value, text, title]) => {
      const option = el("option", { value }, text);
      if (title) option.title = title;
      return option;
    }));
  const bytes = (n) => `${n.toLocaleString("en-US")} B`;
  // A field's value as the module's 32-bit unsigned argument: what is typed beyond that
  // range is passed as the largest value, so the heap refuses it and says so, instead of
  // a wrapped-around number being served.
  const number = (input) => Math.min(Math.max(Math.floor(+input.value) || 0, 0), 0xffffffff);

  const root = el("div", { class: "heaplab-playground" });
  script.after(root);
  const ui = {
    heap: el("select", { class: "pg-heap", "aria-label": "allocator" }),
    region: el("select", { class: "pg-region", "aria-label": "region size" }),
    reset: el("button", { class: "pg-reset", type: "button" }, "New heap"),
    size: el("input", { class: "pg-size", type: "number", min: "1", value: "96", "aria-label": "size in bytes" }),
    align: el("select", { class: "pg-align", "aria-label": "alignment" }),
    allocate: el("button", { class: "pg-allocate", type: "button" }, "Allocate"),
    selected: el("span", { class: "pg-selected-text" }, "click a used block to pick it"),
    free: el("button", { class: "pg-free", type: "button", disabled: "" }, "Free"),
    resize: el("input", { class: "pg-resize", type: "number", min: "1", value: "200", "aria-label": "new size in bytes" }),
    reallocate: el("button", { class: "pg-reallocate", type: "button", disabled: "" }, "Reallocate"),
    workload: el("select", { class: "pg-workload", "aria-label": "workload" }),
    seed: el("input", { class: "pg-seed", type: "number", min: "0", value: "1", "aria-label": "seed" }),
    load: el("button", { class: "pg-load", type: "button" }, "Load trace"),
    step: el("button", { class: "pg-step", type: "button", disabled: "" }, "Step"),
    play: el("button", { class: "pg-play", type: "button", disabled: "" }, "Play"),
    speed: el("select", { class: "pg-speed", "aria-label": "operations per frame" }),
    progress: el("span", { class: "pg-progress" }),
    map: document.createElementNS(SVG, "svg"),
    message: el("div", { class: "pg-message", role: "status" }, "loading the allocators…"),
    stats: el("table", { class: "pg-stats" }),
  };
  options(ui.region, REGIONS.map((r) => [r, `${r / 1024} KiB`]));
  ui.region.value = "4096";
  options(ui.align, ALIGNS.map((a) => [a, `${a}`]));
  ui.align.value = "8";
  options(ui.speed, SPEEDS.map(([n, text]) => [n, `${text} a frame`]));
  ui.map.setAttribute("class", "pg-map");
  root.append(
    el("div", { class: "pg-row" }, el("label", {}, "allocator ", ui.heap), el("label", {}, "region ", ui.region), ui.reset),
    el("div", { class: "pg-row" }, el("label", {}, "size ", ui.size), el("label", {}, "align ", ui.align), ui.allocate),
    el("div", { class: "pg-row" }, ui.selected, ui.free, el("label", {}, "to ", ui.resize), ui.reallocate),
    el("div", { class: "pg-row" }, el("label", {}, "trace ", ui.workload), el("label", {}, "seed ", ui.seed),
      ui.load, ui.step, ui.play, ui.speed, ui.progress),
    ui.map,
    el("div", { class: "pg-legend" },
      ...["used", "free", "overhead"].map((kind) => el("span", { class: `pg-key pg-${kind}` }, kind))),
    ui.message,
    ui.stats,
  );

  let call = null;
  let state = null;
  let selected = null;
  let playing = false;

  window.heaplabPlaygroundModule
    .then((module) => WebAssembly.instantiate(module, {}))
    .then((instance) => start(instance.exports))
    .catch((error) => {
      root.dataset.error = String(error);
      ui.message.textContent = `The playground could not start: ${error}`;
      ui.message.className = "pg-message pg-refused";
    });

  function start(exports) {
    const decoder = new TextDecoder();
    call = (name, ...args) => {
      const length = exports[name](...args);
      const answer = new Uint8Array(exports.memory.buffer, exports.pg_output(), length);
      return JSON.parse(decoder.decode(answer));
    };
    const catalog = call("pg_catalog");
    options(ui.heap, catalog.heaps.map((h, i) => [i, h.name, h.summary]));
    const preferred = catalog.heaps.findIndex((h) => h.name === script.dataset.heap);
    ui.heap.value = String(Math.max(preferred, 0));
    options(ui.workload, catalog.workloads.map((w, i) => [i, w]));
    // What tests and the curious console read: the module's own answers, not the drawing.
    root.heaplab = { call, catalog };
    ui.heap.addEventListener("change", reopen);
    ui.region.addEventListener("change", reopen);
    ui.reset.addEventListener("click", reopen);
    ui.allocate.addEventListener("click", () => act("pg_allocate", number(ui.size), +ui.align.value));
    ui.free.addEventListener("click", () => act("pg_free", selected));
    ui.reallocate.addEventListener("click", () => act("pg_reallocate", selected, number(ui.resize)));
    ui.load.addEventListener("click", () => act("pg_load_trace", +ui.workload.value, number(ui.seed), 1));
    ui.step.addEventListener("click", () => act("pg_step", 1));
    ui.play.addEventListener("click", () => (playing ? pause() : play()));
    const pick = (event) => {
      const block = event.target.closest(".pg-block");
      if (block && block.dataset.kind === "used") {
        selected = +block.dataset.offset;
        draw();
      }
    };
    ui.map.addEventListener("click", pick);
    ui.map.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        pick(event);
      }
    });
    reopen();
    root.dataset.ready = "true";
  }

  function reopen() {
    pause();
    act("pg_open", +ui.heap.value, +ui.region.value);
  }

  function act(name, ...args) {
    const answer = call(name, ...args);
    if (answer.error) {
      ui.message.textContent = answer.error;
      ui.message.className = "pg-message pg-refused";
      return answer;
    }
    state = answer;
    if (state.last && state.last.ok && state.last.op !== "free") selected = state.last.offset;
    draw();
    return answer;
  }

  function play() {
    playing = true;
    ui.play.textContent = "Pause";
    const frame = () => {
      if (!playing) return;
      act("pg_step", +ui.speed.value);
      const last = state.last;
      const refused = last && !last.ok && last.cause !== "skipped";
      if (refused || !state.trace || state.trace.next >= state.trace.len) pause();
      else requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  function pause() {
    playing = false;
    ui.play.textContent = "Play";
  }

  function draw() {
    if (!state.live.some(([offset]) => offset === selected)) selected = null;
    drawMap();
    drawSelection();
    drawTrace();
    drawMessage();
    drawStats();
  }

  // The region to scale, in rows read left to right, top to bottom like text.
  function drawMap() {
    const rows = Math.min(32, Math.max(1, Math.ceil(state.region / 1024)));
    const perRow = Math.ceil(state.region / rows);
    const scale = ROW_WIDTH / perRow;
    const rowHeight = rows > 16 ? 10 : 18;
    ui.map.setAttribute("viewBox", `0 0 ${ROW_WIDTH} ${rows * (rowHeight + ROW_GAP) - ROW_GAP}`);
    ui.map.dataset.bytesPerRow = perRow;
    const requested = new Map(state.live.map(([offset, size, align]) => [offset, [size, align]]));
    const groups = state.blocks.map(([offset, size, kind]) => {
      const group = document.createElementNS(SVG, "g");
      const classes = ["pg-block", `pg-${kind}`];
      if (offset === selected) classes.push("pg-selected");
      group.setAttribute("class", classes.join(" "));
      if (kind === "used") {
        // Reachable by keyboard too: Tab to a block, Enter picks it.
        group.setAttribute("tabindex", "0");
        group.setAttribute("role", "button");
      }
      Object.assign(group.dataset, { offset, size, kind });
      const title = document.createElementNS(SVG, "title");
      const asked = requested.get(offset);
      title.textContent = `${kind} at offset ${offset}: ${bytes(size)}` +
        (asked ? ` (asked ${bytes(asked[0])}, align ${asked[1]})` : "");
      group.append(title);
      // A stretch that crosses the end of a row goes on at the start of the next one.
      for (let at = offset; at < offset + size;) {
        const row = Math.floor(at / perRow);
        const end = Math.min(offset + size, (row + 1) * perRow);
        const rect = document.createElementNS(SVG, "rect");
        rect.setAttribute("x", (at - row * perRow) * scale);
        rect.setAttribute("y", row * (rowHeight + ROW_GAP));
        rect.setAttribute("width", (end - at) * scale);
        rect.setAttribute("height", rowHeight);
        group.append(rect);
        at = end;
      }
      return group;
    });
    ui.map.replaceChildren(...groups);
  }

  function drawSelection() {
    const block = state.live.find(([offset]) => offset === selected);
    ui.selected.textContent = block
      ? `block at offset ${block[0]}: ${bytes(block[1])}, align ${block[2]}`
      : "click a used block to pick it";
    ui.free.disabled = ui.reallocate.disabled = !block;
  }

  function drawTrace() {
    const trace = state.trace;
    ui.step.disabled = ui.play.disabled = !trace || trace.next >= trace.len;
    ui.progress.textContent = trace
      ? `${trace.workload} (seed ${trace.seed}): ${trace.next} of ${trace.len} operations, ` +
        `in the ${bytes(state.region)} region the trace suggests`
      : "";
  }

  function drawMessage() {
    const last = state.last;
    const lines = [];
    if (last) lines.push((last.trace_op === null ? "" : `trace op ${last.trace_op}: `) + last.message);
    else lines.push(`A new ${state.heap} heap over ${bytes(state.region)}.`);
    if (state.check) lines.push(`check() failed: ${state.check}`);
    ui.message.textContent = lines.join(" ");
    ui.message.className = "pg-message" + (last && !last.ok ? " pg-refused" : "");
    ui.message.dataset.cause = (last && last.cause) || "";
  }

  function drawStats() {
    const s = state.stats;
    const reserved = s.region - s.free;
    const percent = (x) => `${(100 * x).toFixed(1)}%`;
    const rows = [
      ["region", "region", bytes(s.region)],
      ["live_blocks", "live blocks", `${s.live_blocks}`],
      ["requested", "requested", bytes(s.requested)],
      ["usable", "usable (used)", bytes(s.usable)],
      ["free", "free", bytes(s.free)],
      ["largest_free", "largest free", bytes(s.largest_free)],
      ["overhead", "overhead", bytes(s.overhead)],
      ["high_water", "high water", bytes(s.high_water)],
      ["internal_fragmentation", "internal fragmentation",
        `${bytes(s.internal_fragmentation)}` + (reserved ? ` (${percent(s.internal_fragmentation / reserved)} of reserved)` : "")],
      ["external_fragmentation", "external fragmentation", percent(s.external_fragmentation)],
    ];
    // Two figures a line: name, value, name, value.
    const lines = [];
    for (let i = 0; i < rows.length; i += 2) {
      lines.push(el("tr", {}, ...rows.slice(i, i + 2).flatMap(([key, name, value]) =>
        [el("th", {}, name), el("td", { "data-stat": key }, value)])));
    }
    ui.stats.replaceChildren(...lines);
  }
})();
