/**
 * A reliability diagram per evaluated variant: observed frequency against mean predicted
 * probability per bin (bars, their width the bin's, the label its count) with the diagonal of
 * perfect calibration. Drawn as SVG (pure) and rasterised to PNG by sharp.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { Calibration } from './calibration.ts';
import type { EvaluationReport } from './report.ts';

const SIZE = 480;
const MARGIN = 56;
const PLOT = SIZE - 2 * MARGIN;

const escape = (s: string): string => s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] as string);

export function reliabilitySvg(title: string, cal: Calibration): string {
  const x = (v: number): number => MARGIN + v * PLOT;
  const y = (v: number): number => SIZE - MARGIN - v * PLOT;
  const parts: string[] = [
    `<rect width="${SIZE}" height="${SIZE}" fill="white"/>`,
    `<rect x="${MARGIN}" y="${MARGIN}" width="${PLOT}" height="${PLOT}" fill="none" stroke="#444"/>`,
  ];
  for (let t = 0; t <= 10; t += 2) {
    const v = t / 10;
    parts.push(`<line x1="${x(v)}" y1="${y(0)}" x2="${x(v)}" y2="${y(0) + 5}" stroke="#444"/>`);
    parts.push(`<text x="${x(v)}" y="${y(0) + 18}" font-size="11" text-anchor="middle" font-family="DejaVu Sans, sans-serif">${v.toFixed(1)}</text>`);
    parts.push(`<line x1="${x(0) - 5}" y1="${y(v)}" x2="${x(0)}" y2="${y(v)}" stroke="#444"/>`);
    parts.push(`<text x="${x(0) - 8}" y="${y(v) + 4}" font-size="11" text-anchor="end" font-family="DejaVu Sans, sans-serif">${v.toFixed(1)}</text>`);
  }
  for (const bin of cal.bins) {
    if (bin.observed === null || bin.n === 0) continue;
    const top = y(bin.observed);
    parts.push(`<rect x="${x(bin.lo) + 1}" y="${top}" width="${x(bin.hi) - x(bin.lo) - 2}" height="${y(0) - top}" fill="#4a7bd0" fill-opacity="0.75"/>`);
    parts.push(`<text x="${(x(bin.lo) + x(bin.hi)) / 2}" y="${Math.min(top - 4, y(0) - 4)}" font-size="9" text-anchor="middle" font-family="DejaVu Sans, sans-serif">${bin.n}</text>`);
    if (bin.predicted !== null) parts.push(`<circle cx="${x(bin.predicted)}" cy="${y(bin.observed)}" r="3" fill="#c03030"/>`);
  }
  parts.push(`<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="#888" stroke-dasharray="5,4"/>`);
  parts.push(`<text x="${SIZE / 2}" y="${MARGIN - 28}" font-size="14" text-anchor="middle" font-family="DejaVu Sans, sans-serif">${escape(title)}</text>`);
  parts.push(
    `<text x="${SIZE / 2}" y="${MARGIN - 10}" font-size="11" text-anchor="middle" font-family="DejaVu Sans, sans-serif">Brier ${cal.brier.toFixed(3)} · ECE ${cal.ece.toFixed(3)} (${cal.bins.length} bins)</text>`,
  );
  parts.push(`<text x="${SIZE / 2}" y="${SIZE - 14}" font-size="12" text-anchor="middle" font-family="DejaVu Sans, sans-serif">predicted probability</text>`);
  parts.push(`<text x="16" y="${SIZE / 2}" font-size="12" text-anchor="middle" font-family="DejaVu Sans, sans-serif" transform="rotate(-90 16 ${SIZE / 2})">observed frequency</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${SIZE}" height="${SIZE}">${parts.join('')}</svg>`;
}

export async function reliabilityPng(title: string, cal: Calibration): Promise<Buffer> {
  return sharp(Buffer.from(reliabilitySvg(title, cal))).png().toBuffer();
}

const VARIANT_TITLES: Record<string, string> = { fused: 'fused (image + text)', imageOnly: 'image only (text masked)', textOnly: 'text only (image blanked)' };

/**
 * One PNG per variant into `dir` (reliability-<variant>.png, all findings pooled), so that a
 * team sees at a glance whether the model's probabilities can be read as frequencies.
 */
export async function writeReliabilityPlots(report: EvaluationReport, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const [name, variant] of Object.entries(report.variants)) {
    if (!variant) continue;
    const file = path.join(dir, `reliability-${name}.png`);
    await writeFile(file, await reliabilityPng(`${report.model.id}@${report.model.version}: ${VARIANT_TITLES[name] ?? name}`, variant.calibration));
    files.push(file);
  }
  return files;
}
