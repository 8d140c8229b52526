// convzoo explore: the page. Plain JavaScript, no build step, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, info: null, image: null, row: null, top: null, patch: null };
// A row of the table: a leaf layer (its index in the forward pass) or a block (a module's name).
const rowKey = (row) => (row.block !== undefined ? { block: row.block } : { layer: row.index });

function q(params) {
  return new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined)
    ).toString();
}

async function api(path, params, options) {
  const res = await fetch(params ? `${path}?${q(params)}` : path, options);
  if (!res.ok) {
    let msg = `${res.status}`;
    try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return res;
}

function status(text) { $("status").textContent = text || ""; }

async function guard(fn) {
  try { status(""); return await fn(); } catch (e) { status(e.message); return null; }
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node[k] = v;
    else node.setAttribute(k, v);
  });
  children.flat().forEach((c) => node.append(c instanceof Node ? c : String(c)));
  return node;
}

const fmt = (n) => n.toLocaleString("en-US");
function si(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(2) + " G";
  if (n >= 1e6) return (n / 1e6).toFixed(2) + " M";
  if (n >= 1e3) return (n / 1e3).toFixed(1) + " k";
  return String(n);
}
const shape = (s) => (s && s.length ? s.join("×") : "-");

// --- models -------------------------------------------------------------------------------

const GROUPS = { file: "command line", run: "runs", shipped: "trained weights",
                 imagenet: "ImageNet weights (torchvision)", random: "random weights" };

function fillSelect(select, models, chosen) {
  select.innerHTML = "";
  Object.entries(GROUPS).forEach(([kind, title]) => {
    const items = models.filter((m) => m.kind === kind);
    if (!items.length) return;
    const group = el("optgroup", { label: title });
    items.forEach((m) => group.append(el("option", { value: m.id, title: m.fetch || "" },
      m.label + (m.trained || kind === "random" ? "" : " (random weights)") +
      (m.fetch ? " · ImageNet weights: fetch first" : ""))));
    select.append(group);
  });
  select.value = chosen;
}

async function loadModels() {
  const res = await (await api("/api/models")).json();
  fillSelect($("model"), res.models, res.default);
  state.models = res.models;
  const other = res.models.find((m) => m.kind === "shipped" && m.id !== res.default);
  fillSelect($("compare-model"), res.models, other ? other.id : res.default);
  await selectModel(res.default);
}

async function selectModel(id) {
  // The page changes only once the network has loaded: on failure the menu goes back to the
  // network still shown, so the card, the layers and every later click stay consistent.
  status("loading " + id + " …");
  let info;
  try {
    info = await (await api("/api/model", { model: id })).json();
  } catch (e) {
    if (state.model !== null) $("model").value = state.model;
    throw new Error(`${id} did not load: ${e.message}`);
  }
  state.model = id;
  state.info = info;
  status("");
  if ($("compare-model").value === id && state.models) {  // compare with another network
    const other = state.models.find((m) => m.trained && m.id !== id);
    if (other) $("compare-model").value = other.id;
  }
  $("badge").hidden = info.trained;
  $("card").textContent = `${info.model} · ${info.info.paper} · input ${shape(info.input)} · ` +
    `${fmt(info.params)} params · ${si(info.macs)}MACs` + (info.data ? ` · trained on ${info.data}` : "");
  $("depth").value = "";
  renderLayers(info.layers);
  $("draw-box").hidden = info.input[0] !== 1;
  const cls = $("cam-class");
  cls.innerHTML = "";
  cls.append(el("option", { value: "" }, "top class"));
  (info.classes || []).forEach((c, i) => cls.append(el("option", { value: i }, `${i}: ${c}`)));
  state.row = null;
  $("compare").innerHTML = "";
  $("layer-title").textContent = "Layer";
  ["maps-box", "before-box", "bn-box", "dropout-box", "conv-box", "vector-box", "filters-box", "cam-box", "im2col-box", "pool-box"].forEach((b) => { $(b).hidden = true; });
  await loadSamples();
  if (state.image) await predict();
}

function renderLayers(rows) {
  const body = $("layers").tBodies[0];
  body.innerHTML = "";
  rows.forEach((r, i) => {
    const attrs = { class: "layer", "data-type": r.type, "data-name": r.name, tabindex: 0,
                    title: `${r.name}: ${r.type}` + (r.functional ? " (a function called in forward)" : "") +
                      `, receptive field ${r.rf ? shape(r.rf) : "-"}, jump ${shape(r.jump)}` };
    if (r.block !== undefined) attrs["data-block"] = r.block; else attrs["data-index"] = r.index;
    const tr = el("tr", attrs,
      el("td", {}, r.block !== undefined ? i : r.index), el("td", {}, r.name), el("td", {}, r.type),
      el("td", {}, shape(r.shape)), el("td", {}, fmt(r.params)), el("td", {}, si(r.macs)),
      el("td", {}, r.rf ? r.rf[0] : "-"));
    tr.onclick = () => guard(() => selectLayer(r));
    tr.onkeydown = (e) => {  // Enter/space picks the row; the arrows move to the next one
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); tr.click(); }
      const next = e.key === "ArrowDown" ? tr.nextElementSibling : e.key === "ArrowUp" ? tr.previousElementSibling : null;
      if (next) { e.preventDefault(); next.focus(); next.click(); }
    };
    r.tr = tr;
    body.append(tr);
  });
}

