// Spanish and English. The language follows the browser (es* → Spanish),
// can be switched in the top bar, and is remembered.

const STRINGS = {
  es: {
    skip: 'Ir al contenido', ready: 'Disponible', pause: 'Pausa', pauseReason: 'Motivo de la pausa',
    'reason.break': 'Descanso', 'reason.lunch': 'Comida', 'reason.training': 'Formación',
    'reason.meeting': 'Reunión', 'reason.other': 'Otro', logoutState: 'Desconectar',
    shortcuts: 'Atajos', signOut: 'Salir', 'help.title': 'Atajos de teclado', 'help.ready': 'disponible',
    'help.pause': 'pausa', 'help.logout': 'desconectar', 'help.entry': 'escribir en la bitácora',
    'help.kb': 'buscar en la base de conocimiento', 'help.close': 'cerrar un diálogo',
    'login.title': 'Entrar en el puesto',
    'login.hint': 'Agentes: su identificador y la contraseña de su teléfono. Supervisores: la suya.',
    'login.user': 'Usuario', 'login.password': 'Contraseña', 'login.submit': 'Entrar',
    'login.wrong': 'Usuario o contraseña incorrectos.',
    'login.refused': 'Demasiados intentos fallidos desde esta dirección. Pruebe de nuevo en {min} min.',
    'idle.title': 'Sin llamada', 'idle.available': 'Está disponible: la próxima llamada aparecerá aquí en cuanto suene su teléfono.',
    'idle.paused': 'En pausa ({reason}). Pulse «Disponible» para recibir llamadas.',
    'idle.logged_out': 'Desconectado. Pulse «Disponible» para entrar en las colas (su teléfono debe estar registrado).',
    'idle.wrap_up': 'Tiempo de cierre de la última llamada.',
    'state.logged_out': 'Desconectado', 'state.available': 'Disponible', 'state.offered': 'Sonando',
    'state.on_call': 'En llamada', 'state.wrap_up': 'Cierre', 'state.paused': 'En pausa',
    'pop.title': 'Llamada entrante', 'pop.ticket': 'Ticket', 'pop.dialed': 'Número marcado', 'pop.language': 'Idioma',
    'pop.queue': 'Cola', 'pop.waited': 'Espera', 'pop.menus': 'Menús y teclas', 'pop.fields': 'Datos tecleados',
    'pop.related': 'Otros tickets abiertos del cliente', 'pop.none': 'Ninguno', 'pop.earlier': 'Llamadas anteriores en este ticket',
    'pop.announce': 'Llamada entrante de {caller}, ticket {ticket}',
    'call.title': 'En llamada', 'call.logbook': 'Bitácora', 'call.add': 'Añadir a la bitácora',
    'call.section': 'Sección', 'call.text': 'Texto', 'call.save': 'Guardar entrada', 'call.saved': 'Entrada guardada.',
    'call.due': 'Nivel 1 vence en', 'call.overdue': 'Vencido hace', 'call.escalate': 'Escalar',
    'call.suggest': 'Artículos sugeridos', 'call.status': 'Estado del ticket', 'call.level': 'Nivel',
    'section.understanding': 'Comprensión', 'section.planning': 'Planificación', 'section.execution': 'Ejecución',
    'section.analysis': 'Análisis', 'section.event': 'Evento',
    'wrap.title': 'Cierre de la llamada', 'wrap.disposition': 'Resultado', 'wrap.status': 'Estado del ticket',
    'wrap.last': 'Última entrada (opcional)', 'wrap.save': 'Guardar y quedar disponible', 'wrap.saved': 'Ticket cerrado. Está disponible.',
    'disp.solved': 'Resuelto', 'disp.workaround': 'Solución temporal', 'disp.escalated': 'Escalado',
    'disp.visit_booked': 'Visita agendada', 'disp.no_fault_found': 'Sin avería', 'disp.caller_unreachable': 'Cliente ilocalizable',
    'disp.duplicate': 'Duplicado',
    'status.open': 'Abierto', 'status.in_progress': 'En curso', 'status.escalated': 'Escalado',
    'status.resolved': 'Resuelto', 'status.closed': 'Cerrado',
    'kb.title': 'Base de conocimiento', 'kb.search': 'Buscar', 'kb.placeholder': 'Buscar artículos…', 'kb.cite': 'Citar en planificación',
    'kb.cited': 'Artículo citado en la bitácora.', 'kb.none': 'No hay artículos.', search: 'Buscar', close: 'Cerrar',
    'mine.title': 'Mis tickets recientes', 'mine.none': 'Aún no tiene tickets.',
    'esc.title': 'Escalar el ticket', 'esc.level': 'Nivel', 'esc.l2': 'Nivel 2 (expertos)', 'esc.l3': 'Nivel 3 (visita in situ)',
    'esc.when': 'Cuándo', 'esc.where': 'Dónde', 'esc.tech': 'Técnico', 'esc.reason': 'Motivo', 'esc.submit': 'Escalar',
    'esc.done': 'Ticket escalado.', 'esc.requeue': 'Pasar al cliente a la cola',
    'esc.noRequeue': '— No, sigue conmigo —',
    'sup.queues': 'Colas', 'sup.agents': 'Agentes', 'sup.agent': 'Agente', 'sup.state': 'Estado', 'sup.since': 'Desde',
    'sup.calls': 'Llamadas', 'sup.change': 'Cambiar', 'sup.calls.title': 'Llamadas en curso',
    'sup.due': 'Tickets que vencen antes', 'sup.search': 'Buscar tickets',
    'sup.searchPlaceholder': 'Número, nombre o palabras…', 'sup.waiting': 'esperando', 'sup.longest': 'Espera máx.',
    'sup.sl': 'Nivel de servicio', 'sup.target': 'objetivo {p} % en {s} s', 'sup.answered': 'Atendidas', 'sup.abandoned': 'Abandonadas',
    'sup.asa': 'Espera media', 'sup.needed': 'Agentes necesarios', 'sup.needed.help': 'Erlang C: agentes que la cola necesita para su objetivo con el tráfico de los últimos 15 minutos', 'sup.short': 'faltan {n}',
    'sup.noCalls': 'Ninguna llamada en curso.', 'sup.noDue': 'Nada pendiente.', 'sup.set': 'Poner…',
    'err.generic': 'No se pudo: {msg}', 'err.nophone': 'Registre primero su softphone: sin teléfono no puede recibir llamadas.',
    'lang.switch': 'EN', 'ticket.title': 'Ticket {n}', 'ticket.caller': 'Cliente', 'ticket.created': 'Abierto',
    'ticket.due': 'Vence', 'ticket.disposition': 'Resultado', 'ticket.visit': 'Visita',
  },
  en: {
    skip: 'Skip to content', ready: 'Ready', pause: 'Pause', pauseReason: 'Pause reason',
    'reason.break': 'Break', 'reason.lunch': 'Lunch', 'reason.training': 'Training',
    'reason.meeting': 'Meeting', 'reason.other': 'Other', logoutState: 'Log out',
    shortcuts: 'Shortcuts', signOut: 'Sign out', 'help.title': 'Keyboard shortcuts', 'help.ready': 'ready',
    'help.pause': 'pause', 'help.logout': 'log out', 'help.entry': 'write in the logbook',
    'help.kb': 'search the knowledge base', 'help.close': 'close a dialog',
    'login.title': 'Sign in to the desk',
    'login.hint': 'Agents: your agent id and your phone\u2019s password. Supervisors: your own.',
    'login.user': 'User', 'login.password': 'Password', 'login.submit': 'Sign in',
    'login.wrong': 'Wrong user or password.',
    'login.refused': 'Too many failed sign-ins from this address. Try again in {min} min.',
    'idle.title': 'No call', 'idle.available': 'You are ready: the next call shows here the moment your phone rings.',
    'idle.paused': 'Paused ({reason}). Press \u201cReady\u201d to take calls.',
    'idle.logged_out': 'Logged out. Press \u201cReady\u201d to join the queues (your phone must be registered).',
    'idle.wrap_up': 'Wrap-up time after the last call.',
    'state.logged_out': 'Logged out', 'state.available': 'Ready', 'state.offered': 'Ringing',
    'state.on_call': 'On a call', 'state.wrap_up': 'Wrap-up', 'state.paused': 'Paused',
    'pop.title': 'Incoming call', 'pop.ticket': 'Ticket', 'pop.dialed': 'Number dialed', 'pop.language': 'Language',
    'pop.queue': 'Queue', 'pop.waited': 'Waited', 'pop.menus': 'Menus and keys', 'pop.fields': 'Typed in',
    'pop.related': 'The caller\u2019s other open tickets', 'pop.none': 'None', 'pop.earlier': 'Earlier calls on this ticket',
    'pop.announce': 'Incoming call from {caller}, ticket {ticket}',
    'call.title': 'On a call', 'call.logbook': 'Logbook', 'call.add': 'Add to the logbook',
    'call.section': 'Section', 'call.text': 'Text', 'call.save': 'Save entry', 'call.saved': 'Entry saved.',
    'call.due': 'Level 1 due in', 'call.overdue': 'Overdue by', 'call.escalate': 'Escalate',
    'call.suggest': 'Suggested articles', 'call.status': 'Ticket status', 'call.level': 'Level',
    'section.understanding': 'Understanding', 'section.planning': 'Planning', 'section.execution': 'Execution',
    'section.analysis': 'Analysis', 'section.event': 'Event',
    'wrap.title': 'Wrap-up', 'wrap.disposition': 'Disposition', 'wrap.status': 'Ticket status',
    'wrap.last': 'A last entry (optional)', 'wrap.save': 'Save and get ready', 'wrap.saved': 'Ticket wrapped up. You are ready.',
    'disp.solved': 'Solved', 'disp.workaround': 'Workaround', 'disp.escalated': 'Escalated',
    'disp.visit_booked': 'Visit booked', 'disp.no_fault_found': 'No fault found', 'disp.caller_unreachable': 'Caller unreachable',
    'disp.duplicate': 'Duplicate',
    'status.open': 'Open', 'status.in_progress': 'In progress', 'status.escalated': 'Escalated',
    'status.resolved': 'Resolved', 'status.closed': 'Closed',
    'kb.title': 'Knowledge base', 'kb.search': 'Search', 'kb.placeholder': 'Search articles…', 'kb.cite': 'Cite in planning',
    'kb.cited': 'Article cited in the logbook.', 'kb.none': 'No articles.', search: 'Search', close: 'Close',
    'mine.title': 'My recent tickets', 'mine.none': 'No tickets yet.',
    'esc.title': 'Escalate the ticket', 'esc.level': 'Level', 'esc.l2': 'Level 2 (experts)', 'esc.l3': 'Level 3 (on-site visit)',
    'esc.when': 'When', 'esc.where': 'Where', 'esc.tech': 'Technician', 'esc.reason': 'Reason', 'esc.submit': 'Escalate',
    'esc.done': 'Ticket escalated.', 'esc.requeue': 'Move the caller to the queue',
    'esc.noRequeue': '— No, they stay with me —',
    'sup.queues': 'Queues', 'sup.agents': 'Agents', 'sup.agent': 'Agent', 'sup.state': 'State', 'sup.since': 'Since',
    'sup.calls': 'Calls', 'sup.change': 'Change', 'sup.calls.title': 'Calls in progress',
    'sup.due': 'Tickets due soonest', 'sup.search': 'Search tickets',
    'sup.searchPlaceholder': 'Number, name or words…', 'sup.waiting': 'waiting', 'sup.longest': 'Longest wait',
    'sup.sl': 'Service level', 'sup.target': 'target {p} % in {s} s', 'sup.answered': 'Answered', 'sup.abandoned': 'Abandoned',
    'sup.asa': 'Avg. speed of answer', 'sup.needed': 'Agents needed', 'sup.needed.help': 'Erlang C: agents the queue needs to meet its goal for the last 15 minutes of traffic', 'sup.short': '{n} short',
    'sup.noCalls': 'No calls in progress.', 'sup.noDue': 'Nothing pending.', 'sup.set': 'Set…',
    'err.generic': 'That did not work: {msg}', 'err.nophone': 'Register your softphone first: without a phone you cannot take calls.',
    'lang.switch': 'ES', 'ticket.title': 'Ticket {n}', 'ticket.caller': 'Caller', 'ticket.created': 'Opened',
    'ticket.due': 'Due', 'ticket.disposition': 'Disposition', 'ticket.visit': 'Visit',
  },
};

