// pacs-triage worklist page: plain DOM, no framework, no external URL, no build step.
// The API token lives in sessionStorage (this tab only) and travels in the Authorization
// header, never in a URL; images are fetched with it and shown through blob: URLs.
// Everything from the API is written with textContent, never as HTML.

import { ago, badge, bar, el, facts, findingsGrid, patientCell, patientText, pct, studyCell, studyWhen, viewerLink } from './view.js';
import { filterQuery } from './filters.js';

const REFRESH_MS = 10_000;
const PAGE_SIZE = 50;
const TOKEN_KEY = 'pacs-triage.token';
const REVIEWER_KEY = 'pacs-triage.reviewer';

const $ = (id) => document.getElementById(id);
const state = {
  offset: 0,
  total: 0,
  items: [],
  selected: undefined, // StudyInstanceUID shown in the detail panel
  selectedUpdatedAt: undefined,
  loading: false,
  images: new Map(), // `${uid}|${kind}|${updatedAt}` → blob: URL
};

class AuthError extends Error {}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

/** fetch with the bearer token; a 401 asks for the token again. */
async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  const t = token();
  if (t) headers.set('authorization', `Bearer ${t}`);
  const res = await fetch(path, { ...init, headers, cache: 'no-store' });
  if (res.status === 401) {
    askToken(t ? 'The token was not accepted. Enter the API token again.' : undefined);
    throw new AuthError('unauthorised');
  }
  return res;
}

async function apiJson(path, init) {
  const res = await api(path, init);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const problems = body?.error?.problems?.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ');
    throw new Error(problems || body?.error?.message || `HTTP ${res.status}`);
  }
  return body;
}

function askToken(why) {
  const dialog = $('token-dialog');
  if (why) $('token-why').textContent = why;
  $('reviewer-input').value = sessionStorage.getItem(REVIEWER_KEY) ?? '';
  if (!dialog.open) dialog.showModal();
  $('token-input').focus();
}

function showError(message) {
  const box = $('error');
  box.textContent = message ?? '';
  box.hidden = !message;
}

/** The study's image as a blob: URL (cached per study, kind and version), or undefined. */
async function imageUrl(uid, kind, version) {
  const key = `${uid}|${kind}|${version}`;
  if (state.images.has(key)) return state.images.get(key);
  const res = await api(`/api/studies/${encodeURIComponent(uid)}/${kind}.png`);
  if (!res.ok) return undefined;
  const url = URL.createObjectURL(await res.blob());
  for (const [k, old] of state.images) {
    if (k.startsWith(`${uid}|${kind}|`)) {
      URL.revokeObjectURL(old);
      state.images.delete(k);
    }
  }
  state.images.set(key, url);
  return url;
}

function thumbCell(item) {
  const kind = item.images.includes('saliency') ? 'saliency' : item.images.includes('thumbnail') ? 'thumbnail' : undefined;
  const td = el('td');
  if (!kind) {
    td.append(el('span', { className: 'thumb none', text: 'no image' }));
    return td;
  }
  const img = el('img', {
    className: 'thumb',
    alt: kind === 'saliency' ? 'image with the saliency of the positive findings' : 'image (no positive finding highlighted)',
    width: 64,
    height: 64,
  });
  td.append(img);
  imageUrl(item.studyInstanceUID, kind, item.updatedAt)
    .then((url) => {
      if (url) img.src = url;
    })
    .catch(() => {});
  return td;
}

