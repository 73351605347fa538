// mloffload dashboard: reads the daemon's JSON routes (same origin), follows GET
// /events through fetch() streaming (EventSource cannot send the API key), and drives
// POST /load, /unload, /switch. No framework: a few render functions that update the
// DOM in place, so that focus stays and nothing jumps while numbers change.
'use strict';

const $ = (s) => document.querySelector(s);
const KEY_STORE = 'mloffload.apiKey';
const HISTORY = 120;
let apiKey = sessionStorage.getItem(KEY_STORE) || '';
const st = { status: null, vram: null, models: [], queue: null, events: [], lastId: 0 };
let evAbort = null, logAbort = null, refreshTimer = null, planFor = null;

class ApiError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

function fmtBytes(b) {
  if (b == null || isNaN(b)) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0, v = Number(b);
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(v < 10 ? 2 : 1) : String(v)) + ' ' + u[i];
}

function fmtDur(s) {
  if (s == null) return '–';
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function headers(json) {
  const h = {};
  if (apiKey) h.Authorization = 'Bearer ' + apiKey;
  if (json) h['Content-Type'] = 'application/json';
  return h;
}

async function api(method, path, body) {
  const r = await fetch(path, { method, headers: headers(body !== undefined), cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let j = null;
  try { j = JSON.parse(text); } catch (e) { /* not JSON: the text is the message */ }
  if (r.status === 401) needKey(apiKey ? 'That key was refused: ' : '');
  if (!r.ok) {
    const err = j && j.error ? j.error : {};
    throw new ApiError(r.status, err.message || text || r.statusText, err.code);
  }
  return j;
}

// ---- notices and the key ----

function notice(msg) {
  $('#notice').textContent = msg || '';
}

function needKey(prefix) {
  const f = $('#keyform');
  if (!f.hidden) return;
  f.hidden = false;
  f.querySelector('label').textContent = (prefix || '') + 'This daemon needs an API key.';
  $('#keyinput').focus();
  setConn('key needed', 'bad');
}

function setConn(text, cls) {
  const c = $('#conn');
  c.textContent = text;
  c.className = 'pill ' + (cls || '');
}

// ---- refresh ----

async function refresh() {
  try {
    const [status, vram, queue] = await Promise.all([api('GET', '/status'),
      api('GET', '/vram?history=' + HISTORY), api('GET', '/queue')]);
    Object.assign(st, { status, vram, queue });
    renderMeta(); renderDevices(); renderLoaded(); renderQueue(); renderModels();
  } catch (e) {
    if (e.status !== 401) setConn('offline', 'bad');
  }
}

async function refreshModels() {
  try {
    st.models = (await api('GET', '/models')).models || [];
    renderModels(); renderLogChoices();
  } catch (e) { /* refresh() says how the connection is */ }
}

function soon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { refresh(); refreshModels(); }, 150);
}

function renderMeta() {
  const s = st.status;
  $('#meta').textContent = `mloffloadd ${s.version} · up ${fmtDur(s.uptime_s)} · NVML ${s.nvml}`;
  const hooks = (s.notify && s.notify.hooks) || [];
  $('#hooks').textContent = hooks.map((h) => `webhook ${h.url}: ${h.sent} sent, ${h.failed} ` +
    `failed${h.last_error ? ' (last error: ' + h.last_error + ')' : ''}`).join(' · ');
}

// ---- devices ----

const COMPONENTS = [['model_bytes', 'weights'], ['kv_bytes', 'kv'], ['compute_bytes', 'compute'],
  ['repack_bytes', 'repack']];

// Segments of a memory bar: [{cls, bytes, title, first}] for each model's parts.
function modelParts(id, usage, out) {
  let first = true;
  for (const [k, cls] of COMPONENTS) {
    const b = usage && usage[k];
    if (!b) continue;
    out.push({ cls, bytes: b, title: `${id}: ${cls} ${fmtBytes(b)}`, first });
    first = false;
  }
}

function drawBar(total, segs, free) {
  const bar = el('div', { class: 'bar', role: 'img' });
  const label = [];
  for (const s of segs) {
    const w = total > 0 ? Math.max(0, s.bytes / total * 100) : 0;
    const seg = el('span', { class: 'c-' + s.cls + (s.first ? ' m' : ''), title: s.title });
    seg.style.width = w.toFixed(3) + '%'; // CSSOM, allowed by the page's CSP
    bar.append(seg);
    label.push(s.title);
  }
  if (free != null) label.push('free ' + fmtBytes(free));
  bar.setAttribute('aria-label', label.join(', '));
  return bar;
}

function history(dev) {
  const h = dev.history || [];
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'hist');
  svg.setAttribute('viewBox', '0 0 240 44');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('aria-label', 'used memory, last ' + h.length + ' samples');
  if (h.length > 1 && dev.total_bytes > 0) {
    const pts = h.map((p, i) => `${(i / (HISTORY - 1) * 240 + (HISTORY - h.length) / (HISTORY - 1) * 240).toFixed(1)},` +
      `${(42 - p.used_bytes / dev.total_bytes * 40).toFixed(1)}`);
    const pl = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    pl.setAttribute('points', pts.join(' '));
    svg.append(pl);
  }
  return svg;
}

