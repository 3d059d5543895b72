// The desk: sign in, then the agent's view or the supervisor's.

import * as api from './api.js';
import { t, apply, toggle } from './i18n.js';
import * as agent from './agent.js';
import * as supervisor from './supervisor.js';

const $ = (id) => document.getElementById(id);

function showLogin() {
  for (const id of ['agent-view', 'supervisor-view', 'me', 'agent-actions', 'btn-signout']) $(id).hidden = true;
  $('login-view').hidden = false;
  $('login-user').focus();
}

async function enter(who) {
  $('login-view').hidden = true;
  $('me').hidden = false;
  $('btn-signout').hidden = false;
  $('me-name').textContent = who.name;
  document.title = `${who.name} · centralita`;
  if (who.role === 'supervisor') {
    $('state').hidden = true;
    await supervisor.start(who, who.config);
  } else {
    await agent.start(who, who.config);
  }
  $('main').focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const err = $('login-error');
  err.textContent = '';
  const button = $('login-submit');
  button.disabled = true;
  try {
    const who = await api.post('/session', { user: $('login-user').value.trim(), password: $('login-password').value });
    $('login-password').value = '';
    await enter(who);
  } catch (e) {
    err.textContent = e.status === 429 ? t('login.refused', { min: Math.max(1, Math.ceil((e.retryAfter || 60) / 60)) })
      : e.status === 401 ? t('login.wrong') : t('err.generic', { msg: e.message });
  } finally { button.disabled = false; }
}

async function signOut() {
  try { await api.del('/session'); } catch { /* signed out either way */ }
  location.reload();
}

function setup() {
  apply();
  $('btn-lang').textContent = t('lang.switch');
  $('btn-lang').onclick = () => { toggle(); $('btn-lang').textContent = t('lang.switch'); };
  $('login-form').onsubmit = signIn;
  $('btn-signout').onclick = signOut;
  $('btn-help').onclick = () => {
    const help = $('help');
    help.hidden = !help.hidden;
    $('btn-help').setAttribute('aria-expanded', String(!help.hidden));
  };
  for (const b of document.querySelectorAll('[data-close]')) b.onclick = () => b.closest('dialog').close();
  api.whenSignedOut(() => location.reload());
}

setup();
api.get('/session').then(enter, showLogin);
