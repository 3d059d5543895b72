// The agent's view: state, the screen pop as the phone rings, the call in
// progress (logbook, entries, knowledge base, level-1 time, escalation),
// then wrap-up. Driven by the events stream.

import * as api from './api.js';
import { t, language, duration, time, disposition } from './i18n.js';
import { h, clear, toast, announce, logbook, fact, ivrPath, callerName, markdown, ticketDetails } from './dom.js';

const $ = (id) => document.getElementById(id);
const SECTIONS = ['understanding', 'planning', 'execution', 'analysis'];

let me = null;
let config = null;
let mode = 'idle';
let cur = null;
let state = { state: 'logged_out', reason: null, since: null };
let kbCategories = [];
let articleShown = null;
let tick = null;

export async function start(who, cfg) {
  me = who;
  config = cfg;
  $('agent-view').hidden = false;
  $('agent-actions').hidden = false;
  $('btn-ready').onclick = () => setState('available');
  $('btn-pause').onclick = () => setState('paused', $('pause-reason').value);
  $('btn-logout').onclick = () => setState('logged_out');
  $('kb-form').onsubmit = (e) => { e.preventDefault(); searchKb($('kb-q').value); };
  $('article-cite').onclick = cite;
  setupEscalate();
  document.addEventListener('keydown', shortcuts);
  api.listen({
    offered: onOffered,
    offer_ended: onOfferEnded,
    answered: onAnswered,
    ended: onEnded,
    agent_state: (e) => { state = { state: e.state, reason: e.reason, since: e.at }; renderState(); },
    lagged: reload,
  });
  tick = setInterval(everySecond, 1000);
  await reload();
  searchKb('');
}

async function reload() {
  try {
    const { agents } = await api.get('/agents');
    const a = agents.find((x) => x.id === me.id);
    if (a) state = { state: a.state, reason: a.reason, since: a.since };
    renderState();
    const { calls } = await api.get('/calls');
    const c = calls.find((x) => x.agent === me.id);
    if (c && !cur) {
      const ticket = Number(c.ticket);
      cur = { call: c.id, ticket, caller: c.caller, dialed: c.dialed, language: c.language, queue: c.queue,
        offeredAt: Date.now(), answeredAt: c.state === 'on_call' ? Date.now() : null };
      if (c.state === 'on_call' || a?.state === 'on_call') { mode = 'talking'; await loadTicket(); renderCall(); }
      else { mode = 'ringing'; drawPop(); loadTicket().then(fillPop); }
    }
    myTickets();
  } catch (e) { if (e.status !== 401) toast(t('err.generic', { msg: e.message }), true); }
}

function renderState() {
  const pill = $('state');
  pill.className = `pill ${state.state}`;
  pill.textContent = t(`state.${state.state}`) + (state.state === 'paused' && state.reason ? ` · ${state.reason}` : '');
  $('btn-ready').disabled = state.state === 'available';
  if (mode === 'idle') {
    $('idle').hidden = false;
    const key = { available: 'idle.available', paused: 'idle.paused', logged_out: 'idle.logged_out', wrap_up: 'idle.wrap_up' }[state.state];
    $('idle-hint').textContent = key ? t(key, { reason: state.reason || '' }) : '';
  }
}

function everySecond() {
  if (state.since) $('state-since').textContent = duration(Date.now() - new Date(state.since).getTime());
  if (mode === 'ringing' && cur) {
    const w = $('pop-waited');
    if (w) w.textContent = duration(cur.waited_ms + (Date.now() - cur.offeredAt));
  }
  if (mode === 'talking' && cur) {
    const timer = $('call-timer');
    if (timer) timer.textContent = duration(Date.now() - cur.answeredAt);
    renderDue();
  }
}

async function setState(s, reason) {
  try {
    const body = reason ? { state: s, reason } : { state: s };
    const r = await api.post(`/agents/${encodeURIComponent(me.id)}/state`, body);
    state = { state: r.state, reason: s === 'paused' ? reason : null, since: new Date().toISOString() };
    renderState();
  } catch (e) {
    toast(e.status === 409 ? t('err.nophone') : t('err.generic', { msg: e.message }), true);
  }
}

