// The supervisor's wallboard: queues (waiting, longest wait, service level
// against its target, agents by state), agents (state, since, calls, a
// change of state), calls up, the tickets due soonest, and ticket search.
// Live from the events stream.

import * as api from './api.js';
import { t, duration, time } from './i18n.js';
import { h, clear, toast, ticketDetails } from './dom.js';

const $ = (id) => document.getElementById(id);
const STATES = ['available', 'paused', 'logged_out'];

let config = null;
let agents = [];
let queues = [];
let calls = [];
let tick = null;
let reloadSoon = null;

export async function start(who, cfg) {
  config = cfg;
  $('supervisor-view').hidden = false;
  $('search-form').onsubmit = (e) => { e.preventDefault(); search($('search-q').value); };
  api.listen({
    queues: (e) => { queues = e?.queues || []; renderQueues(); },
    agent_state: (e) => {
      const a = agents.find((x) => x.id === e.agent);
      if (a) { a.state = e.state; a.reason = e.reason; a.since = e.at; renderAgents(); } else soon();
    },
    call_arrived: soon,
    answered: soon,
    ended: soon,
    ticket_changed: soon,
    lagged: reload,
  });
  tick = setInterval(() => { renderAgents(true); }, 1000);
  await reload();
}

/** Reload the lists once, a moment after a burst of events. */
function soon() {
  clearTimeout(reloadSoon);
  reloadSoon = setTimeout(reload, 250);
}

async function reload() {
  try {
    const [q, a, c, due, open] = await Promise.all([
      api.get('/queues'), api.get('/agents'), api.get('/calls'),
      api.get('/tickets?overdue=true&limit=20'), api.get('/tickets?status=open&limit=50'),
    ]);
    queues = q.queues;
    agents = a.agents;
    calls = c.calls;
    renderQueues();
    renderAgents();
    renderCalls(calls);
    renderDue(due.tickets, open.tickets);
  } catch (e) { if (e.status !== 401) toast(t('err.generic', { msg: e.message }), true); }
}

function renderQueues() {
  const box = clear($('queues'));
  for (const q of queues) {
    const conf = (config.queues || []).find((c) => c.name === q.name) || {};
    const target = (conf.service_level_percent || 80) / 100;
    const sl = q.service_level;
    const total = Object.values(q.agents).reduce((s, n) => s + n, 0) - (q.agents.logged_out || 0);
    const bar = h('div', { class: 'bar', role: 'img', 'aria-label': Object.entries(q.agents).map(([k, n]) => `${t(`state.${k}`)} ${n}`).join(', ') });
    for (const k of ['available', 'offered', 'on_call', 'wrap_up', 'paused']) {
      const n = q.agents[k] || 0;
      if (n && total) {
        const seg = h('span', { class: k, title: `${t(`state.${k}`)}: ${n}` });
        seg.style.width = `${(100 * n) / total}%`;
        bar.append(seg);
      }
    }
    box.append(h('section', { class: 'card queue', 'aria-label': q.name },
      h('h3', {}, q.name, conf.number ? h('span', { class: 'muted' }, ` · ${conf.number}`) : null),
      h('span', { class: `waiting${q.waiting > 0 ? ' busy' : ''}`, dataset: { queue: q.name } }, String(q.waiting)),
      h('span', { class: 'label' }, t('sup.waiting')),
      h('dl', { class: 'facts' },
        h('div', { class: 'fact' }, h('dt', {}, t('sup.longest')), h('dd', {}, duration(q.longest_wait_secs * 1000))),
        h('div', { class: 'fact' }, h('dt', {}, t('sup.sl')),
          h('dd', { class: `sl ${sl === null ? '' : sl >= target ? 'good' : 'poor'}`,
            title: t('sup.target', { p: conf.service_level_percent || 80, s: conf.service_level_secs || 20 }) },
          sl === null ? '—' : `${Math.round(sl * 100)} %`)),
        h('div', { class: 'fact' }, h('dt', {}, t('sup.answered')), h('dd', {}, String(q.answered))),
        h('div', { class: 'fact' }, h('dt', {}, t('sup.abandoned')), h('dd', {}, String(q.abandoned))),
        h('div', { class: 'fact' }, h('dt', {}, t('sup.asa')),
          h('dd', {}, q.average_speed_of_answer_secs == null ? '—' : duration(q.average_speed_of_answer_secs * 1000))),
        h('div', { class: 'fact' }, h('dt', { title: t('sup.needed.help') }, t('sup.needed')),
          h('dd', { class: q.agents_short > 0 ? 'sl poor' : '' },
            q.agents_short > 0 ? `${q.agents_needed} (${t('sup.short', { n: q.agents_short })})` : String(q.agents_needed || 0)))),
      bar));
  }
}