async function changeDepth() {
  const depth = $("depth").value || null;
  const info = await (await api("/api/model", { model: state.model, depth })).json();
  state.info.layers = info.layers;
  state.row = null;
  renderLayers(info.layers);
  if (state.image) await showOverview();
}

// --- images -------------------------------------------------------------------------------

async function loadSamples() {
  const box = $("samples");
  box.innerHTML = "";
  const res = await (await api("/api/samples", { model: state.model })).json();
  const labelled = res.samples.some((s) => s.label !== null);
  $("samples-title").textContent = labelled ? `test images of ${state.info.data}` +
    (res.samples.length > res.samples.filter((s) => s.label !== null).length ? " and photos" : "") +
    " (click one)" : res.note;
  res.samples.forEach((s) => {
    const b = el("button", { class: "sample", "data-id": s.id, "data-label": s.class,
                             title: `label: ${s.class}` },
      el("img", { src: `/api/image.png?${q({ image: s.id })}`, alt: s.class }));
    b.onclick = () => guard(() => pickImage(s.id));
    box.append(b);
  });
}

async function pickImage(id) {
  state.image = id;
  document.querySelectorAll(".sample").forEach((b) => b.classList.toggle("on", b.dataset.id === id));
  const img = $("preview");
  img.src = `/api/image.png?${q({ image: id })}`;
  img.hidden = false;
  await predict();
}

async function upload(blob, name) {
  const form = new FormData();
  form.append("image", blob, name);
  const res = await (await api("/api/upload", null, { method: "POST", body: form })).json();
  await pickImage(res.image);
}

async function predict() {
  const res = await (await api("/api/predict", { model: state.model, image: state.image },
                               { method: "POST" })).json();
  state.top = res.top5;
  const list = $("top5");
  list.innerHTML = "";
  res.top5.forEach((t) => list.append(el("li", { class: "top-row", "data-class": t.class },
    el("span", { class: "bar", style: `width:${Math.max(1, Math.round(t.prob * 160))}px` }),
    el("span", { class: "cls" }, t.class), ` ${(100 * t.prob).toFixed(1)}%`)));
  const truth = $("truth");
  if (res.truth !== undefined) {
    const errs = [1, 2, 3, 4, 5].map((k) => `top-${k} ${res.errors["top" + k]}`).join(", ");
    truth.textContent = `true class ${res.truth}: rank ${res.rank} (p = ${res.prob.toFixed(3)}); ` +
      `error of this image: ${errs}`;
  } else {
    truth.textContent = res.trained ? "" : "random weights: the answer means nothing yet" +
      (state.info.fetch ? `; for torchvision's ImageNet weights run \`${state.info.fetch}\` once, then restart` : "");
  }
  await showOverview();
  if (state.row !== null) await selectLayer(state.row);
}