function show(which) {
  for (const id of ['idle', 'pop', 'call', 'wrapup']) $(id).hidden = id !== which;
}

// --- The pop -------------------------------------------------------------

function onOffered(e) {
  if (!e) return;
  cur = { ...e, offeredAt: Date.now(), ticketData: null };
  mode = 'ringing';
  drawPop();
  announce(t('pop.announce', { caller: e.caller_name || e.caller, ticket: e.ticket }));
  loadTicket().then(fillPop);
}

/** Drawn from the event alone, at once; the ticket's details follow. */
function drawPop() {
  const pop = clear($('pop'));
  pop.append(
    h('div', { class: 'pop-head' },
      h('span', { class: 'badge' }, t('pop.title')),
      h('h2', { id: 'pop-title' }, t('pop.ticket'), ' ', h('span', { id: 'pop-ticket', class: 'ticket-no' }, String(cur.ticket)))),
    h('div', { class: 'caller' }, cur.caller_name ? `${cur.caller_name} · ${cur.caller}` : cur.caller),
    h('dl', { class: 'facts' },
      fact(t('pop.dialed'), cur.dialed),
      fact(t('pop.language'), (cur.language || '').toUpperCase()),
      fact(t('pop.queue'), cur.queue),
      h('div', { class: 'fact' }, h('dt', {}, t('pop.waited')), h('dd', { id: 'pop-waited' }, duration(cur.waited_ms || 0)))),
    h('div', { id: 'pop-details' }));
  show('pop');
  pop.dataset.drawnAt = String(Date.now());
}

async function loadTicket() {
  if (!cur) return null;
  try {
    const tk = await api.get(`/tickets/${cur.ticket}`);
    if (cur && Number(tk.number) === Number(cur.ticket)) cur.ticketData = tk;
    return tk;
  } catch (e) {
    if (e.status !== 401) toast(t('err.generic', { msg: e.message }), true);
    return null;
  }
}

function relatedList(tk) {
  const rel = tk.related_tickets || [];
  return h('div', {},
    h('h3', {}, t('pop.related')),
    rel.length ? h('ul', { class: 'list' }, rel.map((r) => h('li', {}, h('button', { type: 'button', class: 'item', onclick: () => openTicket(r.number) },
      h('span', { class: 'item-title' }, `#${r.number} · ${t(`status.${r.status}`)}`),
      h('span', { class: 'item-sub' }, `${r.category || '—'} · ${time(r.created)}`)))))
      : h('p', { class: 'empty' }, t('pop.none')));
}

function fillPop(tk) {
  if (!tk || mode !== 'ringing') return;
  const d = clear($('pop-details'));
  const calls = tk.calls || [];
  const now = calls[calls.length - 1];
  if (now) d.append(ivrPath(now) || '');
  if (calls.length > 1) d.append(h('p', { class: 'muted' }, `${t('pop.earlier')}: ${calls.length - 1}`));
  d.append(relatedList(tk));
}

function onOfferEnded(e) {
  if (cur && e && e.call === cur.call && mode === 'ringing') {
    cur = null;
    mode = 'idle';
    show('idle');
    renderState();
  }
}

// --- The call ------------------------------------------------------------

async function onAnswered(e) {
  if (!e) return;
  if (!cur || cur.call !== e.call) cur = { ...e, offeredAt: Date.now(), ticketData: null };
  cur.answeredAt = Date.now();
  mode = 'talking';
  if (!cur.ticketData) await loadTicket();
  renderCall();
  myTickets();
}