function renderDevices() {
  const box = $('#devices');
  const loaded = st.status.loaded || [];
  const frag = [];
  for (const d of st.vram.devices) {
    const cpu = d.kind === 'cpu';
    const segs = [];
    let ours = 0;
    for (const m of loaded) {
      const u = cpu ? m.plan.cpu : (m.device === d.id ? m.plan.device : null);
      if (!u) continue;
      modelParts(m.model, u, segs);
      ours += u.total_bytes || 0;
    }
    const other = Math.max(0, d.used_bytes - ours);
    if (other > 0) segs.push({ cls: 'other', bytes: other, title: `other use ${fmtBytes(other)}`, first: true });
    const extra = [];
    if (d.temperature_c != null) extra.push(d.temperature_c + ' °C');
    if (d.utilization_pct != null) extra.push(d.utilization_pct + ' % busy');
    const parts = loaded.filter((m) => (cpu ? m.plan.cpu : m.device === d.id && m.plan.device) &&
      (cpu ? m.plan.cpu.total_bytes : m.plan.device.total_bytes) > 0)
      .map((m) => `${m.model} ${fmtBytes(cpu ? m.plan.cpu.total_bytes : m.plan.device.total_bytes)}`);
    frag.push(el('div', { class: 'dev', 'data-dev': d.id },
      el('div', {},
        el('div', { class: 'title' }, el('b', {}, `${d.id} · ${d.name}`),
          el('span', { class: 'muted' }, `${fmtBytes(d.used_bytes)} used of ${fmtBytes(d.total_bytes)}, ` +
            `${fmtBytes(d.free_bytes)} free${extra.length ? ' · ' + extra.join(' · ') : ''}` +
            (d.ok ? '' : ' · not read: ' + (d.error || '')))),
        drawBar(d.total_bytes, segs, d.free_bytes),
        el('div', { class: 'parts' }, parts.length ? 'models: ' + parts.join(', ') : 'no model of ours here')),
      history(d)));
  }
  box.replaceChildren(...frag);
}

// ---- loaded models ----