function renderAgents(onlyTimes = false) {
  const body = $('agents-table').tBodies[0];
  if (onlyTimes) {
    for (const row of body.rows) {
      const a = agents.find((x) => x.id === row.dataset.agent);
      if (a) row.cells[2].textContent = duration(Date.now() - new Date(a.since).getTime());
    }
    return;
  }
  clear(body);
  for (const a of agents) {
    const sel = h('select', { 'aria-label': `${t('sup.change')} ${a.name}`, onchange: async (e) => {
      const s = e.target.value;
      e.target.value = '';
      if (!s) return;
      try { await api.post(`/agents/${encodeURIComponent(a.id)}/state`, { state: s }); } catch (err) {
        toast(err.status === 409 ? t('err.nophone') : t('err.generic', { msg: err.message }), true);
      }
    } }, h('option', { value: '' }, t('sup.set')), STATES.map((s) => h('option', { value: s }, t(`state.${s}`))));
    const call = calls.find((c) => c.agent === a.id);
    body.append(h('tr', { dataset: { agent: a.id } },
      h('td', {}, h('strong', {}, a.name), h('span', { class: 'item-sub' }, a.id)),
      h('td', {}, h('span', { class: `pill ${a.state}` }, t(`state.${a.state}`) + (a.reason ? ` · ${a.reason}` : '')),
        call ? h('button', { type: 'button', class: 'btn ghost small', onclick: () => openTicket(call.ticket) }, `#${call.ticket}`) : null),
      h('td', { class: 'since' }, duration(Date.now() - new Date(a.since).getTime())),
      h('td', {}, String(a.calls)),
      h('td', {}, sel)));
  }
}

function renderCalls(calls) {
  const list = clear($('calls'));
  if (!calls.length) { list.append(h('li', { class: 'empty' }, t('sup.noCalls'))); return; }
  for (const c of calls) {
    list.append(h('li', {}, h('button', { type: 'button', class: 'item', onclick: () => openTicket(c.ticket) },
      h('span', { class: 'item-title' }, `${c.caller.replace(/;tag=.*$/, '')}`),
      h('span', { class: 'item-sub' }, `#${c.ticket} · ${c.state}${c.queue ? ` · ${c.queue}` : ''}${c.agent ? ` · ${c.agent}` : ''}`))));
  }
}

function renderDue(overdue, open) {
  const list = clear($('due-tickets'));
  const seen = new Set();
  const all = [...overdue, ...open.filter((x) => x.due)]
    .filter((x) => (seen.has(x.number) ? false : seen.add(x.number)))
    .sort((a, b) => new Date(a.due) - new Date(b.due))
    .slice(0, 10);
  if (!all.length) { list.append(h('li', { class: 'empty' }, t('sup.noDue'))); return; }
  for (const tk of all) list.append(ticketItem(tk));
}

function ticketItem(tk) {
  return h('li', {}, h('button', { type: 'button', class: 'item', onclick: () => openTicket(tk.number) },
    h('span', { class: 'item-title' }, `#${tk.number} · ${t(`status.${tk.status}`)}${tk.overdue ? ' · ⚠' : ''}`),
    h('span', { class: 'item-sub' }, `${tk.category || '—'} · ${t('ticket.due')} ${time(tk.due)}`)));
}

async function search(q) {
  const list = clear($('search-results'));
  const words = q.trim();
  if (!words) return;
  try {
    if (/^\d{6,9}$/.test(words)) { openTicket(words); return; }
    const { tickets } = await api.get(`/tickets?text=${encodeURIComponent(words)}&limit=20`);
    if (!tickets.length) list.append(h('li', { class: 'empty' }, '—'));
    for (const tk of tickets) list.append(ticketItem(tk));
  } catch (e) { toast(t('err.generic', { msg: e.message }), true); }
}

async function openTicket(n) {
  try {
    const tk = await api.get(`/tickets/${n}`);
    $('ticket-title').textContent = t('ticket.title', { n: tk.number });
    clear($('ticket-body')).append(ticketDetails(tk));
    $('ticket-dialog').showModal();
  } catch (e) { toast(t('err.generic', { msg: e.message }), true); }
}

export function stop() { clearInterval(tick); }
