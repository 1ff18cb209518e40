// Pure DOM building for the worklist page: elements from data, text always through textContent.

/** Creates an element with properties, attributes (`attrs`) and children. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { attrs, className, text, ...rest } = props;
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  Object.assign(node, rest);
  for (const [k, v] of Object.entries(attrs ?? {})) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  for (const child of children) if (child !== undefined && child !== null) node.append(child);
  return node;
}

export const pct = (p) => `${Math.round(p * 100)}%`;

export function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

export function badge(priority) {
  return priority
    ? el('span', { className: `badge ${priority}`, text: priority })
    : el('span', { className: 'badge none', text: '—', attrs: { 'aria-label': 'no priority' } });
}

/** A probability bar with the threshold marked. */
export function bar(f) {
  const fill = el('span', { className: 'fill' });
  fill.style.width = pct(Math.min(1, Math.max(0, f.probability)));
  const mark = el('span', { className: 'threshold' });
  mark.style.left = pct(f.threshold);
  return el(
    'span',
    {
      className: `prob${f.positive ? ' positive' : ''}`,
      attrs: { role: 'img', 'aria-label': `${f.display}: ${pct(f.probability)}, threshold ${pct(f.threshold)}, ${f.positive ? 'positive' : 'negative'}` },
    },
    fill,
    mark,
  );
}

export function findingsGrid(findings) {
  const grid = el('div', { className: 'findings' });
  for (const f of findings) {
    grid.append(
      el('span', { className: `name${f.positive ? ' positive' : ''}`, text: f.display }),
      bar(f),
      el('span', { className: 'pct', text: pct(f.probability), attrs: { 'aria-hidden': 'true' } }),
    );
  }
  return grid;
}

export function facts(pairs) {
  const dl = el('dl', { className: 'facts' });
  for (const [k, v, mono] of pairs) if (v !== undefined && v !== null && v !== '') dl.append(el('dt', { text: k }), el('dd', { className: mono ? 'mono' : '', text: String(v) }));
  return dl;
}


/** DICOM DA + TM (the archive's local date and time) as "2026-03-02 08:15"; '' without a date. */
export function studyWhen(date, time) {
  if (!/^\d{8}$/.test(date ?? '')) return '';
  const day = `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}`;
  return /^\d{4}/.test(time ?? '') ? `${day} ${time.slice(0, 2)}:${time.slice(2, 4)}` : day;
}

/** The "open in the viewer" link (api.viewerUrlTemplate); a new tab, no referrer, no opener. */
export function viewerLink(url, label = 'Open') {
  if (!url) return undefined;
  const a = el('a', { className: 'open', href: url, target: '_blank', rel: 'noopener noreferrer', text: label });
  // A click on the link opens the viewer, not the study panel of the row it sits in.
  a.addEventListener('click', (ev) => ev.stopPropagation());
  a.addEventListener('keydown', (ev) => ev.stopPropagation());
  return a;
}

/** The study cell: description, accession number, the UID (small), and the viewer link. */
export function studyCell(item) {
  return el(
    'td',
    { className: 'study' },
    el('div', { className: 'desc', text: item.studyDescription ?? '—' }),
    el('div', { className: 'muted' }, item.accessionNumber ? `Acc. ${item.accessionNumber}` : 'no accession', ' ', viewerLink(item.viewerUrl)),
    el('div', { className: 'uid mono', text: item.studyInstanceUID }),
  );
}

/** Age and sex ("067Y F"), with the name and ID when the service shows them (api.showPatientIdentity). */
export function patientText(item) {
  return [item.patientAge, item.patientSex].filter(Boolean).join(' ');
}

export function patientCell(item) {
  const td = el('td', { text: patientText(item) || '—' });
  if (item.patientName || item.patientId) td.append(el('div', { className: 'muted', text: [item.patientName, item.patientId].filter(Boolean).join(' · ') }));
  return td;
}
