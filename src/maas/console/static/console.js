// The console's behaviour: every change is a call to the control or inference API (the same routes the CLI
// and SDK use), sent with the session's CSRF token; pages are re-read from the server afterwards.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const canWrite = () => document.body.dataset.canWrite === "true";

function headers(json) {
  const h = {"X-Requested-With": "maas-console", "X-CSRF-Token": csrf()};
  if (json) h["Content-Type"] = "application/json";
  return h;
}

function flash(message, kind = "error") {
  const box = $("#flash");
  box.textContent = message;
  box.className = kind;
  box.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 10000 : 4000);
}

async function api(method, url, body) {
  const init = {method, headers: headers(body !== undefined), credentials: "same-origin"};
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(url, init);
  const text = await response.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = {error: text}; }
  if (!response.ok) {
    const err = doc && (doc.error && (doc.error.message || doc.error)) || `${response.status} ${response.statusText}`;
    throw new Error(typeof err === "string" ? err : JSON.stringify(err));
  }
  return doc;
}

// Run `action`; a failure is shown in the flash box instead of being lost.
function guarded(action) {
  return async (event) => {
    if (event) event.preventDefault();
    try { await action(event); } catch (e) { flash(e.message); }
  };
}

function on(sel, type, action) {
  document.addEventListener(type, (event) => {
    const target = event.target.closest(sel);
    if (target) guarded((ev) => action(target, ev))(event);
  });
}

// htmx requests (the polled fragments) carry the same headers.
document.addEventListener("htmx:configRequest", (event) => {
  Object.assign(event.detail.headers, headers(false));
});

// --- signing in and out ------------------------------------------------------------------------------------
on("#sign-in", "submit", async (form) => {
  await api("POST", "/console/login", {token: form.token.value});
  location.assign(form.dataset.next || "/console/");
});
on("#sign-out", "click", async () => {
  await api("POST", "/console/logout", {});
  location.assign("/console/login");
});

// --- versions: aliases and tags -------------------------------------------------------------------------
on("#alias-form", "submit", async (form) => {
  const alias = form.alias.value.trim();
  const {model, version} = form.dataset;
  if (!confirm(`Point ${model}@${alias} at v${version}? Requests to @${alias} will be served by v${version}.`)) return;
  await api("PUT", `/api/v1/models/${encodeURIComponent(model)}/aliases/${encodeURIComponent(alias)}`,
            {version: Number(version)});
  location.reload();
});
on("#tag-form", "submit", async (form) => {
  await api("PATCH", `/api/v1/versions/${form.dataset.ref}/tags`, {tags: {[form.key.value.trim()]: form.value.value}});
  location.reload();
});
on(".remove-tag", "click", async (button) => {
  await api("PATCH", `/api/v1/versions/${button.dataset.ref}/tags`, {remove: [button.dataset.tag]});
  location.reload();
});

// --- traffic and rollouts ------------------------------------------------------------------------------
on("#split-form", "submit", async (form) => {
  const arms = $$("tr.arm", form).map((row) => ({
    version: Number($("select", row).value), weight: Number($("input", row).value)}));
  await api("PUT", `/api/v1/models/${encodeURIComponent(form.dataset.model)}/traffic`, {arms});
  flash("split saved", "ok");
  setTimeout(() => location.reload(), 300);
});
on("#add-arm", "click", async () => {
  $("#arms tbody").append($("#arm-template").content.cloneNode(true));
});
on(".remove-arm", "click", async (button) => { button.closest("tr").remove(); });
on("#clear-split", "click", async () => {
  const model = $("#split-form").dataset.model;
  if (!confirm(`Clear the split of ${model}? Every request will go to its default version.`)) return;
  await api("DELETE", `/api/v1/models/${encodeURIComponent(model)}/traffic`);
  location.reload();
});
on("#rollout-form", "submit", async (form) => {
  const steps = form.steps.value.split(",").map((s) => Number(s.trim())).filter((n) => !Number.isNaN(n));
  await api("POST", `/api/v1/models/${encodeURIComponent(form.dataset.model)}/rollout`,
            {to: Number(form.to.value), steps, interval_s: Number(form.interval_s.value)});
  location.reload();
});
on(".rollout-verb", "click", async (button) => {
  if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
  const model = $("#rollout").dataset.model;
  await api("POST", `/api/v1/models/${encodeURIComponent(model)}/rollout/${button.dataset.verb}`, {});
  location.reload();
});

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.append(td);
}
const fmt = (x, digits = 3) => (x === null || x === undefined ? "-" : Number(x).toPrecision(digits));