function row(item) {
  const tr = el('tr', {
    tabIndex: 0,
    className: item.priority ? `p-${item.priority}` : '',
    attrs: { 'data-uid': item.studyInstanceUID, 'aria-selected': item.studyInstanceUID === state.selected ? 'true' : 'false' },
  });
  const status = el('td', { className: item.state === 'failed' ? 'state-failed' : '', text: item.state });
  if (item.reason && item.state !== 'done') status.append(el('div', { className: 'muted', text: item.reason }));
  for (const w of item.warnings ?? []) status.append(el('div', { className: 'warning', text: `⚠ ${w.message}`, title: `Fix: ${w.fix}` }));
  tr.append(
    el('td', {}, badge(item.priority)),
    thumbCell(item),
    studyCell(item),
    patientCell(item),
    el('td', { text: studyWhen(item.studyDate, item.studyTime) }),
    el('td', {}, item.findings ? findingsGrid(item.findings) : el('span', { className: 'muted', text: '—' })),
    el('td', { text: item.modality ?? '' }),
    status,
    el('td', { text: ago(item.receivedAt), title: new Date(item.receivedAt).toLocaleString() }),
  );
  tr.addEventListener('click', () => openStudy(item.studyInstanceUID));
  tr.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      openStudy(item.studyInstanceUID, true);
    } else if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      const next = ev.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling;
      next?.focus();
    } else if (ev.key === 'Home' || ev.key === 'End') {
      ev.preventDefault();
      const rows = $('rows').rows;
      rows[ev.key === 'Home' ? 0 : rows.length - 1]?.focus();
    }
  });
  return tr;
}

async function loadHealth() {
  const res = await fetch('/healthz', { cache: 'no-store' });
  const h = await res.json();
  $('shadow-banner').hidden = h.shadow !== true;
  $('model').textContent = `model ${h.model} · ${h.provider}`;
}

async function loadWorklist() {
  const page = await apiJson(`/api/worklist?${filterQuery($('filters'), state.offset, PAGE_SIZE)}`);
  state.items = page.items;
  state.total = page.total;
  $('shadow-banner').hidden = page.shadow !== true && $('shadow-banner').hidden;
  const focusedUid = document.activeElement?.closest?.('tr[data-uid]')?.dataset.uid;
  const body = $('rows');
  body.replaceChildren(...page.items.map(row));
  if (focusedUid) body.querySelector(`tr[data-uid="${CSS.escape(focusedUid)}"]`)?.focus();
  $('empty').hidden = page.items.length > 0;
  const first = page.total === 0 ? 0 : page.offset + 1;
  $('page-info').textContent = `${first}–${page.offset + page.items.length} of ${page.total}`;
  $('prev').disabled = page.offset === 0;
  $('next').disabled = page.offset + page.items.length >= page.total;
  const selected = page.items.find((i) => i.studyInstanceUID === state.selected);
  if (selected && selected.updatedAt !== state.selectedUpdatedAt && !$('detail').contains(document.activeElement)) {
    await openStudy(selected.studyInstanceUID);
  }
}

async function loadFailed() {
  const { items } = await apiJson('/api/jobs?state=failed');
  $('failed-title').textContent = `Failed jobs (${items.length})`;
  const list = $('failed-list');
  if (items.length === 0) {
    list.replaceChildren(el('li', { className: 'muted', text: 'None.' }));
    return;
  }
  list.replaceChildren(
    ...items.map((job) => {
      const retry = el('button', { type: 'button', text: 'Reprocess', attrs: { 'aria-label': `Reprocess ${job.studyInstanceUID}` } });
      retry.addEventListener('click', () => reprocess(job.studyInstanceUID));
      const open = el('button', { type: 'button', text: 'Open', attrs: { 'aria-label': `Open ${job.studyInstanceUID}` } });
      open.addEventListener('click', () => openStudy(job.studyInstanceUID, true));
      return el(
        'li',
        {},
        el('div', { className: 'mono', text: job.studyInstanceUID }),
        el('div', {}, el('span', { className: 'code', text: job.errorCode ?? 'FAILED' }), ` ${job.reason ?? ''}`),
        el('div', { className: 'muted' }, `${ago(job.updatedAt)} · ${job.attempts} attempt(s) `, open, ' ', retry),
      );
    }),
  );
}

async function refresh() {
  if (state.loading) return;
  state.loading = true;
  try {
    await Promise.all([loadHealth(), loadWorklist(), loadFailed()]);
    showError(undefined);
    $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (!(err instanceof AuthError)) showError(`Could not load the worklist: ${err.message}. Retrying every ${REFRESH_MS / 1000} s.`);
  } finally {
    state.loading = false;
  }
}

async function reprocess(uid) {
  try {
    const r = await apiJson(`/api/studies/${encodeURIComponent(uid)}/reprocess`, { method: 'POST' });
    showError(undefined);
    $('updated').textContent = `${uid}: ${r.message}`;
    await refresh();
  } catch (err) {
    if (!(err instanceof AuthError)) showError(`Reprocess failed: ${err.message}`);
  }
}