// The whole network on this image: a column of its operations' outputs in forward order, the
// connections that skip ahead (a residual add's shortcut, a concatenation's branches) drawn as
// arcs in the gutter on the left; folded into blocks as the layer table (its depth menu).
async function showOverview() {
  const depth = $("depth").value || null;
  const res = await api("/api/overview.png", { model: state.model, image: state.image, depth });
  const layout = JSON.parse(res.headers.get("X-Layout"));
  const bitmap = await createImageBitmap(await res.blob());
  const palette = hexPalette(layout.palette);
  const ROW = 32, list = el("div", { class: "nodes" });
  layout.nodes.forEach((n, i) => {
    const canvas = el("canvas", { class: "thumb", width: layout.w, height: layout.h });
    paintTile(canvas, bitmap, layout, i, palette);
    const from = n.inputs.filter((j) => j !== i - 1).map((j) => (j < 0 ? "the input" : layout.nodes[j].name));
    const node = el("div", { class: "node", tabindex: 0, "data-node": i, "data-name": n.name,
                             "data-inputs": n.inputs.join(","),
                             title: `${n.name} (${n.type}) ${shape(n.shape)}` + (from.length ? `; also reads ${from.join(", ")}` : "") },
      canvas, el("span", { class: "nname" }, n.name), el("span", { class: "ntype" }, n.type),
      el("span", { class: "nshape" }, shape(n.shape)));
    node.onclick = () => {
      const row = state.info.layers.find((x) => (n.block !== undefined ? x.block === n.block : x.index === n.index));
      if (row) guard(() => selectLayer(row));
    };
    node.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); node.click(); } };
    list.append(node);
  });
  // Arcs for every input that is not the node just above, each in a lane of the gutter.
  const edges = [];
  layout.nodes.forEach((n, i) => n.inputs.forEach((j) => { if (j >= 0 && j !== i - 1) edges.push([j, i]); }));
  edges.sort((a, b) => (a[1] - a[0]) - (b[1] - b[0]));
  const lanes = [];  // per lane, the intervals it holds
  const LANES = Math.min(12, Math.max(1, edges.length)), gutter = 12 + 7 * LANES;
  const paths = edges.map(([a, b]) => {
    let lane = lanes.findIndex((held) => held.every(([x, y]) => b <= x || a >= y));
    if (lane < 0) { lane = lanes.length < LANES ? lanes.length : LANES - 1; lanes[lane] = lanes[lane] || []; }
    lanes[lane].push([a, b]);
    const x = gutter - 10 - 7 * lane, y0 = a * ROW + ROW / 2, y1 = b * ROW + ROW / 2;
    return `<path d="M${gutter} ${y0} H${x + 6} Q${x} ${y0} ${x} ${y0 + 6} V${y1 - 6} Q${x} ${y1} ${x + 6} ${y1} H${gutter}" />`;
  });
  const svg = `<svg class="arcs" width="${gutter}" height="${layout.nodes.length * ROW}">${paths.join("")}</svg>`;
  const box = $("overview");
  box.innerHTML = svg;
  box.append(list);
  $("overview-note").textContent = `${layout.nodes.length} operations` + (depth ? ` (blocks, depth ${depth})` : "") +
    `, ${edges.length} connections that skip ahead · each thumbnail: the output's mean over its channels · click one to open it`;
}

function setupImageInputs() {
  const drop = $("drop");
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer.files[0];
    if (f) guard(() => upload(f, f.name));
  };
  $("file").onchange = (e) => { const f = e.target.files[0]; if (f) guard(() => upload(f, f.name)); };
  const pad = $("draw");
  const ctx = pad.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height); };
  clear();
  let down = false;
  const at = (e) => { const r = pad.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  pad.onpointerdown = (e) => { down = true; ctx.beginPath(); ctx.moveTo(...at(e)); };
  pad.onpointermove = (e) => {
    if (!down) return;
    ctx.lineWidth = 11; ctx.lineCap = "round"; ctx.strokeStyle = "#fff";
    ctx.lineTo(...at(e)); ctx.stroke();
  };
  window.addEventListener("pointerup", () => { down = false; });
  $("draw-clear").onclick = clear;
  $("draw-use").onclick = () => pad.toBlob((b) => guard(() => upload(b, "drawing.png")), "image/png");
}

// --- one layer ----------------------------------------------------------------------------

// Tile ``i`` of a grey mosaic drawn into ``canvas`` through the palette; its grey levels returned.
function paintTile(canvas, bitmap, layout, i, palette) {
  const r = Math.floor(i / layout.cols), c = i % layout.cols;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, layout.pad + c * (layout.w + layout.pad), layout.pad + r * (layout.h + layout.pad),
                layout.w, layout.h, 0, 0, layout.w, layout.h);
  const px = ctx.getImageData(0, 0, layout.w, layout.h);
  const levels = new Uint8Array(layout.w * layout.h);
  for (let k = 0; k < px.data.length; k += 4) {
    levels[k / 4] = px.data[k];
    const v = 3 * px.data[k];
    px.data[k] = palette[v]; px.data[k + 1] = palette[v + 1]; px.data[k + 2] = palette[v + 2];
  }
  ctx.putImageData(px, 0, 0);
  return levels;
}

// The maps of one layer as canvases coloured through the palette; hovering one writes its value
// (lo + level / 255 * (hi - lo): within 1/255 of its range) into ``hover``.
async function drawMaps(box, params, scaleTo, hover) {
  const res = await api("/api/maps.png", params);
  const layout = JSON.parse(res.headers.get("X-Layout"));
  const bitmap = await createImageBitmap(await res.blob());
  box.innerHTML = "";
  const scale = Math.max(1, Math.floor(scaleTo / Math.max(layout.h, layout.w)));
  const palette = hexPalette(layout.palette);
  for (let i = 0; i < layout.n; i++) {
    const ch = layout.first + i;
    const canvas = el("canvas", { class: "map", width: layout.w, height: layout.h,
                                  title: `channel ${ch}`, "data-channel": ch });
    canvas.style.width = `${layout.w * scale}px`;
    canvas.style.height = `${layout.h * scale}px`;
    const levels = paintTile(canvas, bitmap, layout, i, palette);
    canvas.at = (e) => {  // the (row, col) of the map under the pointer
      const b = canvas.getBoundingClientRect();
      return [Math.min(layout.h - 1, Math.floor((e.clientY - b.top) / scale)),
              Math.min(layout.w - 1, Math.floor((e.clientX - b.left) / scale))];
    };
    if (hover) {
      canvas.onmousemove = (e) => {
        const [y, x] = canvas.at(e);
        const v = layout.lo[i] + levels[y * layout.w + x] / 255 * (layout.hi[i] - layout.lo[i]);
        hover.textContent = `channel ${ch}, row ${y}, col ${x}: ≈ ${num(v)}`;
      };
    }
    box.append(canvas);
  }
  const lo = Math.min(...layout.lo), hi = Math.max(...layout.hi);
  const own = layout.n > 1 && !layout.shared;
  box.append(legend(own ? "low" : lo, own ? "high" : hi, palette, own ?
    "each map on its own range, low to high (hover for values)" :
    layout.shared ? "one scale for the whole layer" : ""));
  return { layout, scale };
}