async function refreshArmFigures(table) {
  const data = await api("GET", `/console/monitoring/data?model=${encodeURIComponent(table.dataset.model)}`);
  const body = $("tbody", table);
  body.replaceChildren();
  for (const [version, points] of Object.entries(data.versions).sort()) {
    const p = points[points.length - 1];
    if (!p) continue;
    const row = document.createElement("tr");
    row.dataset.version = version;
    [`v${version}`, fmt(p.requests_per_s), fmt(p.p50_ms), fmt(p.p99_ms), fmt(p.errors_per_s), fmt(p.queue_depth)]
      .forEach((t) => cell(row, t));
    body.append(row);
  }
}

// --- monitoring ----------------------------------------------------------------------------------------
function lineChart(canvas, datasets, unit) {
  return new Chart(canvas, {
    type: "line",
    data: {labels: [], datasets: datasets.map((label) => ({label, data: [], pointRadius: 2, tension: 0.2, spanGaps: true}))},
    options: {animation: false, responsive: true, maintainAspectRatio: false,
              scales: {y: {beginAtZero: true, title: {display: Boolean(unit), text: unit}}}},
  });
}

function startMonitoring(box) {
  const model = box.dataset.model;
  if (!model) return;
  const charts = {
    rate: lineChart($("#chart-rate"), ["requests/s", "errors/s"], "per second"),
    latency: lineChart($("#chart-latency"), ["p50", "p95", "p99"], "ms"),
    queue: lineChart($("#chart-queue"), ["queue depth"], "requests"),
  };
  const fields = {rate: ["requests_per_s", "errors_per_s"], latency: ["p50_ms", "p95_ms", "p99_ms"], queue: ["queue_depth"]};
  const tick = async () => {
    try {
      const data = await api("GET", `/console/monitoring/data?model=${encodeURIComponent(model)}`);
      const labels = data.series.map((p) => new Date(p.at * 1000).toLocaleTimeString());
      for (const [name, chart] of Object.entries(charts)) {
        chart.data.labels = labels;
        fields[name].forEach((f, i) => { chart.data.datasets[i].data = data.series.map((p) => p[f]); });
        chart.update();
      }
      box.dataset.points = String(data.series.length);
    } catch (e) { flash(e.message); }
  };
  tick();
  setInterval(tick, Math.max(1, Number(box.dataset.interval)) * 1000);
}

let driftChart = null;
on("#drift-form", "submit", async (form) => {
  const model = form.dataset.model;
  const report = await api("GET", `/api/v1/models/${encodeURIComponent(model)}/drift?since=${encodeURIComponent(form.since.value)}`);
  $("#drift-summary").textContent = `${report.current_rows} requests since ${report.since} against ${report.reference_rows} reference rows `
    + `(${report.reference_source}): ${report.dataset_drift ? "the data set drifted" : "no data set drift"}, `
    + `${Math.round(report.share_drifted * 100)}% of features drifted.`;
  const body = $("#drift-table tbody");
  body.replaceChildren();
  for (const f of report.features) {
    const row = document.createElement("tr");
    row.dataset.feature = f.column;
    if (f.drifted) row.className = "drifted";
    [f.column, f.method, fmt(f.statistic), fmt(f.threshold), f.drifted ? "drifted" : "no"].forEach((t) => cell(row, t));
    body.append(row);
  }
  if (driftChart) driftChart.destroy();
  driftChart = new Chart($("#chart-drift"), {
    type: "bar",
    data: {labels: report.features.map((f) => f.column),
           datasets: [{label: "score (p-value or distance)", data: report.features.map((f) => f.statistic),
                       backgroundColor: report.features.map((f) => (f.drifted ? "#d9534f" : "#5b8def"))}]},
    options: {animation: false, plugins: {legend: {display: false}}},
  });
});