function renderCall() {
  const el = clear($('call'));
  const tk = cur.ticketData;
  const sectionSelect = h('select', { id: 'entry-section' },
    SECTIONS.map((s) => h('option', { value: s }, t(`section.${s}`))));
  const text = h('textarea', { id: 'entry-text', rows: 4, maxlength: 8192 });
  const form = h('form', { class: 'entry-form', onsubmit: saveEntry },
    h('h3', {}, t('call.add')),
    h('label', { for: 'entry-section' }, t('call.section')), sectionSelect,
    h('label', { for: 'entry-text' }, t('call.text')), text,
    h('div', { class: 'row' }, h('span'), h('button', { type: 'submit', id: 'entry-submit', class: 'btn primary' }, t('call.save'))));
  el.append(...[
    h('div', { class: 'call-head' },
      h('span', { class: 'badge' }, t('call.title')),
      h('h2', { id: 'call-title' }, t('pop.ticket'), ' ', h('span', { class: 'ticket-no', id: 'call-ticket' }, String(cur.ticket))),
      h('span', { id: 'call-timer', class: 'timer' }, duration(Date.now() - cur.answeredAt)),
      h('div', { class: 'due' }, h('span', { id: 'due-label', class: 'muted' }), h('span', { id: 'due-left', class: 'left' }),
        h('button', { type: 'button', class: 'btn small', id: 'btn-escalate', onclick: () => $('escalate-dialog').showModal() }, t('call.escalate')))),
    h('div', { class: 'caller' }, tk ? callerName(tk.caller) : (cur.caller_name || cur.caller)),
    tk ? h('dl', { class: 'facts' },
      fact(t('pop.queue'), tk.category || cur.queue),
      fact(t('pop.language'), (tk.language || '').toUpperCase()),
      fact(t('call.status'), t(`status.${tk.status}`)),
      fact(t('call.level'), String(tk.level))) : null,
    tk && tk.calls?.length ? ivrPath(tk.calls[tk.calls.length - 1]) : null,
    h('div', { class: 'columns' },
      h('div', {}, h('h3', {}, t('call.logbook')), h('div', { id: 'logbook-wrap' }, logbook(tk?.logbook || [])), form),
      h('div', {}, h('h3', {}, t('call.suggest')), h('ul', { id: 'kb-suggest', class: 'list' }), tk ? relatedList(tk) : null)),
  ].filter(Boolean));
  show('call');
  renderDue();
  suggest(tk);
}

function renderDue() {
  const left = $('due-left');
  const label = $('due-label');
  const due = cur?.ticketData?.due;
  if (!left || !label) return;
  if (!due) { left.textContent = ''; label.textContent = ''; return; }
  const ms = new Date(due).getTime() - Date.now();
  label.textContent = ms >= 0 ? t('call.due') : t('call.overdue');
  left.textContent = duration(Math.abs(ms));
  left.className = `left${ms < 0 ? ' over' : ms < 5 * 60000 ? ' soon' : ''}`;
}

async function saveEntry(ev) {
  ev.preventDefault();
  const text = $('entry-text').value.trim();
  if (!text || !cur) return;
  const btn = $('entry-submit');
  btn.disabled = true;
  try {
    await api.post(`/tickets/${cur.ticket}/entries`, { section: $('entry-section').value, text });
    $('entry-text').value = '';
    toast(t('call.saved'));
    await refreshLogbook();
  } catch (e) {
    toast(t('err.generic', { msg: e.message }), true);
  } finally { btn.disabled = false; }
}

async function refreshLogbook() {
  const tk = await loadTicket();
  const wrap = $('logbook-wrap');
  if (tk && wrap) { clear(wrap).append(logbook(tk.logbook || [])); renderDue(); suggest(tk); }
}

// --- Wrap-up -------------------------------------------------------------

function onEnded(e) {
  if (!e) return;
  if (!cur || e.call !== cur.call) return;
  if (mode === 'ringing') { onOfferEnded(e); return; }
  mode = 'wrapup';
  renderWrapup();
}

function renderWrapup() {
  const el = clear($('wrapup'));
  const disp = h('select', { id: 'disposition' },
    (config.dispositions || []).map((d) => h('option', { value: d }, disposition(d))));
  const status = h('select', { id: 'wrap-status' },
    ['resolved', 'in_progress', 'escalated', 'open'].map((s) => h('option', { value: s }, t(`status.${s}`))));
  el.append(...[
    h('div', { class: 'pop-head' }, h('span', { class: 'badge' }, t('wrap.title')),
      h('h2', { id: 'wrapup-title' }, t('pop.ticket'), ' ', h('span', { class: 'ticket-no' }, String(cur.ticket)))),
    h('form', { onsubmit: saveWrapup },
      h('div', { class: 'row' },
        h('div', {}, h('label', { for: 'disposition' }, t('wrap.disposition')), disp),
        h('div', {}, h('label', { for: 'wrap-status' }, t('wrap.status')), status)),
      h('label', { for: 'wrap-text' }, t('wrap.last')),
      h('textarea', { id: 'wrap-text', rows: 3, maxlength: 8192 }),
      h('button', { type: 'submit', id: 'wrapup-save', class: 'btn primary wide' }, t('wrap.save'))),
    cur.ticketData ? h('details', {}, h('summary', {}, t('call.logbook')), logbook(cur.ticketData.logbook || [])) : null,
  ].filter(Boolean));
  show('wrapup');
  disp.focus();
}