// A map with a window outlined on it (a convolution's patch over its input).
async function outlined(box, params, win, size, caption) {
  const { layout, scale } = await drawMaps(box, params, size);
  const canvas = box.querySelector("canvas");
  const overlay = el("canvas", { class: "map", width: layout.w * scale, height: layout.h * scale });
  const ctx = overlay.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(canvas, 0, 0, layout.w * scale, layout.h * scale);
  ctx.strokeStyle = "#ff2d55";
  ctx.lineWidth = 3;
  ctx.strokeRect(win.left * scale, win.top * scale, win.width * scale, win.height * scale);
  box.innerHTML = "";
  box.append(el("div", { class: "hint" }, caption), overlay);
}

async function selectLayer(row) {
  state.row = row;
  document.querySelectorAll("tr.layer").forEach((tr) => tr.classList.toggle("on", tr === row.tr));
  $("layer-title").textContent = row.block !== undefined ? `Block ${row.name} (${row.type})` :
    `Layer ${row.index}: ${row.name} (${row.type})`;
  $("layer-info").textContent = `output ${shape(row.shape)} · ${fmt(row.params)} params · ` +
    `${fmt(row.macs)} MACs · receptive field ${row.rf ? shape(row.rf) : "-"}, jump ${row.jump ? shape(row.jump) : "-"}`;
  $("filters-box").hidden = row.name !== state.info.first_conv;
  if (!$("filters-box").hidden) {
    const img = $("filters");
    img.onload = () => { img.style.width = `${img.naturalWidth * Math.max(1, Math.floor(200 / img.naturalWidth))}px`; };
    img.src = `/api/filters.png?${q({ model: state.model })}`;
  }
  if (!state.image) { $("layer-info").textContent += " · pick an image to see its maps"; return; }
  const spatial = row.shape.length === 3;
  $("maps-box").hidden = !spatial;
  $("vector-box").hidden = spatial;
  $("conv-box").hidden = true;
  const key = { model: state.model, image: state.image, ...rowKey(row) };
  const ex = await (await api("/api/explain", key)).json();
  const explain = $("explain");
  explain.innerHTML = "";
  ex.lines.forEach((line) => explain.append(el("p", {}, line)));
  explain.dataset.kind = ex.kind;
  $("before-box").hidden = !(ex.before_after && spatial);
  if (ex.before_after && spatial) {
    await drawMaps($("before"), { ...key, which: "input", limit: 16 }, 76);
  }
  $("bn-box").hidden = row.type !== "BatchNorm2d";
  if (row.type === "BatchNorm2d") await showBatchnorm(key);
  $("dropout-box").hidden = row.type !== "Dropout";
  if (row.type === "Dropout") await showDropout(key);
  if (spatial) {
    const { layout } = await drawMaps($("maps"), { model: state.model, image: state.image, ...rowKey(row),
      scale: $("same-scale").checked ? "layer" : null }, 76, $("maps-hover"));
    $("maps-note").textContent = `${layout.n} of ${layout.total} maps, ${layout.h}×${layout.w}` +
      (row.type === "Conv2d" ? " · click a position to see its sum" : "");
    if (row.type === "Conv2d") {
      $("maps").querySelectorAll("canvas[data-channel]").forEach((c) => {
        c.pos = [Math.floor(layout.h / 2), Math.floor(layout.w / 2)];
        const explainAt = () => guard(() => showConvAt(+c.dataset.channel, ...c.pos));
        c.onclick = (e) => { c.pos = c.at(e); explainAt(); };
        c.tabIndex = 0;  // the keyboard: arrows move the position, Enter explains it
        c.onkeydown = (e) => {
          const step = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[e.key];
          if (step) {
            e.preventDefault();
            c.pos = [Math.max(0, Math.min(layout.h - 1, c.pos[0] + step[0])),
                     Math.max(0, Math.min(layout.w - 1, c.pos[1] + step[1]))];
            $("maps-hover").textContent = `channel ${c.dataset.channel}, row ${c.pos[0]}, col ${c.pos[1]}: Enter explains it`;
          } else if (e.key === "Enter" || e.key === " ") { e.preventDefault(); explainAt(); }
        };
      });
    }
  } else {
    await showVector(row);
  }
  $("cam-box").hidden = !state.info.first_conv;  // Grad-CAM needs a convolution
  $("cam").hidden = true;
  $("cam-note").textContent = spatial && !row.functional ? `at ${row.name}` : "at the last convolution";
  $("im2col-box").hidden = row.type !== "Conv2d";
  if (row.type === "Conv2d") { state.patch = null; await showIm2col(); }
  $("pool-box").hidden = row.type !== "MaxPool2d";
  if (row.type === "MaxPool2d") await showPool(false);
}

