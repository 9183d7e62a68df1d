// The translate web page: plain JS, no build step. Talks to /v1/models, /v1/translate and, for a file,
// LibreTranslate's /translate_file (the download link it answers with expires after the server's file_ttl).
"use strict";

const $ = (id) => document.getElementById(id);
let last = null; // the last /v1/translate answer

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

async function loadModels() {
  try {
    const resp = await fetch("/v1/models");
    const models = await resp.json();
    if (!resp.ok) throw new Error(models.error || `HTTP ${resp.status}`);
    for (const m of models) {
      const opt = document.createElement("option");
      opt.value = m.name;
      opt.textContent = m.name;
      opt.dataset.pair = `${m.source} → ${m.target}`;
      opt.dataset.source = m.source;
      opt.dataset.target = m.target;
      $("model").appendChild(opt);
    }
    const showPair = () => { $("pair").textContent = $("model").selectedOptions[0]?.dataset.pair || ""; };
    $("model").addEventListener("change", showPair);
    showPair();
    if (models.length) $("beam").value = models[0].defaults.beam;
  } catch (e) {
    showError(`Could not load the models: ${e.message}`);
  }
}

async function translate() {
  const text = $("source").value;
  clearError();
  $("status").textContent = "translating…";
  $("translate").disabled = true;
  const t0 = performance.now();
  try {
    const resp = await fetch("/v1/translate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(requestBody(text)),
    });
    let body;
    try { body = await resp.json(); } catch { body = {}; }
    if (!resp.ok) throw new Error(`${resp.status} ${resp.statusText}: ${body.error || "no details"}`);
    last = body;
    render(body, performance.now() - t0);
  } catch (e) {
    $("result").hidden = true;
    showError(`Translation failed: ${e.message}`);
  } finally {
    $("status").textContent = "";
    $("translate").disabled = false;
  }
}

function glossaryTerms() {
  // "source = target" per line -> {source: target}; lines without " = " are skipped
  const terms = {};
  for (const line of $("glossary").value.split("\n")) {
    const at = line.indexOf("=");
    if (at < 0) continue;
    const src = line.slice(0, at).trim(), tgt = line.slice(at + 1).trim();
    if (src && tgt) terms[src] = tgt;
  }
  return terms;
}

function requestBody(text) {
  const strategy = $("strategy").value;
  const body = { q: text, model: $("model").value, strategy, alignment: true };
  if (strategy === "beam") {
    body.beam = Number($("beam").value);
    body.nbest = Number($("nbest").value);
  } else {
    body.nbest = 1;
  }
  if (strategy === "sample") body.seed = Number($("seed").value);
  const terms = glossaryTerms();
  if (Object.keys(terms).length) body.glossary = terms;
  return body;
}

function render(body, ms) {
  const t = body.translations;
  $("translation").textContent = t.text;
  const tm = body.timing;
  $("latency").textContent = `${Math.round(ms)} ms in the browser; server ${tm.total_ms} ms ` +
    `(queue ${tm.queue_ms} ms, decoding ${tm.decode_ms} ms), ` +
    (body.search.strategy === "beam" ? `beam ${body.search.beam}` : body.search.strategy) +
    (body.search.strategy === "sample" ? `, seed ${body.search.seed}` : "");
  const list = $("alternatives");
  list.replaceChildren();
  t.nbest.forEach((alt, i) => {
    const li = document.createElement("li");
    li.textContent = alt.text;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = alt.score === null ? "(greedy)" : `score ${alt.score.toFixed(3)}`;
    li.appendChild(score);
    li.addEventListener("click", () => select(i));
    list.appendChild(li);
  });
  $("result").hidden = false;
  select(0);
}

function select(i) {
  [...$("alternatives").children].forEach((li, j) => li.classList.toggle("selected", i === j));
  const maps = $("heatmaps");
  maps.replaceChildren();
  for (const unit of last.translations.units) {
    const hyp = unit.hypotheses[Math.min(i, unit.hypotheses.length - 1)];
    if (!hyp.alignment) continue;
    maps.appendChild(heatmap(unit.source, hyp));
  }
}

function wordWeights(a) {
  // The piece matrix -> words: a word's source columns summed, its target rows averaged (rows sum to 1).
  const rows = a.target_words.map(() => a.source_words.map(() => 0));
  const count = a.target_words.map(() => 0);
  a.weights.forEach((row, t) => {
    const r = a.target_word_of[t];
    count[r] += 1;
    row.forEach((w, s) => { rows[r][a.source_word_of[s]] += w; });
  });
  return rows.map((row, r) => row.map((w) => w / Math.max(1, count[r])));
}

function heatmap(source, hyp) {
  // Fig. 3 of Bahdanau et al.: source words across, target words down, white = weight 1, black = 0.
  const a = hyp.alignment;
  const block = document.createElement("div");
  block.className = "heatmap-block";
  const title = document.createElement("h3");
  title.textContent = `${source} → ${hyp.text}`;
  block.appendChild(title);
  const table = document.createElement("table");
  table.className = "heatmap";
  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement("th"));
  for (const w of a.source_words) {
    const th = document.createElement("th");
    th.textContent = w;
    head.appendChild(th);
  }
  const tbody = table.createTBody();
  wordWeights(a).forEach((row, r) => {
    const tr = tbody.insertRow();
    const th = document.createElement("th");
    th.textContent = a.target_words[r];
    tr.appendChild(th);
    row.forEach((w, c) => {
      const td = tr.insertCell();
      const g = Math.round(255 * Math.min(1, Math.max(0, w)));
      td.style.background = `rgb(${g}, ${g}, ${g})`;
      td.title = `${a.target_words[r]} ← ${a.source_words[c]}: ${w.toFixed(3)}`;
    });
  });
  block.appendChild(table);
  return block;
}

async function translateFile() {
  const file = $("file").files[0];
  const link = $("file-link");
  clearError();
  link.hidden = true;
  if (!file) { showError("Choose a file first (.txt, .html, .srt, .docx or .odt)."); return; }
  const model = $("model").selectedOptions[0];
  const form = new FormData();
  form.append("file", file);
  form.append("source", model?.dataset.source || "auto");
  form.append("target", model?.dataset.target || "");
  $("file-status").textContent = "translating the file…";
  $("translate-file").disabled = true;
  try {
    const resp = await fetch("/translate_file", { method: "POST", body: form });
    let body;
    try { body = await resp.json(); } catch { body = {}; }
    if (!resp.ok) throw new Error(`${resp.status} ${resp.statusText}: ${body.error || "no details"}`);
    link.href = body.translatedFileUrl;
    link.download = file.name;
    link.textContent = `Download the translated ${file.name}`;
    link.hidden = false;
  } catch (e) {
    showError(`File translation failed: ${e.message}`);
  } finally {
    $("file-status").textContent = "";
    $("translate-file").disabled = false;
  }
}

$("translate").addEventListener("click", translate);
$("translate-file").addEventListener("click", translateFile);
$("source").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); translate(); }
});
loadModels();