// Planned and measured bytes per place: "gpu0 14.2 MiB / 13.0 MiB · CPU 12.6 MiB / 21.4 MiB".
function whereText(m) {
  let devMeas = 0, cpuMeas = 0;
  for (const [k, v] of Object.entries(m.measured || {})) {
    if (typeof v !== 'object' || v === null) continue;
    const sum = Object.values(v).reduce((a, b) => a + (typeof b === 'number' ? b : 0), 0);
    if (k.startsWith('CPU')) cpuMeas += sum; else devMeas += sum;
  }
  const meas = (b) => (m.measured ? fmtBytes(b) : '…');
  const out = [];
  if (m.plan.device && m.plan.device.total_bytes > 0)
    out.push(`${m.device || 'device'} ${fmtBytes(m.plan.device.total_bytes)} / ${meas(devMeas)}`);
  out.push(`CPU ${fmtBytes(m.plan.cpu.total_bytes)} / ${meas(cpuMeas)}`);
  return out.join('\n');
}

// Updates row cells in place; the actions cell is rebuilt only when akey changes.
function upsertRow(tbody, id, cells, akey, actions) {
  let tr = tbody.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
  if (!tr) {
    tr = el('tr', { 'data-id': id });
    for (let i = 0; i <= cells.length; i++) tr.append(el('td'));
    tr.firstChild.className = 'id';
    tbody.append(tr);
  }
  cells.forEach((c, i) => {
    const td = tr.children[i];
    const text = typeof c === 'object' ? c.text : c;
    if (td.textContent !== text) td.textContent = text;
    if (typeof c === 'object' && td.className !== c.cls) td.className = c.cls;
    if (typeof c === 'object' && c.title && td.title !== c.title) td.title = c.title;
  });
  const last = tr.children[cells.length];
  if (last.dataset.key !== akey) {
    last.dataset.key = akey;
    last.replaceChildren(el('div', { class: 'actions' }, ...actions()));
  }
  return tr;
}

function prune(tbody, ids) {
  for (const tr of [...tbody.children]) if (!ids.has(tr.dataset.id)) tr.remove();
}

async function act(btn, what, fn) {
  btn.disabled = true;
  const was = btn.textContent;
  btn.textContent = what + '…';
  notice('');
  try {
    await fn();
  } catch (e) {
    notice(`${what} refused (${e.status || 'no answer'}${e.code ? ' ' + e.code : ''}): ${e.message}`);
  } finally {
    btn.textContent = was;
    btn.disabled = false;
    soon();
  }
}

function renderLoaded() {
  const tb = $('#loaded tbody');
  const loaded = st.status.loaded || [];
  const ids = new Set();
  const others = st.models.filter((m) => m.backend === 'llama.cpp' && !m.error).map((m) => m.id);
  for (const m of loaded) {
    ids.add(m.model);
    const until = m.pinned ? 'pinned' : m.expires_in_s != null ? 'in ' + fmtDur(m.expires_in_s) :
      m.ttl_s === 0 ? 'no TTL' : '–';
    const targets = others.filter((o) => o !== m.model);
    upsertRow(tb, m.model, [m.model, { text: m.state, cls: 'state-' + m.state },
      { text: whereText(m), cls: 'lines' }, { text: fmtDur(m.idle_s), cls: 'nw' },
      { text: until, cls: 'nw' }, { text: String(m.in_flight || 0), cls: 'num' }],
    [m.state, m.pinned, targets.join(',')].join('|'), () => {
      const sel = el('select', { 'aria-label': 'switch ' + m.model + ' to' },
        ...targets.map((t) => el('option', { value: t }, t)));
      return [
        el('button', { type: 'button', 'data-act': 'unload', onclick: (ev) => act(ev.target, 'unload',
          () => api('POST', '/unload', { model: m.model })) }, 'unload'),
        el('button', { type: 'button', 'data-act': 'pin', onclick: (ev) => act(ev.target,
          m.pinned ? 'unpin' : 'pin', () => api('POST', '/load', { model: m.model, pin: !m.pinned })) },
        m.pinned ? 'unpin' : 'pin'),
        sel,
        el('button', { type: 'button', 'data-act': 'switch', disabled: targets.length === 0,
          onclick: (ev) => act(ev.target, 'switch', () => api('POST', '/switch',
            { from: m.model, to: sel.value, ...loadOpts() })) }, 'switch'),
      ];
    });
  }
  prune(tb, ids);
  $('#loaded-empty').hidden = loaded.length > 0;
}