async function saveWrapup(ev) {
  ev.preventDefault();
  const btn = $('wrapup-save');
  btn.disabled = true;
  try {
    const text = $('wrap-text').value.trim();
    if (text) await api.post(`/tickets/${cur.ticket}/entries`, { section: 'analysis', text });
    await api.patch(`/tickets/${cur.ticket}`, { disposition: $('disposition').value, status: $('wrap-status').value });
    await setState('available');
    toast(t('wrap.saved'));
    cur = null;
    mode = 'idle';
    show('idle');
    renderState();
    myTickets();
  } catch (e) {
    toast(t('err.generic', { msg: e.message }), true);
    btn.disabled = false;
  }
}

// --- Knowledge base ------------------------------------------------------

/** Articles for the ticket: its queue's category, ranked by what the
 * caller chose in the menus and what the agent wrote about the problem. */
async function suggest(tk) {
  const list = $('kb-suggest');
  if (!list) return;
  try {
    if (!kbCategories.length) kbCategories = (await api.get('/kb?limit=1')).categories || [];
    const queue = (config.queues || []).find((q) => q.name === (tk?.category || cur?.queue));
    const cat = (queue?.skills || []).find((s) => kbCategories.includes(s))
      || (kbCategories.includes(tk?.category) ? tk.category : null);
    const calls = tk?.calls || [];
    const menus = (calls[calls.length - 1]?.ivr_path || []).map((s) => s.menu);
    const notes = (tk?.logbook || []).filter((e) => e.section === 'understanding').map((e) => e.text);
    const words = [...notes, ...menus].join(' ').slice(0, 240);
    const params = new URLSearchParams({ language: language(), limit: '6' });
    if (cat) params.set('category', cat);
    if (words.trim()) params.set('q', words);
    let { articles } = await api.get(`/kb?${params}`);
    if (!articles.length && cat) {
      params.delete('q');
      ({ articles } = await api.get(`/kb?${params}`));
    }
    fillArticles(list, articles);
  } catch { /* suggestions are a help, not a need */ }
}

async function searchKb(words) {
  try {
    const q = words.trim() ? `/kb?q=${encodeURIComponent(words)}&language=${language()}&limit=10`
      : `/kb?language=${language()}&limit=10`;
    const { articles } = await api.get(q);
    fillArticles($('kb-list'), articles);
  } catch (e) { if (e.status !== 401) toast(t('err.generic', { msg: e.message }), true); }
}

function fillArticles(list, articles) {
  clear(list);
  if (!articles.length) { list.append(h('li', { class: 'empty' }, t('kb.none'))); return; }
  for (const a of articles) {
    list.append(h('li', {}, h('button', { type: 'button', class: 'item', onclick: () => openArticle(a.id) },
      h('span', { class: 'item-title' }, a.title),
      h('span', { class: 'item-sub' }, `${a.category} · ${a.keywords.slice(0, 4).join(', ')}`))));
  }
}

async function openArticle(id) {
  try {
    const a = await api.get(`/kb/${encodeURIComponent(id)}?language=${language()}`);
    articleShown = a;
    $('article-title').textContent = a.title;
    clear($('article-body')).append(markdown(a.body));
    $('article-cite').disabled = !cur || mode === 'ringing';
    $('article-dialog').showModal();
  } catch (e) { toast(t('err.generic', { msg: e.message }), true); }
}