const hexPalette = (hex) => hex.match(/../g).map((h) => parseInt(h, 16));  // 256 RGB triples
const num = (v) => (Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.01) ? v.toExponential(2) : v.toFixed(3));

// A colour legend: the palette from lo (left) to hi (right), with both values written.
function legend(lo, hi, palette, what) {
  const bar = el("canvas", { class: "legend-bar", width: 256, height: 1 });
  const ctx = bar.getContext("2d");
  const px = ctx.createImageData(256, 1);
  for (let i = 0; i < 256; i++) {
    px.data.set([palette[3 * i], palette[3 * i + 1], palette[3 * i + 2], 255], 4 * i);
  }
  ctx.putImageData(px, 0, 0);
  const label = (v) => (typeof v === "string" ? v : num(v));
  return el("div", { class: "legend" }, el("span", {}, label(lo)), bar, el("span", {}, label(hi)),
            what ? el("span", { class: "hint" }, " " + what) : "");
}

// The network's output: each class's logit z and its softmax probability e^z / sum e^z.
function logitsTable(d) {
  const most = Math.max(...d.logits.map((r) => Math.abs(r.logit)), 1e-12);
  const rows = d.logits.map((r) => el("tr", { class: "logit-row", "data-class": r.class },
    el("td", { class: "cls", title: r.class }, r.class),
    el("td", { class: "zbar" }, el("span", { class: r.logit < 0 ? "neg" : "pos",
      style: `width:${Math.round(50 * Math.abs(r.logit) / most)}%;` +
             (r.logit < 0 ? `right:50%` : `left:50%`) })),
    el("td", { class: "logit" }, r.logit.toFixed(2)),
    el("td", { class: "pbar" }, el("span", { style: `width:${Math.round(100 * r.prob)}%` })),
    el("td", { class: "prob" }, `${(100 * r.prob).toFixed(1)}%`)));
  const shown = d.logits.length < d.total ? ` (the ${d.logits.length} highest of ${d.total})` : "";
  return el("div", {},
    el("p", { class: "eq" }, `softmax: p(class i) = e^z_i / Σ_j e^z_j over the ${d.total} logits z${shown}`),
    el("table", { id: "logits" },
      el("thead", {}, el("tr", {}, el("th", {}, "class"), el("th", {}, "logit z"), el("th", {}, ""),
        el("th", {}, "softmax"), el("th", {}, "p"))),
      el("tbody", {}, rows)));
}

async function showVector(row) {
  const d = await (await api("/api/values", { model: state.model, image: state.image, ...rowKey(row) })).json();
  const box = $("vector");
  box.innerHTML = "";
  $("vector-note").textContent = `a vector of ${d.total} values` + (d.values.length < d.total ? `, the first ${d.values.length} drawn` : "");
  $("vector-hover").textContent = "";
  if (d.logits) { box.append(logitsTable(d)); return; }  // the table says it all
  const palette = hexPalette(d.palette);
  const n = d.values.length;
  const hw = d.from ? d.from[1] * d.from[2] : 0;
  const cols = hw && hw <= 64 ? hw : Math.min(n, n <= 200 ? 20 : 64);
  const rows = Math.ceil(n / cols);
  const cell = Math.max(3, Math.min(22, Math.floor((box.clientWidth - 4) / cols)));
  const canvas = el("canvas", { id: "vector-grid", class: "map", width: cols * cell, height: rows * cell });
  const ctx = canvas.getContext("2d");
  const span = d.max - d.min || 1;
  d.values.forEach((v, k) => {
    const lvl = 3 * Math.round(255 * (v - d.min) / span);
    ctx.fillStyle = `rgb(${palette[lvl]},${palette[lvl + 1]},${palette[lvl + 2]})`;
    ctx.fillRect((k % cols) * cell, Math.floor(k / cols) * cell, cell, cell);
  });
  const hover = $("vector-hover");
  canvas.onmousemove = (e) => {
    const r = canvas.getBoundingClientRect();
    const k = Math.floor((e.clientY - r.top) / cell) * cols + Math.floor((e.clientX - r.left) / cell);
    if (k < 0 || k >= n) return;
    const where = hw ? ` = map ${Math.floor(k / hw)}, row ${Math.floor((k % hw) / d.from[2])}, ` +
      `col ${k % d.from[2]} of the input` : "";
    hover.textContent = `value ${k}${where}: ${num(d.values[k])}`;
  };
  box.append(el("div", { class: "hint" }, d.from ?
    `the ${d.from[0]} maps of ${d.from[1]}×${d.from[2]} it reads, unrolled` +
    (hw <= 64 ? ", one map a row:" : ":") : `${d.total} values, ${cols} a row:`), canvas,
    legend(d.min, d.max, palette, "value (hover a cell)"));
}