// ---- models ----

// Where the model would run, in words: "GPU0 28/33 layers", "CPU", "does not fit".
function fitText(m) {
  if (m.error) return 'error: ' + m.error;
  const f = m.fit || [];
  const g = f.find((x) => x.device !== 'cpu' && x.fits && x.gpu_layers > 0);
  if (g) return `${g.device.toUpperCase()} ${g.gpu_layers}/${g.layers} layers`;
  if (f.find((x) => x.device === 'cpu' && x.fits)) return 'CPU';
  return f.length ? 'does not fit' : '–';
}

// Every device's fit, for the fit cell's tooltip: "gpu0: 28/33 layers, 7.8 GiB; cpu: fits".
function fitDetail(m) {
  return (m.fit || []).map((f) => `${f.device}: ${f.fits ? (f.device === 'cpu' ? 'fits' :
    `${f.gpu_layers}/${f.layers} layers`) : 'does not fit'}, ${fmtBytes(f.total_bytes)} of ` +
    `${fmtBytes(f.budget_bytes)}`).join('; ');
}

function loadOpts() {
  const o = { offload: $('#offload').value };
  const ctx = parseInt($('#ctx').value, 10);
  if (ctx > 0) o.ctx = ctx;
  if ($('#pin').checked) o.pin = true;
  return o;
}

function renderModels() {
  const tb = $('#models tbody');
  const ids = new Set();
  const rt = new Map(((st.status && st.status.loaded) || []).map((m) => [m.model, m.state]));
  const waiting = new Set(((st.queue && st.queue.waiting) || []).map((q) => q.model));
  for (const m of st.models) {
    ids.add(m.id);
    const state = rt.get(m.id) || (waiting.has(m.id) ? 'queued' : m.state);
    const fit = fitText(m);
    const local = m.backend === 'llama.cpp' && !m.error;
    upsertRow(tb, m.id, [m.id, m.arch || '–', m.quantization || '–',
      { text: fmtBytes(m.file_bytes), cls: 'num' },
      { text: fmtBytes(m.estimate && m.estimate.total_bytes), cls: 'num' },
      { text: fit, cls: fit === 'does not fit' ? 'fit-none' : '', title: fitDetail(m) },
      { text: state, cls: 'state-' + state }], String(local), () => local ? [
      el('button', { type: 'button', class: 'primary', 'data-act': 'load',
        onclick: (ev) => act(ev.target, 'load', () => api('POST', '/load', { model: m.id, ...loadOpts() })) },
      'load'),
      el('button', { type: 'button', 'data-act': 'plan', onclick: () => showPlan(m.id) }, 'plan'),
    ] : []);
  }
  prune(tb, ids);
}

// ---- plan view ----