async function cite() {
  if (!cur || !articleShown) return;
  try {
    await api.post(`/tickets/${cur.ticket}/entries`, { section: 'planning', text: articleShown.title, article: articleShown.id });
    $('article-dialog').close();
    toast(t('kb.cited'));
    if (mode === 'talking') await refreshLogbook();
  } catch (e) { toast(t('err.generic', { msg: e.message }), true); }
}

// --- Escalation ------------------------------------------------------------

function setupEscalate() {
  const form = $('escalate-form');
  for (const q of config.queues || []) $('requeue').append(h('option', { value: q.name }, q.name));
  for (const r of form.querySelectorAll('input[name=level]')) {
    r.onchange = () => {
      $('visit-fields').hidden = form.level.value !== '3';
      $('requeue-field').hidden = form.level.value !== '2';
    };
  }
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    if (!cur) return;
    $('escalate-error').textContent = '';
    const level = Number(form.level.value);
    const body = { level };
    if (level === 2 && $('requeue').value && mode === 'talking') body.requeue = $('requeue').value;
    if (level === 3) {
      const when = $('visit-when').value;
      body.visit = {
        when: when ? new Date(when).toISOString() : '',
        where: $('visit-where').value, technician: $('visit-tech').value, reason: $('visit-reason').value,
      };
    }
    try {
      const tk = await api.patch(`/tickets/${cur.ticket}`, body);
      cur.ticketData = tk;
      $('escalate-dialog').close();
      toast(t('esc.done'));
      if (mode === 'talking') renderCall();
    } catch (e) {
      $('escalate-error').textContent = e.field ? `${e.field}: ${e.message}` : e.message;
    }
  };
}

// --- Tickets -----------------------------------------------------------------

async function myTickets() {
  try {
    const { tickets } = await api.get('/tickets?limit=20');
    const list = clear($('my-tickets'));
    if (!tickets.length) { list.append(h('li', { class: 'empty' }, t('mine.none'))); return; }
    for (const tk of tickets) {
      list.append(h('li', {}, h('button', { type: 'button', class: 'item', onclick: () => openTicket(tk.number) },
        h('span', { class: 'item-title' }, `#${tk.number} · ${t(`status.${tk.status}`)}`),
        h('span', { class: 'item-sub' }, `${tk.category || '—'} · ${time(tk.created)}${tk.overdue ? ' · ⚠' : ''}`))));
    }
  } catch { /* the list is a help */ }
}

export async function openTicket(n) {
  try {
    const tk = await api.get(`/tickets/${n}`);
    $('ticket-title').textContent = t('ticket.title', { n: tk.number });
    const text = h('textarea', { id: 'dialog-entry-text', rows: 3, maxlength: 8192 });
    const sec = h('select', { id: 'dialog-entry-section' }, SECTIONS.map((s) => h('option', { value: s }, t(`section.${s}`))));
    const form = h('form', { class: 'entry-form', onsubmit: async (ev) => {
      ev.preventDefault();
      if (!text.value.trim()) return;
      try {
        await api.post(`/tickets/${tk.number}/entries`, { section: sec.value, text: text.value.trim() });
        toast(t('call.saved'));
        $('ticket-dialog').close();
        openTicket(n);
      } catch (e) { toast(t('err.generic', { msg: e.message }), true); }
    } },
    h('h3', {}, t('call.add')),
    h('label', { for: 'dialog-entry-section' }, t('call.section')), sec,
    h('label', { for: 'dialog-entry-text' }, t('call.text')), text,
    h('button', { type: 'submit', class: 'btn primary wide' }, t('call.save')));
    clear($('ticket-body')).append(ticketDetails(tk), form);
    $('ticket-dialog').showModal();
  } catch (e) { toast(t('err.generic', { msg: e.message }), true); }
}

function shortcuts(e) {
  if (!e.altKey || e.ctrlKey || e.metaKey) return;
  const k = e.key.toLowerCase();
  const act = { r: () => setState('available'), p: () => setState('paused', $('pause-reason').value),
    l: () => setState('logged_out'), e: () => $('entry-text')?.focus(), k: () => $('kb-q').focus() }[k];
  if (act) { e.preventDefault(); act(); }
}

export function stop() { clearInterval(tick); }