async function showCam() {
  const row = state.row;
  const at = row && row.shape.length === 3 && !row.functional ? rowKey(row) : {};
  const res = await api("/api/gradcam.png", { model: state.model, image: state.image,
    class: $("cam-class").value || null, ...at });
  const info = JSON.parse(res.headers.get("X-Info"));
  const img = $("cam");
  img.src = URL.createObjectURL(await res.blob());
  img.hidden = false;
  $("cam-note").textContent = `class ${info.class_name} at ${info.layer}: its ${shape(info.grid)} ` +
    `positions placed at their receptive fields' centres (from pixel ${info.centre.join(", ")}, ` +
    `every ${info.jump.join("×")} px), blended in between`;
}

function grid(values, cls) {
  return el("table", { class: "grid" }, values.map((row, i) => el("tr", {},
    row.map((v, j) => el("td", { class: cls ? cls(i, j, v) : "" },
                         v === null ? "pad" : (+v).toFixed(2))))));
}

async function showIm2col() {
  const d = await (await api("/api/im2col", { model: state.model, image: state.image,
                                              ...rowKey(state.row), patch: state.patch })).json();
  state.patch = d.patch;
  const [ckk, L] = d.cols_shape;
  const box = $("im2col");
  box.innerHTML = "";
  box.append(
    el("p", {}, `input ${shape(d.in_shape)}, kernel ${shape(d.kernel)}, stride ${shape(d.stride)}, ` +
      `padding ${d.padding.join("/")} (top/bottom/left/right)` + (d.groups > 1 ? `, ${d.groups} groups (group 0 shown)` : "")),
    el("p", { class: "eq" }, `im2col(input) = cols ${ckk}×${L}   (C·kh·kw = ${ckk} rows, ` +
      `one column per output position: ${d.out_shape[1]}×${d.out_shape[2]} = ${L})`),
    el("p", { class: "eq" }, `W ${d.weight_shape[0]}×${d.weight_shape[1]}  ·  cols ${ckk}×${L}  =  ` +
      `Y ${d.result_shape[0]}×${d.result_shape[1]}  →  reshaped to ${shape(d.out_shape)}`));
  const slider = el("input", { type: "range", min: 0, max: L - 1, value: d.patch, id: "patch" });
  slider.onchange = () => { state.patch = +slider.value; guard(showIm2col); };
  box.append(el("p", {}, `patch ${d.patch} = column ${d.patch} of cols (output row ${d.row}, col ${d.col}) `, slider));
  const view = el("div", { class: "flex" });
  const input = el("div", {});
  view.append(input,
    el("div", {}, el("div", { class: "hint" }, "its values, channel 0"), grid(d.patch_values)),
    el("div", {}, el("div", { class: "hint" }, "filter 0, channel 0"), grid(d.filter0)));
  box.append(view);
  box.append(el("p", {}, `GEMM column ${d.patch} (first outputs): ${d.gemm_column.map((v) => v.toFixed(3)).join(", ")}`),
    el("p", {}, `the layer's output there: ${d.layer_output.map((v) => v.toFixed(3)).join(", ")} ` +
      `(largest difference ${d.max_abs_diff.toExponential(1)})`));
  await outlined(input, { model: state.model, image: state.image, ...rowKey(state.row), which: "input",
                         channel: 0 }, d.window, 168, "the layer's input, channel 0, patch outlined");
}

// The window sliding along one output row, one position every 0.4 s (CNN Explainer's
// animation): each step the same sum, at the next position. Choosing another layer stops it.
async function slideConv(channel, row, width) {
  const token = {};
  state.sliding = token;
  const layer = state.row;
  for (let col = 0; col < width && state.sliding === token && state.row === layer; col++) {
    await showConvAt(channel, row, col);
    await new Promise((done) => setTimeout(done, 400));
  }
}