async function showPlan(id) {
  planFor = id;
  const ctx = parseInt($('#ctx').value, 10);
  const box = $('#plan');
  $('#plan-title').textContent = `— ${id}${ctx > 0 ? ' at context ' + ctx : ''}`;
  try {
    const b = await api('GET', `/vram/budget?model=${encodeURIComponent(id)}${ctx > 0 ? '&ctx=' + ctx : ''}`);
    if (planFor !== id) return;
    const p = b.plan;
    const devTotal = b.device ? b.device.total_bytes : 0;
    const rows = [el('p', {}, `${b.fits ? 'Fits' : 'Does not fit'} at context ${b.ctx}: ` +
      `${p.gpu_layers} of ${p.layers} layers on ${b.device ? b.device.id : 'no device'}` +
      (p.n_cpu_moe ? `, experts of ${p.n_cpu_moe} layers on the CPU` : '') + '.')];
    const scale = Math.max(devTotal, ...p.devices.map((d) => d.total_bytes));
    for (const d of p.devices) {
      const segs = [];
      modelParts(d.name, d, segs);
      const isDev = d.name !== 'cpu';
      rows.push(el('div', { class: 'dev' }, el('div', {},
        el('div', { class: 'title' }, el('b', {}, isDev ? d.name : 'CPU'),
          el('span', { class: 'muted' }, `${fmtBytes(d.total_bytes)}` + (isDev && b.device ?
            ` of ${fmtBytes(b.device.budget_bytes)} available` : ''))),
        drawBar(isDev && devTotal ? devTotal : scale, segs, null),
        el('div', { class: 'parts' }, COMPONENTS.filter(([k]) => d[k]).map(([k, n]) => `${n} ${fmtBytes(d[k])}`).join(', '))),
      el('div')));
    }
    if (b.reason) rows.push(el('p', { class: 'muted' }, b.reason));
    if ((b.would_evict || []).length)
      rows.push(el('p', { class: 'muted' }, 'would need room from: ' + b.would_evict.map((e) =>
        `${e.model || 'pid ' + e.pid} (${fmtBytes(e.bytes)})`).join(', ')));
    const m = st.models.find((x) => x.id === id);
    const cmd = ['llama-server', '-m', m ? m.path : id, ...p.args].map((a) =>
      /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const code = el('code', { id: 'plan-cmd' }, cmd);
    rows.push(el('div', { class: 'plan-args' }, code, el('button', { type: 'button', onclick: (ev) => {
      const done = () => { ev.target.textContent = 'copied'; setTimeout(() => { ev.target.textContent = 'copy'; }, 1500); };
      if (navigator.clipboard) navigator.clipboard.writeText(cmd).then(done, () => selectText(code));
      else selectText(code);
    } }, 'copy')));
    box.replaceChildren(...rows);
  } catch (e) {
    box.replaceChildren(el('p', { class: 'fit-none' }, `plan: ${e.message}`));
  }
}

function selectText(node) {
  const r = document.createRange();
  r.selectNodeContents(node);
  const s = window.getSelection();
  s.removeAllRanges();
  s.addRange(r);
}

// ---- queue ----

function renderQueue() {
  const q = st.queue || {};
  const items = [];
  for (const r of q.running || []) items.push(el('li', {}, `${r.model}: loading for ${fmtDur(Math.round(r.loading_ms / 1000))}`));
  for (const w of q.waiting || [])
    items.push(el('li', {}, `${w.model}: position ${w.position}, waits for ` +
      `${w.waiting_for.length ? w.waiting_for.join(', ') + ' to unload' : 'memory'} ` +
      `(${fmtDur(Math.round(w.waited_ms / 1000))})`));
  for (const r of q.requests || [])
    items.push(el('li', {}, `request for ${r.model || '?'}${r.waiting_for ? ': waits for ' + r.waiting_for : ''}`));
  $('#queue').replaceChildren(...items);
  $('#queue-empty').hidden = items.length > 0;
}

// ---- events ----

function eventSummary(e) {
  const d = e.data || {};
  const bits = [];
  for (const k of ['model', 'device', 'url', 'error', 'reason', 'was', 'position']) if (d[k] != null) bits.push(`${k} ${d[k]}`);
  if (d.evicting && d.evicting.length) bits.push('evicting ' + d.evicting.join(', '));
  if (d.load_ms != null) bits.push(`ready in ${(d.load_ms / 1000).toFixed(1)} s`);
  if (d.device_bytes != null) bits.push(`device ${fmtBytes(d.device_bytes)}, CPU ${fmtBytes(d.cpu_bytes)}`);
  return bits.join(' · ');
}

function renderEvents() {
  const f = $('#evfilter').value.trim().toLowerCase();
  const items = [];
  for (let i = st.events.length - 1; i >= 0 && items.length < 200; i--) {
    const e = st.events[i];
    const text = `${e.type} ${eventSummary(e)}`;
    if (f && !text.toLowerCase().includes(f)) continue;
    const bad = /failed|pressure|down/.test(e.type);
    items.push(el('li', { class: bad ? 'bad' : '', 'data-type': e.type },
      el('span', { class: 'muted' }, (e.at || '').slice(11, 19) + ' '), el('b', {}, e.type), ' ', eventSummary(e)));
  }
  $('#events').replaceChildren(...items);
}

function onEventBlock(block) {
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('data:')) data += line.slice(5).trim();
    else if (line.startsWith('id:')) st.lastId = parseInt(line.slice(3), 10) || st.lastId;
  }
  if (!data) return;
  try {
    st.events.push(JSON.parse(data));
    if (st.events.length > 500) st.events.shift();
  } catch (e) { return; }
  renderEvents();
  soon();
}

