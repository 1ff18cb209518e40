/** The names a loopback-bound service answers to. */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '::1'];

/** A loopback address or name: only this machine can connect to it. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return LOOPBACK_HOSTS.includes(h) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