// One output of a convolution, clicked on its map: the sum over every input channel of
// weight x input over the window, plus the bias, against the layer's own output there.
async function showConvAt(channel, row, col) {
  const d = await (await api("/api/conv", { model: state.model, image: state.image, ...rowKey(state.row),
                                            channel, row, col })).json();
  $("conv-box").hidden = false;
  const box = $("conv");
  box.innerHTML = "";
  const slide = el("button", { id: "conv-slide" }, "slide the window along this row");
  slide.onclick = () => guard(() => slideConv(channel, row, d.width_out));
  box.append(slide);
  const n = d.terms.length;
  const shown = d.terms.slice(0, 8).map((t) => `(${num(t)})`).join(" + ") +
    (n > 8 ? ` + … (${n - 8} more channels)` : "");
  const win = `${d.kernel.join("×")} window at input row ${d.window.top}, col ${d.window.left}` +
    (d.padding.some((p) => p) ? ` (padding ${d.padding.join("/")}: zeros outside the input)` : "");
  box.append(
    el("p", {}, `output channel ${channel}, row ${row}, col ${col}: the ${win}, in each of the ` +
      `${n} input channel${n > 1 ? "s" : ""} it reads` + (d.groups > 1 ? ` (group of inputs ${d.first_input}…)` : "")),
    el("p", { class: "eq" }, `y = Σ over ${n} input channels c of Σ over the window w[${channel}, c] · x[c]  +  b`),
    el("p", { class: "eq" }, `  = ${shown}  +  ${num(d.bias)} (bias)`),
    el("p", { class: "eq", id: "conv-sum", "data-sum": d.sum, "data-output": d.output },
      `  = ${num(d.sum)};  the layer's output there: ${num(d.output)} (difference ${d.abs_diff.toExponential(1)})`));
  const detail = el("div", { class: "flex" });
  d.detail.forEach((t) => detail.append(el("div", { class: "term" },
    el("div", { class: "hint" }, `input channel ${t.input}: Σ w·x = ${num(t.term)}`),
    el("div", { class: "flex" }, el("div", {}, el("div", { class: "hint" }, "x (input)"), grid(t.values)),
       el("div", {}, el("div", { class: "hint" }, "w (weights)"), grid(t.weights))))));
  box.append(el("p", { class: "hint" }, `the ${d.detail.length} channels whose terms are largest:`), detail);
  const where = el("div", {});
  box.append(where);
  const strongest = d.detail.reduce((a, b) => (Math.abs(b.term) > Math.abs(a.term) ? b : a));
  await outlined(where, { model: state.model, image: state.image, ...rowKey(state.row), which: "input",
                          channel: strongest.input }, d.window, 168,
                 `the window over input channel ${strongest.input} (its largest term)`);
}

// Batch normalization of one channel on a mini-batch: train mode (the batch's mean and
// variance) beside eval mode (the running ones), and torch's own answer for each.
async function showBatchnorm(key) {
  const d = await (await api("/api/batchnorm", key)).json();
  const f = (v) => v.toFixed(4);
  const line = (name, a, b) => el("tr", {}, el("th", {}, name), el("td", {}, a), el("td", {}, b));
  $("bn").innerHTML = "";
  $("bn").append(
    el("p", {}, `channel ${d.channel} (the one whose running variance is largest), at row ${d.at[0]}, ` +
      `col ${d.at[1]}: x = ${f(d.x)}; γ = ${f(d.gamma)}, β = ${f(d.beta)}, ε = ${d.eps}. Train mode ` +
      `uses the mini-batch of ${d.batch} images (this one and ${d.batch - 1} samples): ` +
      `${d.values_per_channel.toLocaleString("en-US")} values of this channel.`),
    el("table", { id: "bn-table", class: "worked" },
      el("tr", {}, el("th", {}, ""), el("th", {}, `train (mini-batch of ${d.batch})`), el("th", {}, "eval (running)")),
      line("μ (mean)", f(d.train.mean), f(d.eval.mean)),
      line("σ² (variance)", f(d.train.var), f(d.eval.var)),
      line("x̂ = (x − μ) / √(σ² + ε)", f(d.train.x_hat), f(d.eval.x_hat)),
      line("y = γ x̂ + β", el("b", { "data-y": d.train.y }, f(d.train.y)), el("b", { "data-y": d.eval.y }, f(d.eval.y))),
      line("torch's F.batch_norm", f(d.train.torch), f(d.eval.torch))));
}