async function followEvents() {
  if (evAbort) evAbort.abort();
  const ctl = new AbortController();
  evAbort = ctl;
  while (!ctl.signal.aborted) {
    try {
      const h = headers(false);
      h['Last-Event-ID'] = String(st.lastId); // 0 at first: the daemon's recent events
      const r = await fetch('/events', { headers: h, signal: ctl.signal, cache: 'no-store' });
      if (r.status === 401) { needKey(''); return; }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      setConn('live', 'ok');
      const rd = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await rd.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          onEventBlock(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    setConn('reconnecting…', 'bad');
    await new Promise((res) => setTimeout(res, 2000));
  }
}

// ---- llama-server log ----

function renderLogChoices() {
  const sel = $('#logmodel');
  const want = st.models.filter((m) => m.backend === 'llama.cpp').map((m) => m.id);
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (want.join('\n') === have.join('\n')) return;
  const cur = sel.value;
  sel.replaceChildren(el('option', { value: '' }, '—'), ...want.map((id) => el('option', { value: id }, id)));
  sel.value = want.includes(cur) ? cur : '';
}

async function followLog() {
  if (logAbort) logAbort.abort();
  const id = $('#logmodel').value;
  const pre = $('#log');
  pre.textContent = '';
  if (!id) return;
  const ctl = new AbortController();
  logAbort = ctl;
  const follow = $('#logfollow').checked;
  try {
    const r = await fetch(`/logs/${encodeURIComponent(id)}?tail=65536${follow ? '&follow=1' : ''}`,
      { headers: headers(false), signal: ctl.signal, cache: 'no-store' });
    if (!r.ok) {
      const j = await r.json().catch(() => null);
      pre.textContent = (j && j.error && j.error.message) || 'HTTP ' + r.status;
      return;
    }
    const rd = r.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await rd.read();
      if (done) break;
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      let t = pre.textContent + dec.decode(value, { stream: true });
      if (t.length > 200000) t = t.slice(t.indexOf('\n', t.length - 150000) + 1);
      pre.textContent = t;
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }
  } catch (e) { /* aborted, or the daemon went away */ }
}

// ---- start ----

function start() {
  $('#keyform').hidden = true;
  refresh();
  refreshModels();
  followEvents();
}

document.addEventListener('DOMContentLoaded', () => {
  $('#keyform').addEventListener('submit', (ev) => {
    ev.preventDefault();
    apiKey = $('#keyinput').value.trim();
    sessionStorage.setItem(KEY_STORE, apiKey);
    $('#keyinput').value = '';
    notice('');
    start();
  });
  $('#keybtn').addEventListener('click', () => {
    const f = $('#keyform');
    f.hidden = !f.hidden;
    if (!f.hidden) $('#keyinput').focus();
  });
  $('#evfilter').addEventListener('input', renderEvents);
  $('#logmodel').addEventListener('change', followLog);
  $('#logfollow').addEventListener('change', followLog);
  $('#ctx').addEventListener('change', () => { if (planFor) showPlan(planFor); });
  setInterval(refresh, 2000);
  setInterval(refreshModels, 15000);
  start();
});