function initial() {
  const saved = localStorage.getItem('centralita.lang');
  if (saved === 'es' || saved === 'en') return saved;
  const nav = (navigator.language || 'es').toLowerCase();
  return nav.startsWith('en') ? 'en' : 'es';
}

let lang = initial();

export function language() { return lang; }

/** A string in the current language, with {name} filled from `vars`. */
export function t(key, vars = {}) {
  const s = STRINGS[lang][key] ?? STRINGS.es[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (vars[k] ?? ''));
}

/** Translate the page's static text (data-i18n, data-i18n-placeholder). */
export function apply(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
}

export function toggle() {
  lang = lang === 'es' ? 'en' : 'es';
  localStorage.setItem('centralita.lang', lang);
  apply();
}

/** A wrap-up code's name (the configured ones without a name show as they are). */
export function disposition(code) {
  const k = `disp.${code}`;
  const s = t(k);
  return s === k ? code.replace(/_/g, ' ') : s;
}

/** "1 min 05 s", "42 s". */
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  if (h) return `${h} h ${String(m).padStart(2, '0')} min`;
  if (m) return `${m} min ${String(r).padStart(2, '0')} s`;
  return `${r} s`;
}

/** A time, local, short. */
export function time(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString(lang === 'es' ? 'es-ES' : 'en-GB', { dateStyle: 'short', timeStyle: 'short' });
}