// --- report charts (server-rendered data, drawn with Chart.js) ------------------------------------------
function drawReportCharts() {
  if (typeof Chart === "undefined") return;
  for (const canvas of $$("canvas[data-chart]")) {
    const spec = JSON.parse(canvas.dataset.chart);
    new Chart(canvas, {
      type: "bar",
      data: {labels: spec.labels, datasets: Object.entries(spec.series).map(([label, data]) => ({label, data}))},
      options: {animation: false, responsive: true, maintainAspectRatio: false,
                scales: {y: {beginAtZero: true, title: {display: Boolean(spec.unit), text: spec.unit}}}},
    });
    canvas.dataset.drawn = "true";
  }
}

// --- jobs ----------------------------------------------------------------------------------------------
on(".job-form", "submit", async (form) => {
  const params = {};
  for (const field of form.elements) {
    if (!field.name) continue;
    if (field.type === "checkbox") { if (field.checked) params[field.name] = true; continue; }
    const value = field.value.trim();
    if (value === "") continue;
    if (field.name === "config") params.config = JSON.parse(value);
    else if (field.type === "number") params[field.name] = Number(value);
    else params[field.name] = value;
  }
  const job = await api("POST", "/api/v1/jobs", {kind: form.dataset.kind, params});
  location.assign(`/console/jobs/${job.id}`);
});
on(".cancel-job", "click", async (button) => {
  await api("POST", `/api/v1/jobs/${button.dataset.job}/cancel`, {});
  flash("cancel requested", "ok");
});

// --- keys ----------------------------------------------------------------------------------------------
on("#key-form", "submit", async (form) => {
  const body = {name: form.name.value.trim(), scope: form.scope.value};
  const models = form.models.value.split(",").map((s) => s.trim()).filter(Boolean);
  if (models.length) body.models = models;
  if (form.expires.value.trim()) body.expires = form.expires.value.trim();
  if (form.rate.value.trim()) body.rate = form.rate.value.trim();
  const key = await api("POST", "/api/v1/keys", body);
  $("#new-token").textContent = key.token;
  $("#new-key").hidden = false;
  const row = document.createElement("tr");
  row.dataset.key = key.id;
  [key.id, key.name, key.scope, (key.models || []).join(", "), key.expires_at || "never", key.rate || "-", "-", "active", ""]
    .forEach((t) => cell(row, t));
  $("#keys tbody").append(row);
});
on(".revoke-key", "click", async (button) => {
  if (!confirm(`Revoke key ${button.dataset.key} (${button.dataset.name})? Every client and console session using it stops working.`)) return;
  await api("DELETE", `/api/v1/keys/${button.dataset.key}`);
  location.reload();
});

// --- the lineage graph ---------------------------------------------------------------------------------
function drawLineage(box) {
  const versions = JSON.parse($("#lineage-data").textContent);
  const known = new Set(versions.map((v) => v.version));
  const elements = versions.map((v) => ({data: {
    id: `v${v.version}`, label: `v${v.version}${v.aliases.length ? " @" + v.aliases.join(" @") : ""}`,
    archived: v.state !== "ready"}}));
  for (const v of versions) {
    if (v.parent && known.has(v.parent)) {
      const params = Object.entries(v.params || {}).map(([k, x]) => `${k}=${typeof x === "object" ? JSON.stringify(x) : x}`).join(" ");
      elements.push({data: {id: `e${v.version}`, source: `v${v.parent}`, target: `v${v.version}`,
                            label: `${v.transform || "derived"}${params ? " " + params : ""}`}});
    }
  }
  box.style.height = `${Math.min(600, 140 + 30 * Math.ceil(versions.length / 6))}px`;
  const cy = cytoscape({
    container: box, elements, autoungrabify: true,
    layout: {name: "breadthfirst", directed: true, spacingFactor: 1.4, padding: 10},
    style: [
      {selector: "node", style: {label: "data(label)", "background-color": "#5b8def", color: "#222",
                                 "font-size": 11, "text-valign": "bottom", "text-margin-y": 4, width: 18, height: 18}},
      {selector: "node[?archived]", style: {"background-color": "#bbb"}},
      {selector: "edge", style: {label: "data(label)", "curve-style": "bezier", "target-arrow-shape": "triangle",
                                 width: 1.5, "font-size": 10, "text-rotation": "none", "text-background-color": "#fff",
                                 "text-background-opacity": 0.8, "line-color": "#999", "target-arrow-color": "#999"}},
    ],
  });
  const model = location.pathname.split("/")[3];
  cy.on("tap", "node", (event) => { location.assign(`/console/models/${model}/versions/${event.target.id().slice(1)}`); });
  box.dataset.nodes = String(cy.nodes().length);
  box.dataset.edges = String(cy.edges().length);
}

