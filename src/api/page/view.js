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

