import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../../../../src/adapters/http/client.ts';

/** A server that announces what Orthanc announces by default: `Keep-Alive: timeout=1`. */
describe('HttpClient keep-alive with a 1 s server hint (Orthanc\'s default KeepAliveTimeout)', () => {
  let server: http.Server;
  let connections = 0;
  let client: HttpClient;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'keep-alive': 'timeout=1', connection: 'keep-alive' });
        res.end('ok');
      });
    });
    server.keepAliveTimeout = 1_000;
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = new HttpClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutMs: 2_000, name: 'pacs' });
  });
  afterAll(async () => {
    client.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('reuses one connection for back-to-back requests (Node alone would open one per request)', async () => {
    connections = 0;
    for (let i = 0; i < 10; i++) expect((await client.request({ method: i % 2 ? 'POST' : 'GET', path: 'x', ...(i % 2 ? { body: 'b' } : {}) })).status).toBe(200);
    expect(connections).toBe(1);
  });

  it('drops an idle connection after half the hint, well before the server would close it', async () => {
    await new Promise((r) => setTimeout(r, 700)); // the pooled socket of the test before is gone
    connections = 0;
    await client.request({ path: 'x' });
    expect(connections).toBe(1);
    await new Promise((r) => setTimeout(r, 700));
    await client.request({ path: 'x' });
    expect(connections).toBe(2);
  });
});

describe('HttpClient: a reused connection the server has just closed', () => {
  it('is sent again once on a new connection when safe to repeat (GET, PUT); a POST, or a reset on a fresh connection, is an error', async () => {
    let connections = 0;
    let resetFresh = false;
    const server = http.createServer((req, res) => {
      const socket = req.socket as typeof req.socket & { served?: number };
      socket.served = (socket.served ?? 0) + 1;
      // The race a keep-alive timeout makes: the server drops a pooled connection as it is reused.
      if (socket.served > 1 || resetFresh) {
        socket.destroy();
        return;
      }
      req.resume();
      res.writeHead(200, { 'keep-alive': 'timeout=1' });
      res.end('ok');
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = new HttpClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutMs: 2_000, name: 'pacs' });
    try {
      expect((await client.request({ path: 'a' })).status).toBe(200);
      expect((await client.request({ method: 'PUT', path: 'b', body: 'x' })).status).toBe(200);
      expect(connections).toBe(2);
      // A POST may have been acted on before the reset: not sent again, the caller retries.
      await expect(client.request({ method: 'POST', path: 'c', body: 'x' })).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
      expect(connections).toBe(2);
      expect((await client.request({ path: 'd' })).status).toBe(200);
      expect(connections).toBe(3);
      resetFresh = true;
      await new Promise((r) => setTimeout(r, 700)); // no pooled socket left: the next one is fresh
      await expect(client.request({ path: 'c' })).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    } finally {
      client.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