// --- the playground ------------------------------------------------------------------------------------
const INTEGER = new Set(["INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"]);
let scoresChart = null;
let attributionChart = null;

function tabularInputs(form) {
  return $$("fieldset[data-input]", form).map((set) => {
    const spec = JSON.parse(set.dataset.shape);
    const datatype = set.dataset.datatype;
    const values = $$("input", set).map((i) => (datatype === "BYTES" ? i.value
      : datatype === "BOOL" ? i.value === "1" || i.value === "true" : Number(i.value)));
    const shape = spec.length > 1 ? [1, values.length] : [values.length];
    return {name: set.dataset.input, datatype, shape, data: values};
  });
}

function imageInput(holder) {
  const shape = JSON.parse(holder.dataset.shape);  // [N, C, H, W] or [N, H, W, C]
  const channelsFirst = shape[1] === 1 || shape[1] === 3;
  const [c, h, w] = channelsFirst ? [shape[1], shape[2], shape[3]] : [shape[3], shape[1], shape[2]];
  const small = document.createElement("canvas");
  small.width = w > 0 ? w : 28;
  small.height = h > 0 ? h : 28;
  const ctx = small.getContext("2d");
  ctx.drawImage($("#draw"), 0, 0, small.width, small.height);
  const pixels = ctx.getImageData(0, 0, small.width, small.height).data;
  const channels = c > 0 ? c : 1;
  const data = new Array(channels * small.width * small.height);
  const plane = small.width * small.height;
  const scale = holder.dataset.datatype === "UINT8" ? 1 : 1 / 255;
  for (let i = 0; i < plane; i++) {
    for (let k = 0; k < channels; k++) {
      const value = channels === 1 ? (pixels[4 * i] + pixels[4 * i + 1] + pixels[4 * i + 2]) / 3 : pixels[4 * i + k];
      data[channelsFirst ? k * plane + i : i * channels + k] = value * scale;
    }
  }
  const outShape = channelsFirst ? [1, channels, small.height, small.width] : [1, small.height, small.width, channels];
  return [{name: holder.dataset.input, datatype: holder.dataset.datatype, shape: outShape, data}];
}

function showPrediction(answer) {
  const labels = JSON.parse($("#labels").textContent);
  $("#result").hidden = false;
  $("#raw").textContent = JSON.stringify(answer, null, 1).slice(0, 20000);
  const outputs = answer.outputs || [];
  const scored = outputs.find((o) => o.datatype !== "BYTES" && o.data.length > 1 && (!labels.length || o.data.length === labels.length)) || outputs[0];
  if (!scored) return;
  const scores = scored.data.map(Number);
  const names = labels.length === scores.length ? labels : scores.map((_, i) => String(i));
  let best = 0;
  scores.forEach((s, i) => { if (s > scores[best]) best = i; });
  const shown = (o) => (o.data.length > 12 ? `[${o.data.length} values]`
    : `[${o.data.map((x) => (typeof x === "number" && !Number.isInteger(x) ? fmt(x) : x)).join(", ")}]`);
  const text = outputs.map((o) => `${o.name} = ${shown(o)}`).join("; ");
  $("#prediction").textContent = scores.length > 1 ? `${names[best]} (score ${fmt(scores[best])}) · ${text}` : text;
  $("#prediction").dataset.label = scores.length > 1 ? names[best] : String(scored.data[0]);
  if (scoresChart) scoresChart.destroy();
  scoresChart = new Chart($("#chart-scores"), {
    type: "bar", data: {labels: names, datasets: [{label: scored.name, data: scores, backgroundColor: "#5b8def"}]},
    options: {animation: false, plugins: {legend: {display: false}}},
  });
}