async function sendFeedback(uid, findingCode, verdict, status) {
  const note = $('feedback-note')?.value.trim();
  const by = sessionStorage.getItem(REVIEWER_KEY) || undefined;
  try {
    await apiJson(`/api/studies/${encodeURIComponent(uid)}/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ findingCode, verdict, ...(note ? { note } : {}), ...(by ? { by } : {}) }),
    });
    await openStudy(uid, false, `Saved: ${verdict} ${findingCode}.`);
  } catch (err) {
    if (!(err instanceof AuthError)) status.textContent = `Not saved: ${err.message}`;
  }
}

async function openStudy(uid, focus = false, message = '') {
  state.selected = uid;
  for (const tr of $('rows').rows) tr.setAttribute('aria-selected', tr.dataset.uid === uid ? 'true' : 'false');
  const panel = $('detail');
  let study;
  try {
    study = await apiJson(`/api/studies/${encodeURIComponent(uid)}`);
  } catch (err) {
    if (!(err instanceof AuthError)) panel.replaceChildren(el('h2', { id: 'detail-title', text: 'Study' }), el('p', { text: `Could not load ${uid}: ${err.message}` }));
    return;
  }
  state.selectedUpdatedAt = study.job.updatedAt;
  const r = study.result;
  const close = el('button', { type: 'button', text: 'Close', attrs: { 'aria-label': 'Close the study' } });
  close.addEventListener('click', closeStudy);
  const again = el('button', { type: 'button', text: 'Reprocess' });
  again.addEventListener('click', () => reprocess(uid));
  const status = el('p', { className: 'muted', text: message, attrs: { role: 'status' } });

  const children = [
    el('div', { className: 'detail-head' }, el('h2', { id: 'detail-title', text: 'Study' }), el('div', {}, again, ' ', close)),
    el('div', { className: 'mono', text: uid }),
    study.viewerUrl ? el('p', {}, viewerLink(study.viewerUrl, 'Open in the viewer')) : undefined,
    el('p', {}, badge(r && study.job.state === 'done' ? r.priority : undefined), ` ${study.job.state}`),
  ];
  if (study.images.saliency || study.images.thumbnail) {
    const figs = el('div', { className: 'images' });
    // A model without saliency says so in the result's notes; the caption repeats it where the overlay would be.
    const noSaliency = Boolean(r && r.notes.some((n) => n.startsWith('no saliency')));
    for (const kind of ['saliency', 'thumbnail']) {
      if (!study.images[kind]) continue;
      const img = el('img', { alt: kind === 'saliency' ? 'saliency overlay of the positive findings' : 'model input image' });
      const caption = kind === 'saliency' ? 'saliency (positive findings)' : noSaliency ? 'model input (this model gives no saliency)' : 'model input';
      figs.append(el('figure', {}, img, el('figcaption', { text: caption })));
      imageUrl(uid, kind, study.job.updatedAt).then((url) => url && (img.src = url)).catch(() => {});
    }
    children.push(figs);
  }
  if (r) {
    const list = el('div', { attrs: { role: 'group', 'aria-label': 'Findings' } });
    for (const f of r.findings) {
      const accept = el('button', { type: 'button', text: 'Accept', attrs: { 'aria-label': `Accept ${f.display}` } });
      const reject = el('button', { type: 'button', text: 'Reject', attrs: { 'aria-label': `Reject ${f.display}` } });
      accept.addEventListener('click', () => sendFeedback(uid, f.code, 'accept', status));
      reject.addEventListener('click', () => sendFeedback(uid, f.code, 'reject', status));
      const given = study.feedback.filter((x) => x.findingCode === f.code).at(-1);
      list.append(
        el(
          'div',
          { className: 'finding-row' },
          el('span', { className: f.positive ? 'name positive' : 'name', text: `${f.display}${f.positive ? ' (positive)' : ''}` }),
          bar(f),
          el('span', { className: 'pct', text: pct(f.probability) }),
          el('div', { className: 'verdicts' }, accept, reject, el('span', { className: 'muted', text: `threshold ${pct(f.threshold)}${given ? ` · last: ${given.verdict} by ${given.by}` : ''}` })),
        ),
      );
    }
    children.push(
      el('h2', { text: 'Findings' }),
      list,
      el('label', { className: 'muted' }, 'Note with your next verdict (optional, max 1000 characters)', el('textarea', { id: 'feedback-note', rows: 2, maxLength: 1000 })),
      status,
      facts([
        ['Model', `${r.model.id} ${r.model.version} (${r.model.executionProvider})`],
        ['Result', new Date(r.createdAt).toLocaleString()],
        ['Modality', r.modality],
        ['Accession', r.study.accessionNumber],
        ['Description', r.study.studyDescription],
        ['Study date', studyWhen(r.study.studyDate, r.study.studyTime)],
        ['Patient', [patientText(r.study), r.study.patientName, r.study.patientId].filter(Boolean).join(' · ')],
        ['SR SOP Instance UID', r.sr.sopInstanceUID, true],
        ['SR series', r.sr.seriesInstanceUID, true],
        ['RiskAssessment', r.riskAssessment ?? 'not written'],
        ['Written', Object.entries(r.written).map(([k, v]) => `${k} ${v ? '✓' : '✗'}`).join(' · ')],
        ['Verification', study.verification ? `${study.verification.state} (${study.verification.reader})${study.verification.errorCode ? ` · ${study.verification.errorCode}` : ''}` : undefined],
        ['Notes', r.notes.join('; ')],
      ]),
    );
    if (r.warnings.length > 0) {
      children.push(
        el('h2', { text: 'Warnings' }),
        el('ul', { className: 'warnings' }, ...r.warnings.map((w) => el('li', {}, el('span', { className: 'warning', text: `⚠ ${w.message}.` }), ` Fix: ${w.fix}.`))),
      );
    }
  } else {
    children.push(el('p', { className: 'muted', text: 'No result yet.' }), status);
  }
  const timings = study.job.timings ? Object.entries(study.job.timings).map(([k, v]) => `${k} ${Math.round(v)} ms`).join(' · ') : undefined;
  children.push(
    el('h2', { text: 'Job' }),
    facts([
      ['State', study.job.state],
      ['Attempts', study.job.attempts],
      ['Error', study.job.errorCode],
      ['Reason', study.job.reason],
      ['Received', new Date(study.job.enqueuedAt).toLocaleString()],
      ['Updated', new Date(study.job.updatedAt).toLocaleString()],
      ['Stage timings', timings],
    ]),
  );
  panel.replaceChildren(...children.filter(Boolean));
  if (focus) panel.focus({ preventScroll: true });
}

function closeStudy() {
  const uid = state.selected;
  state.selected = undefined;
  state.selectedUpdatedAt = undefined;
  $('detail').replaceChildren(el('h2', { id: 'detail-title', text: 'Study' }), el('p', { className: 'muted', text: 'Select a study (arrow keys, then Enter) to see its findings.' }));
  for (const tr of $('rows').rows) tr.setAttribute('aria-selected', 'false');
  if (uid) $('rows').querySelector(`tr[data-uid="${CSS.escape(uid)}"]`)?.focus();
}

function start() {
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token-input').value.trim());
    const reviewer = $('reviewer-input').value.trim();
    if (reviewer) sessionStorage.setItem(REVIEWER_KEY, reviewer);
    else sessionStorage.removeItem(REVIEWER_KEY);
    $('token-input').value = '';
    $('token-dialog').close();
    void refresh();
  });
  $('change-token').addEventListener('click', () => askToken('Enter the API token. It is kept in this tab only (session storage).'));
  $('refresh').addEventListener('click', () => void refresh());
  $('filters').addEventListener('change', () => {
    state.offset = 0;
    void refresh();
  });
  $('filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('prev').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - PAGE_SIZE);
    void refresh();
  });
  $('next').addEventListener('click', () => {
    state.offset += PAGE_SIZE;
    void refresh();
  });
  $('detail').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') closeStudy();
  });
  setInterval(() => {
    if (document.visibilityState === 'visible') void refresh();
  }, REFRESH_MS);
  void refresh();
}

start();
