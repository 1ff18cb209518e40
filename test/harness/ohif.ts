/**
 * The OHIF viewer for tests: the built viewer the npm package `@ohif/app` ships (`dist/`), served
 * by a small node:http server on loopback that also forwards `/dicom-web/*` to a test Orthanc with
 * its basic auth (same origin, so the browser needs no CORS and never sees the Orthanc password).
 *
 * Where the viewer comes from: `@ohif/app` is NOT a dependency — installing it pulls ~1,600
 * packages for a viewer the service never runs. `.ci/run` fetches the tarball with
 * `npm pack @ohif/app@<OHIF_VERSION>` (npm registry only) into node_modules/.cache/ (git-ignored,
 * and wiped by `npm ci`, so it is fetched after it) and extracts `package/dist` there, before the
 * network namespace is entered. `OHIF_DIST` overrides the folder.
 *
 *   describe.skipIf(!requireOhif())('...', () => { ... startOhifServer({ dist: ohifDist(), orthanc }) ... });
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { request as httpRequest, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const OHIF_VERSION = '3.13.2';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const OHIF_CACHE = path.join(ROOT, 'node_modules', '.cache', `ohif-app-${OHIF_VERSION}`);

/** The folder holding the built viewer (index.html, app-config.js, bundles). */
export function ohifDist(): string {
  return process.env['OHIF_DIST'] ?? path.join(OHIF_CACHE, 'dist');
}

function isCi(): boolean {
  const v = process.env['CI'];
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/** True when the built viewer is there. Missing: throws when CI is set, else warns and returns false. */
export function requireOhif(): boolean {
  const dist = ohifDist();
  if (existsSync(path.join(dist, 'index.html')) && existsSync(path.join(dist, 'app-config.js'))) return true;
  const message =
    `the OHIF viewer (@ohif/app ${OHIF_VERSION} dist/) is not at ${dist}: fetch it with ` +
    `\`npm pack @ohif/app@${OHIF_VERSION} --pack-destination node_modules/.cache && ` +
    `mkdir -p ${path.relative(ROOT, OHIF_CACHE)} && tar xzf node_modules/.cache/ohif-app-${OHIF_VERSION}.tgz ` +
    `-C ${path.relative(ROOT, OHIF_CACHE)} --strip-components=1 package/dist\` (as .ci/run does) or set OHIF_DIST`;
  if (isCi()) throw new Error(`${message}. CI is set, so the OHIF test fails instead of skipping.`);
  console.warn(`[pacs-triage tests] SKIPPING the OHIF viewer test: ${message}`);
  return false;
}

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** True when Debian's chromium is there. Missing: throws when CI is set, else warns and returns false. */
export function requireChromium(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const message = `Chromium is not available at ${CHROMIUM}: install the Debian package \`chromium\` or set CHROMIUM_PATH`;
  if (isCi()) throw new Error(`${message}. CI is set, so the browser test fails instead of skipping.`);
  console.warn(`[pacs-triage tests] SKIPPING the OHIF viewer test: ${message}`);
  return false;
}

/** Flags for headless Chromium as root, offline (no sandbox, no GPU, nothing fetched in the background). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

export interface OhifServerOptions {
  dist: string;
  /** Orthanc's DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web */
  dicomWebUrl: string;
  /** `Basic …` header added to every forwarded request. */
  authorization: string;
}

export interface OhifServer {
  url: string;
  /** Every request the viewer made to /dicom-web, with Orthanc's status. */
  dicomWebRequests: { method: string; path: string; status: number }[];
  /** Requests that were neither a file of dist/ nor /dicom-web (the viewer asked for something else). */
  notFound: string[];
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
};

/**
 * The app-config the viewer loads instead of the shipped one: one DICOMweb data source, Orthanc
 * through the same-origin proxy, nothing else (no study list from elsewhere, no dialogs).
 */
export function ohifAppConfig(): string {
  const config = {
    routerBasename: '/',
    extensions: [],
    modes: [],
    customizationService: {},
    showStudyList: true,
    maxNumberOfWebWorkers: 1,
    showWarningMessageForCrossOrigin: false,
    showCPUFallbackMessage: false,
    showLoadingIndicator: true,
    strictZSpacingForVolumeViewport: true,
    investigationalUseDialog: { option: 'never' },
    maxNumRequests: { interaction: 20, thumbnail: 4, prefetch: 4 },
    showErrorDetails: 'always',
    defaultDataSourceName: 'orthanc',
    dataSources: [
      {
        namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
        sourceName: 'orthanc',
        configuration: {
          friendlyName: 'Orthanc (pacs-triage test)',
          name: 'orthanc',
          wadoUriRoot: '__ORIGIN__/dicom-web',
          qidoRoot: '__ORIGIN__/dicom-web',
          wadoRoot: '__ORIGIN__/dicom-web',
          qidoSupportsIncludeField: false,
          supportsReject: false,
          imageRendering: 'wadors',
          thumbnailRendering: 'wadors',
          enableStudyLazyLoad: true,
          supportsFuzzyMatching: false,
          supportsWildcard: true,
          staticWado: false,
          singlepart: 'bulkdata,video',
          bulkDataURI: { enabled: true, relativeResolution: 'studies' },
          omitQuotationForMultipartRequest: true,
        },
      },
    ],
  };
  return `window.config = ${JSON.stringify(config, null, 2)};\n`.replaceAll('"__ORIGIN__', 'window.location.origin + "');
}

/** Serves dist/ (SPA: unknown paths get index.html) and proxies /dicom-web to Orthanc. */
export async function startOhifServer(options: OhifServerOptions): Promise<OhifServer> {
  const dist = path.resolve(options.dist);
  const upstream = new URL(options.dicomWebUrl.replace(/\/+$/, ''));
  const dicomWebRequests: OhifServer['dicomWebRequests'] = [];
  const notFound: string[] = [];
  const config = ohifAppConfig();

  const sendFile = (res: ServerResponse, file: string): void => {
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-length': statSync(file).size,
      'cache-control': 'no-store',
    });
    createReadStream(file).pipe(res);
  };

  const proxy = (req: IncomingMessage, res: ServerResponse, pathAndQuery: string): void => {
    const headers = { ...req.headers, authorization: options.authorization };
    // Orthanc builds the BulkDataURIs in the metadata from Host: keep the browser's (ours), so
    // they point back through this proxy.
    const out = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: `${upstream.pathname}${pathAndQuery}`, headers },
      (up) => {
        dicomWebRequests.push({ method: req.method ?? 'GET', path: pathAndQuery, status: up.statusCode ?? 0 });
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on('error', (err) => {
      dicomWebRequests.push({ method: req.method ?? 'GET', path: pathAndQuery, status: 502 });
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy error: ${err.message}`);
    });
    req.pipe(out);
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/dicom-web' || url.pathname.startsWith('/dicom-web/')) {
      proxy(req, res, `${url.pathname.slice('/dicom-web'.length)}${url.search}`);
      return;
    }
    if (url.pathname === '/app-config.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
      res.end(config);
      return;
    }
    const file = path.join(dist, decodeURIComponent(url.pathname));
    if (file.startsWith(dist + path.sep) && existsSync(file) && statSync(file).isFile()) {
      sendFile(res, file);
      return;
    }
    if (path.extname(url.pathname) !== '') {
      notFound.push(url.pathname);
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    sendFile(res, path.join(dist, 'index.html'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    dicomWebRequests,
    notFound,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