// Dropout's two modes on the first values of the layer's input.
async function showDropout(key) {
  const d = await (await api("/api/dropout", key)).json();
  const f = (v) => num(v);
  $("dropout").innerHTML = "";
  $("dropout").append(
    el("p", {}, `p = ${d.p}: in train mode each value is kept with probability ${1 - d.p} and scaled ` +
      `by 1/(1 − p) = ${d.scale.toFixed(3)}, else zeroed (one random mask shown); eval mode passes it unchanged. ` +
      `Mean of all its inputs ${num(d.mean_input)}, after a train-mode mask ${num(d.mean_train)}: the same on average.`),
    el("table", { id: "dropout-table", class: "worked" },
      el("tr", {}, el("th", {}, "input"), ...d.input.map((v) => el("td", {}, f(v)))),
      el("tr", {}, el("th", {}, "train"), ...d.train.map((v, i) => el("td", { class: d.kept[i] ? "" : "dropped" }, f(v)))),
      el("tr", {}, el("th", {}, "eval"), ...d.eval.map((v) => el("td", {}, f(v))))));
}

async function showPool(example) {
  $("pool-box").hidden = false;
  $("pool-here").hidden = !state.row || state.row.type !== "MaxPool2d";
  const d = example ? await (await api("/api/pool/example")).json() :
    await (await api("/api/pool", { model: state.model, image: state.image, ...rowKey(state.row) })).json();
  const box = $("pool");
  box.innerHTML = "";
  const owner = (r, c) => d.windows.findIndex((w) => r >= w.top && r < w.top + w.values.length &&
                                                    c >= w.left && c < w.left + w.values[0].length);
  const cls = (i, j, v) => {
    const r = d.region_top + i, c = d.region_left + j;
    const k = owner(r, c);
    const kept = d.windows.some((w) => w.top + w.kept[0] === r && w.left + w.kept[1] === c);
    return [k >= 0 ? `w${k % 4}` : "", kept ? "kept" : "", v === null ? "pad" : ""].join(" ");
  };
  const out = [[d.windows[0], d.windows[1]], [d.windows[2], d.windows[3]]]
    .map((row) => row.filter(Boolean).map((w) => w.output)).filter((r) => r.length);
  box.append(el("p", {}, `${d.name}` + (example ? "" : `, channel ${d.channel}`) +
      `: kernel ${shape(d.kernel)}, stride ${shape(d.stride)}; each colour is one window, the bold cell is what it keeps`),
    el("div", { class: "flex" }, el("div", {}, el("div", { class: "hint" }, "input"), grid(d.region, cls)),
       el("div", {}, el("div", { class: "hint" }, "output"), grid(out, (i, j) => `w${(2 * i + j) % 4} kept`))));
}

async function compare() {
  if (!state.image) { status("pick an image first"); return; }
  const res = await (await api("/api/compare", { a: state.model, b: $("compare-model").value,
                                                 image: state.image })).json();
  const [a, b] = res.models;
  const line = (name, f) => el("tr", {}, el("th", {}, name), el("td", {}, f(a)), el("td", {}, f(b)));
  const top = (m) => el("ol", {}, m.top5.map((t) => el("li", {}, `${t.class} ${(100 * t.prob).toFixed(1)}%`)));
  const box = $("compare");
  box.innerHTML = "";
  box.append(el("table", {},
    line("network", (m) => m.label + (m.trained ? "" : " (random weights)")),
    line("input", (m) => shape(m.input)), line("parameters", (m) => fmt(m.params)),
    line("MACs", (m) => si(m.macs)),
    line("latency (batch 1)", (m) => el("span", { class: "latency", title:
      `median of ${m.latency.repeats} timed runs after a warm-up; fastest ${m.latency.min_ms.toFixed(2)} ms, ` +
      `slowest ${m.latency.max_ms.toFixed(2)} ms` },
      `${m.latency.median_ms.toFixed(1)} ms`, el("br"),
      el("span", { class: "hint" }, `median of ${m.latency.repeats}, ${m.latency.min_ms.toFixed(1)}–` +
        `${m.latency.max_ms.toFixed(1)} ms`))),
    line("top-5", top), line("true class rank", (m) => (m.rank === undefined ? "-" : m.rank))));
  const mc = res.machine;
  box.append(el("p", { class: "hint", id: "machine" },
    `timed here, one network after the other: load ${mc.load_1min === null ? "unknown" : mc.load_1min} ` +
    `(1-minute average) on ${mc.cpus} CPUs, torch using ${mc.threads} thread${mc.threads > 1 ? "s" : ""}; ` +
    `a load near or above the CPUs means other work slowed these figures`));
}

window.addEventListener("DOMContentLoaded", () => {
  setupImageInputs();
  $("model").onchange = (e) => guard(() => selectModel(e.target.value));
  $("cam-go").onclick = () => guard(showCam);
  $("same-scale").onchange = () => { if (state.row) guard(() => selectLayer(state.row)); };
  $("pool-example").onclick = () => guard(() => showPool(true));
  $("pool-slide").onclick = () => guard(() => showPool(true));
  $("drop").onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); } };
  $("pool-here").onclick = () => guard(() => showPool(false));
  $("compare-go").onclick = () => guard(compare);
  $("depth").onchange = () => guard(changeDepth);
  guard(loadModels);
});
