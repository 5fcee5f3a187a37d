// kneehip_bn classroom page: plain JavaScript, no libraries, no network beyond this server.
// Every number shown comes from the JSON API (the CLI's --json); nothing is computed here.
"use strict";

const state = {
  model: null,
  evidence: {},      // the case: {node: state}
  doList: {},        // what-if interventions
  absent: {},        // what-if "if this finding were absent": {node: true}
  edits: {},         // sliders: {setKey: value}
  teach: null,       // {case, step, committed, guesses: []}
  seq: 0,
};

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of kids) if (c != null) e.append(c);
  return e;
};
const label = (n) => n.replaceAll("_", " ");
const fmt = (p) => (p == null ? "n/a" : p.toFixed(3));

async function api(path, body) {
  const r = await fetch(path, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const isJson = (r.headers.get("content-type") || "").includes("json");
  const out = isJson ? await r.json() : await r.text();
  if (!r.ok) throw new Error(isJson && out.error ? out.error : `HTTP ${r.status}`);
  return out;
}

function edits() {
  return Object.entries(state.edits).map(([k, v]) => `${k}=${v}`);
}
function caseBody(extra = {}) {
  const b = { evidence: { ...state.evidence }, ...extra };
  const e = edits();
  if (e.length) b.set = e;
  return b;
}

// ------------------------------------------------------------------ the case builder
function buildContext() {
  const box = $("context");
  box.replaceChildren();
  for (const n of state.model.context) {
    const sel = el("select", { "data-node": n, id: `ctx-${n}` },
      el("option", { value: "", text: "not given" }),
      ...state.model.nodes[n].states.map((s) => el("option", { value: s, text: label(s) })));
    sel.addEventListener("change", () => setFinding(n, sel.value || null));
    box.append(el("label", {}, `${label(n)} `, sel));
  }
}

function triButtons(n) {
  const node = state.model.nodes[n];
  const tri = el("span", { class: "tri", role: "group", "aria-label": label(n) });
  const order = node.states.length === 2 ? [node.on, ...node.states.filter((s) => s !== node.on)]
    : node.states;
  for (const s of order) {
    tri.append(el("button", {
      "data-node": n, "data-state": s, "aria-pressed": "false", text: s,
      onclick: () => setFinding(n, state.evidence[n] === s ? null : s),
    }));
  }
  tri.append(el("button", {
    class: "none", "data-node": n, "data-state": "", "aria-pressed": "true",
    title: "not examined", text: "—", onclick: () => setFinding(n, null),
  }));
  return tri;
}

function buildSections() {
  const box = $("sections");
  box.replaceChildren();
  for (const sec of state.model.sections) {
    const fs = el("fieldset", { class: sec.id, "data-section": sec.id },
      el("legend", { text: sec.title }));
    for (const n of sec.nodes) {
      const d = state.model.nodes[n].description || "";
      fs.append(el("div", { class: "finding", title: d },
        el("span", { class: "name", text: label(n) }), triButtons(n)));
    }
    box.append(fs);
  }
}

function syncControls() {
  document.querySelectorAll(".tri button").forEach((b) => {
    const n = b.dataset.node;
    const cur = state.evidence[n] ?? "";
    b.setAttribute("aria-pressed", String(cur === b.dataset.state));
    b.disabled = !!(state.teach && !state.teach.done);
  });
  for (const n of state.model.context) {
    const sel = $(`ctx-${n}`);
    sel.value = state.evidence[n] ?? "";
    sel.disabled = !!(state.teach && !state.teach.done);
  }
}

function setFinding(n, s) {
  if (s == null) delete state.evidence[n]; else state.evidence[n] = s;
  if (state.evidence[n] == null) delete state.absent[n];
  syncControls();
  schedule();
}

// ------------------------------------------------------------------ rendering results
function renderDiagnoses(dx) {
  const box = $("diagnoses");
  box.replaceChildren();
  dx.origins.forEach((o, i) => {
    box.append(el("div", {
      class: "dx" + (i === 0 ? " leading" : ""), "data-origin": o.name,
      "data-posterior": String(o.posterior), "data-prior": String(o.prior),
    },
    el("span", { class: "label", text: label(o.name), title: o.name }),
    el("span", { class: "bars" },
      el("span", { class: "prior", style: `width:${(100 * o.prior).toFixed(2)}%` }),
      el("span", { class: "post", style: `width:${(100 * o.posterior).toFixed(2)}%` })),
    el("span", { class: "num posterior", text: fmt(o.posterior) }),
    el("span", { class: "odds", text: o.odds_ratio == null ? "" : `×${o.odds_ratio.toFixed(2)}` })));
  });
}

function renderExplainedBy(dx) {
  // diagnose's "explained_by": for each present finding, which causes account for it
  const box = $("explained-by");
  const eb = dx.explained_by || {};
  const rows = Object.entries(eb).map(([f, causes]) => el("li", { "data-finding": f },
    `${label(f)}: ` + Object.entries(causes).sort((a, b) => b[1] - a[1])
      .map(([c, p]) => `${label(c)} ${p.toFixed(2)}`).join(", ")));
  box.replaceChildren(...(rows.length ? [el("h3", { text: "Which causes account for each finding" }),
    el("ul", {}, ...rows)] : []));
}

function renderCase(c) {
  const rb = $("regions-box");
  const names = Object.keys(c.regions || {});
  rb.hidden = names.length === 0;
  $("regions").replaceChildren(...names.map((r) => el("div", {
    class: "dx", "data-region": r, "data-posterior": String(c.regions[r]) },
  el("span", { class: "label", text: r }),
  el("span", { class: "bars" }, el("span", { class: "post", style: `width:${(100 * c.regions[r]).toFixed(2)}%` })),
  el("span", { class: "num", text: fmt(c.regions[r]) }), el("span"))));
  const rf = $("redflag");
  if (c.red_flags && c.red_flags.length) {
    rf.hidden = false;
    rf.textContent = c.warning;
  } else {
    rf.hidden = true;
    rf.textContent = "";
  }
}

function renderExplain(ex) {
  $("summary").textContent = ex.summary;
}

function renderNextTest(list) {
  const rows = list.slice(0, 6);
  const t = el("table", { id: "next-test-table" },
    el("tr", {}, el("th", { text: "next best test" }), el("th", { class: "num", text: "gain (bits)" }),
      el("th", { class: "num", text: "P(present / positive)" }),
      el("th", { text: "if present / positive, leads" })));
  for (const r of rows) {
    t.append(el("tr", { "data-finding": r.finding },
      el("td", { text: label(r.finding) }), el("td", { class: "num", text: r.expected_information_gain.toFixed(3) }),
      el("td", { class: "num", text: fmt(r.p_on) }), el("td", { text: r.leading_if_on ? label(r.leading_if_on) : "" })));
  }
  $("next-test").replaceChildren(rows.length ? t : el("p", { text: "No test left to suggest." }));
}

function renderConflict(c) {
  const box = $("conflict");
  if (!c) { box.replaceChildren(); return; }
  const worst = [...c.contributions].sort((a, b) => b.contribution - a.contribution)[0];
  box.replaceChildren(el("p", { id: "conflict-line", class: c.flagged ? "error" : "hint",
    text: (c.flagged ? "CONFLICT: these findings are less likely together than apart" :
      "No conflict: the findings support each other") +
      ` (conf = ${c.conflict_bits.toFixed(2)} bits)` +
      (c.flagged && worst ? `; most surprising: ${label(worst.finding)}` : "") }));
}

function showError(msg) {
  const e = $("error");
  e.hidden = !msg;
  e.textContent = msg ? `error: ${msg}` : "";
}

// A change updates the ranked diagnoses at once; the explanation, next test, conflict,
// picture and what-if follow when the clicks pause (a dragged slider sends one request
// set per pause, not one per pixel).
let quickTimer = null;
let slowTimer = null;
function schedule() {
  document.body.dataset.busy = "1";   // tests and screenshots wait for "0"
  const seq = ++state.seq;
  clearTimeout(quickTimer);
  clearTimeout(slowTimer);
  quickTimer = setTimeout(() => update(seq, "quick"), 10);
  slowTimer = setTimeout(() => update(seq, "slow"), 120);
}

const pending = { quick: null, slow: null };
async function update(seq, part) {
  const body = caseBody();
  const nFindings = Object.keys(state.evidence).length;
  const live = () => seq === state.seq;
  let jobs;
  if (part === "quick") {
    // diagnose --json carries the regions, red flags and warning; /api/case computes them
    // only for a library whose diagnose does not (one request per click, not two)
    jobs = [
      api("/api/diagnose", body).then(async (r) => {
        if (!live()) return;
        renderDiagnoses(r);
        renderExplainedBy(r);
        const c = "regions" in r ? r : await api("/api/case", body);
        if (live()) renderCase(c);
      }),
    ];
  } else {
    jobs = [
      api("/api/explain", body).then((r) => live() && renderExplain(r)),
      api("/api/next-test", body).then((r) => live() && renderNextTest(r)),
      // Jensen's conflict compares findings with each other: it needs two or more
      (nFindings >= 2 ? api("/api/conflict", body) : Promise.resolve(null))
        .then((r) => live() && renderConflict(r)),
      api("/api/graph.svg", body).then((svg) => { if (live()) $("graph").innerHTML = svg; }),
    ];
    if (!$("pane-whatif").hidden) jobs.push(updateWhatIf(seq));
  }
  const p = Promise.allSettled(jobs);
  pending[part] = p;
  const res = await p;
  if (!live()) return;
  const bad = res.find((r) => r.status === "rejected");
  if (bad || part === "quick") showError(bad ? bad.reason.message : null);
  if (part === "slow") {
    await pending.quick;
    if (!live()) return;
    document.body.dataset.updated = String(seq);
    document.body.dataset.busy = "0";
  }
}

// ------------------------------------------------------------------ what-if
function buildWhatIf() {
  const nodes = Object.keys(state.model.nodes).filter((n) => state.model.nodes[n].group !== "context");
  const dn = $("do-node");
  dn.replaceChildren(...nodes.map((n) => el("option", { value: n, text: label(n) })));
  const fillStates = () => $("do-state").replaceChildren(
    ...state.model.nodes[dn.value].states.map((s) => el("option", { value: s, text: s })));
  dn.addEventListener("change", fillStates);
  fillStates();
  $("do-add").addEventListener("click", () => {
    state.doList[dn.value] = $("do-state").value;
    renderDoList();
    schedule();
  });
  const ns = $("num-select");
  ns.replaceChildren(...state.model.numbers.map((x, i) => el("option", {
    value: String(i), text: `${x.set}  (${x.value.toFixed(3)}, ${x.source})` })));
  $("num-add").addEventListener("click", () => addSlider(state.model.numbers[+ns.value]));
  $("num-reset").addEventListener("click", () => {
    state.edits = {};
    $("sliders").replaceChildren();
    schedule();
  });
}

function renderDoList() {
  $("do-list").replaceChildren(...Object.entries(state.doList).map(([n, s]) => el("span", {
    class: "chip", "data-do": n }, `do(${label(n)} = ${s})`,
  el("button", { title: "remove", text: "×", onclick: () => { delete state.doList[n]; renderDoList(); schedule(); } }))));
}

function renderAbsentList() {
  const present = Object.entries(state.evidence).filter(([n, s]) =>
    state.model.nodes[n].group !== "context" && s === state.model.nodes[n].on);
  const box = $("absent-list");
  box.replaceChildren(el("h3", { text: "If this finding were absent" }));
  if (!present.length) box.append(el("p", { class: "hint", text: "No present finding in the case yet." }));
  for (const [n] of present) {
    const cb = el("input", { type: "checkbox", "data-absent": n });
    cb.checked = !!state.absent[n];
    cb.addEventListener("change", () => { if (cb.checked) state.absent[n] = true; else delete state.absent[n]; schedule(); });
    box.append(el("label", { class: "chip" }, cb, ` ${label(n)}`));
  }
}

function addSlider(num) {
  if (num.set in state.edits) return;
  state.edits[num.set] = num.value;
  const out = el("span", { class: "num", text: num.value.toFixed(3) });
  const input = el("input", { type: "range", min: "0", max: "1", step: "0.005",
    value: String(num.value), "data-set": num.set });
  input.addEventListener("input", () => {
    state.edits[num.set] = +input.value;
    out.textContent = (+input.value).toFixed(3);
    schedule();
  });
  const row = el("div", { class: "slider" }, el("span", { text: num.set, title: `${num.what} ${num.given}` }),
    input, out, el("button", { title: "remove this edit", text: "×", onclick: () => {
      delete state.edits[num.set]; row.remove(); schedule(); } }));
  $("sliders").append(row);
  schedule();
}

async function updateWhatIf(seq) {
  renderAbsentList();
  const scenarios = {};
  if (Object.keys(state.doList).length) scenarios.intervention = { do: { ...state.doList } };
  for (const n of Object.keys(state.absent)) {
    if (!(n in state.evidence)) continue;
    const off = state.model.nodes[n].states.find((s) => s !== state.model.nodes[n].on);
    scenarios[`if_no_${n}`] = { add: { [n]: off } };
  }
  const r = await api("/api/what-if", caseBody({ scenarios }));
  if (seq !== state.seq) return;
  const t = el("table", { id: "whatif-result" }, el("tr", {}, el("th", { text: "P(present)" }),
    ...r.scenarios.map((s) => el("th", { class: "num", text: s.name, title: s.description }))));
  for (const tg of r.targets) {
    t.append(el("tr", { "data-target": tg.target }, el("td", { text: label(tg.target) }),
      ...r.scenarios.map((s) => el("td", { class: "num", "data-scenario": s.name,
        "data-value": String(s.values[tg.target]), text: fmt(s.values[tg.target]) }))));
  }
  $("whatif-table").replaceChildren(el("h3", { text: "Side by side" }), t);
}

// ------------------------------------------------------------------ teaching mode
let library = null;
async function buildTeach() {
  library = await (await fetch("/api/cases")).json();
  const sel = $("case-select");
  sel.replaceChildren(...library.cases.map((c, i) => el("option", { value: String(i), text: c.title })));
  if (!library.cases.length) sel.append(el("option", { text: "no case for this model" }));
  $("case-start").addEventListener("click", () => startCase(library.cases[+sel.value]));
}

function startCase(c) {
  if (!c) return;
  state.evidence = { ...c.context };
  state.teach = { case: c, step: 0, committed: false, guesses: [], done: false };
  Object.assign(state.evidence, c.steps[0].reveal);
  syncControls();
  renderTeach();
  schedule();
}

function gate(on) {
  $("results").classList.toggle("gated", on);
  $("graph-box").classList.toggle("gated", on);
  $("gate").hidden = !on;
}

function renderTeach() {
  const t = state.teach;
  const c = t.case;
  const box = $("case-view");
  const step = c.steps[t.step];
  const revealed = Object.entries(c.context).concat(...c.steps.slice(0, t.step + 1).map((s) => Object.entries(s.reveal)));
  const kids = [el("h3", { text: c.title }), el("p", { class: "story", text: c.story }),
    el("p", { class: "hint", text: `Step ${t.step + 1} of ${c.steps.length}. Known so far: ` +
      revealed.map(([n, s]) => `${label(n)} = ${s}`).join("; ") })];
  if (step.prompt) kids.push(el("p", { text: step.prompt }));
  if (!t.committed) {
    const g = el("select", { id: "guess" }, ...state.model.origins.map((o) => el("option", { value: o, text: label(o) })));
    kids.push(el("div", { class: "row" }, el("label", {}, "Your guess: ", g),
      el("button", { id: "commit", text: "Commit my guess", onclick: () => {
        t.guesses.push(g.value); t.committed = true; renderTeach(); } })));
  } else {
    kids.push(el("p", { text: `You guessed ${label(t.guesses[t.step])}. The model's ranking is on the right.` }));
    if (t.step + 1 < c.steps.length) {
      kids.push(el("button", { id: "next-step", text: "Reveal the next findings", onclick: () => {
        t.step += 1; t.committed = false; Object.assign(state.evidence, c.steps[t.step].reveal);
        syncControls(); renderTeach(); schedule(); } }));
    } else {
      t.done = true;
      const right = t.guesses[t.guesses.length - 1] === c.answer;
      kids.push(el("div", { class: "answer", id: "answer" },
        el("p", { text: `Expected diagnosis: ${label(c.answer)}. ${right ? "Your final guess matches." : "Your final guess was " + label(t.guesses[t.guesses.length - 1]) + "."}` }),
        el("p", { text: c.teaching_point || "" }),
        el("p", { class: "hint", text: `Source: ${c.source || "educator's case"}. The case builder is unlocked: explore freely.` })));
      syncControls();
    }
  }
  box.replaceChildren(...kids);
  gate(!t.committed);
}

// ------------------------------------------------------------------ tabs and start
function showTab(name) {
  for (const t of ["builder", "whatif", "teach"]) {
    $(`pane-${t}`).hidden = t !== name && !(t === "builder" && name === "teach");
    $(`tab-${t}`).classList.toggle("active", t === name);
  }
  if (name !== "teach" && state.teach) { state.teach = null; gate(false); syncControls(); }
  schedule();
}

async function start() {
  const r = await fetch("/api/model");
  state.model = await r.json();
  const m = state.model;
  $("model-line").textContent = `Model: ${m.name} — ${m.title} (version ${m.version ?? "not stated"}` +
    `${m.file_sha256 ? ", file " + m.file_sha256 : ""}; kneehip_bn ${m.package_version})`;
  $("disclaimer").textContent = m.disclaimer;
  $("footer").textContent = `Population: ${(m.population || "see the model file").trim()} ` +
    `Teaching cases for this model: ${m.cases}. ` +
    "Every number comes from the server's JSON API (the same as kneehip --json).";
  buildContext();
  buildSections();
  buildWhatIf();
  await buildTeach();
  document.querySelectorAll("button.tab").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  $("clear-case").addEventListener("click", () => { state.evidence = {}; state.absent = {}; syncControls(); schedule(); });
  syncControls();
  schedule();
  document.body.dataset.ready = "1";
}

start().catch((e) => showError(e.message));