function showExplanation(answer, inputNames) {
  $("#explanation").hidden = false;
  $("#explain-method").textContent = `${answer.method} · target ${JSON.stringify(answer.target)}`;
  const heatmaps = (answer.parameters || {}).heatmap_png;
  const img = $("#heatmap");
  if (heatmaps && heatmaps.length) {
    img.src = `data:image/png;base64,${heatmaps[0]}`;
    img.hidden = false;
    return;
  }
  img.hidden = true;
  const first = answer.attributions[0];
  const width = first.shape[first.shape.length - 1];
  const values = first.data.slice(0, width);
  if (attributionChart) attributionChart.destroy();
  attributionChart = new Chart($("#chart-attributions"), {
    type: "bar",
    data: {labels: values.map((_, i) => `${inputNames[0] || first.name}[${i}]`),
           datasets: [{label: "attribution", data: values, backgroundColor: values.map((x) => (x >= 0 ? "#d9534f" : "#5b8def"))}]},
    options: {animation: false, indexAxis: "y", plugins: {legend: {display: false}}},
  });
}

function startPlayground(box) {
  const model = encodeURIComponent(box.dataset.model);
  const infer = async (inputs) => showPrediction(await api("POST", `/v2/models/${model}/infer`, {inputs}));
  const explain = async (inputs, image) => {
    const body = {inputs, parameters: image ? {heatmap_png: true} : {}};
    showExplanation(await api("POST", `/v2/models/${model}/explain`, body), inputs.map((i) => i.name));
  };
  const form = $("#tabular-form");
  if (form) {
    form.addEventListener("submit", guarded(() => infer(tabularInputs(form))));
    $("#explain-button").addEventListener("click", guarded(() => explain(tabularInputs(form), false)));
  }
  const canvas = $("#draw");
  if (canvas) {
    const holder = $(".image-input");
    const ctx = canvas.getContext("2d");
    const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); };
    clear();
    let drawing = false;
    const point = (e) => { const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height]; };
    canvas.addEventListener("pointerdown", (e) => { drawing = true; ctx.beginPath(); ctx.moveTo(...point(e)); });
    canvas.addEventListener("pointermove", (e) => {
      if (!drawing) return;
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 22; ctx.lineCap = "round"; ctx.lineJoin = "round";
      ctx.lineTo(...point(e)); ctx.stroke();
    });
    window.addEventListener("pointerup", () => { drawing = false; });
    $("#clear-canvas").addEventListener("click", clear);
    $("#image-file").addEventListener("change", guarded(async (e) => {
      const file = e.target.files[0];
      if (!file) return;
      const bitmap = await createImageBitmap(file);
      clear();
      ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    }));
    $("#predict-image").addEventListener("click", guarded(() => infer(imageInput(holder))));
    $("#explain-image").addEventListener("click", guarded(() => explain(imageInput(holder), true)));
  }
  const chat = $("#chat-form");
  if (chat) {
    const messages = [];
    chat.addEventListener("submit", guarded(async () => {
      const text = chat.message.value;
      chat.message.value = "";
      messages.push({role: "user", content: text});
      const log = $("#chat-log");
      const mine = document.createElement("p"); mine.className = "user"; mine.textContent = text; log.append(mine);
      const theirs = document.createElement("p"); theirs.className = "assistant"; log.append(theirs);
      const response = await fetch("/v1/chat/completions", {method: "POST", headers: headers(true), credentials: "same-origin",
        body: JSON.stringify({model: box.dataset.model, messages, stream: true,
                              temperature: Number(chat.temperature.value || 0.7)})});
      if (!response.ok) throw new Error((await response.json()).error?.message || response.statusText);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += value;
        const events = buffer.split("\n\n");
        buffer = events.pop();
        for (const event of events) {
          const data = event.replace(/^data: ?/, "");
          if (data === "[DONE]") continue;
          const delta = JSON.parse(data).choices[0]?.delta?.content;
          if (delta) theirs.textContent += delta;
        }
      }
      theirs.dataset.done = "true";
      messages.push({role: "assistant", content: theirs.textContent});
    }));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const lineage = $("#lineage");
  if (lineage) drawLineage(lineage);
  drawReportCharts();
  const charts = $("#charts");
  if (charts) startMonitoring(charts);
  const figures = $("#arm-figures");
  if (figures) {
    const tick = () => refreshArmFigures(figures).catch((e) => flash(e.message));
    tick();
    setInterval(tick, 2000);
  }
  const playground = $("#playground");
  if (playground) startPlayground(playground);
  if (!canWrite()) $$("[data-write]").forEach((el) => el.remove());
});
