// Small DOM helpers: elements built from data (never HTML strings from the
// network), a toast, the knowledge base's Markdown, a ticket's logbook.

import { t, time, disposition } from './i18n.js';

/** h('div', {class: 'x', onclick: f}, 'text', child, …) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

let toastTimer;
export function toast(msg, bad = false) {
  const el = document.getElementById('toast');
  el.textContent = msg;
  el.classList.toggle('bad', bad);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 3500);
}

export function announce(msg) {
  const el = document.getElementById('announce');
  el.textContent = '';
  setTimeout(() => { el.textContent = msg; }, 30);
}

/** Inline Markdown: **bold** and `code`, as nodes. */
function inline(text) {
  const out = [];
  const re = /(\*\*[^*]+\*\*|`[^`]+`)/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const s = m[0];
    out.push(s.startsWith('**') ? h('strong', {}, s.slice(2, -2)) : h('code', {}, s.slice(1, -1)));
    last = m.index + s.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** The knowledge base's Markdown (headings, lists, paragraphs), as nodes. */
export function markdown(src) {
  const frag = document.createDocumentFragment();
  let list = null;
  let para = [];
  const flushPara = () => {
    if (para.length) frag.append(h('p', {}, inline(para.join(' '))));
    para = [];
  };
  for (const raw of src.split('\n')) {
    const line = raw.trimEnd();
    const heading = line.match(/^(#{1,4})\s+(.*)$/);
    const ol = line.match(/^\s*\d+[.)]\s+(.*)$/);
    const ul = line.match(/^\s*[-*]\s+(.*)$/);
    if (heading) {
      flushPara(); list = null;
      frag.append(h(heading[1].length <= 2 ? 'h3' : 'h4', {}, inline(heading[2])));
    } else if (ol || ul) {
      flushPara();
      const kind = ol ? 'ol' : 'ul';
      if (!list || list.tagName.toLowerCase() !== kind) { list = h(kind); frag.append(list); }
      list.append(h('li', {}, inline((ol || ul)[1])));
    } else if (!line.trim()) {
      flushPara(); list = null;
    } else {
      list = null; para.push(line.trim());
    }
  }
  flushPara();
  return frag;
}

/** Who wrote an entry, as people read it. */
export function author(a) {
  if (a === 'system') return 'centralita';
  return a.replace(/^agent:/, '').replace(/^supervisor:/, '');
}

/** A ticket's logbook as a timeline. */
export function logbook(entries) {
  const ol = h('ol', { class: 'logbook', 'aria-label': t('call.logbook') });
  for (const e of entries) {
    const person = e.section !== 'event';
    ol.append(h('li', { class: person ? 'person' : 'event' },
      h('div', { class: 'meta' }, person ? h('span', { class: 'sec' }, t(`section.${e.section}`)) : null,
        `${author(e.author)} · ${time(e.time)}`),
      h('div', { class: 'text' }, e.text)));
  }
  queueMicrotask(() => { ol.scrollTop = ol.scrollHeight; });
  return ol;
}

/** A fact: label and value. */
export function fact(label, value) {
  return h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, value ?? '—'));
}

/** The caller as people read it: "Name (number)". */
export function callerName(c) {
  if (!c) return '—';
  if (typeof c === 'string') return c;
  return c.display ? `${c.display} (${c.user})` : (c.user || c.uri);
}

/** A ticket, read-only: facts, calls, logbook. */
export function ticketDetails(tk) {
  const calls = tk.calls || [];
  const last = calls[calls.length - 1];
  return h('div', {},
    h('dl', { class: 'facts' },
      fact(t('ticket.caller'), callerName(tk.caller)),
      fact(t('call.status'), t(`status.${tk.status}`)),
      fact(t('call.level'), String(tk.level)),
      fact(t('pop.queue'), tk.category),
      fact(t('ticket.created'), time(tk.created)),
      fact(t('ticket.due'), time(tk.due)),
      tk.disposition ? fact(t('ticket.disposition'), disposition(tk.disposition)) : null,
      tk.visit ? fact(t('ticket.visit'), `${time(tk.visit.when)} · ${tk.visit.where} · ${tk.visit.technician}`) : null),
    last ? ivrPath(last) : null,
    logbook(tk.logbook || []));
}

/** The menus a call went through and the keys pressed, as chips. */
export function ivrPath(call) {
  const chips = [];
  for (const s of call.ivr_path || []) {
    chips.push(s.key ? h('span', { class: 'chip key', title: s.menu }, s.key) : h('span', { class: 'chip' }, s.menu));
  }
  const fields = Object.entries(call.fields || {}).map(([k, v]) => h('span', { class: 'chip' }, `${k}: ${v}`));
  if (!chips.length && !fields.length) return null;
  return h('div', {},
    chips.length ? h('div', { class: 'chips', 'aria-label': t('pop.menus') }, h('span', { class: 'muted' }, `${t('pop.menus')}:`), chips) : null,
    fields.length ? h('div', { class: 'chips' }, h('span', { class: 'muted' }, `${t('pop.fields')}:`), fields) : null);
}
