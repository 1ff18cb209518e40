/**
 * Whether this process shares the machine's network. Orthanc binds every interface, so what the
 * sandbox says about its reach, and whether `npm test` needs a namespace of its own, depend on it.
 */
import { readFileSync } from 'node:fs';

/**
 * The network interfaces of this process's namespace, from /proc/self/net/dev; undefined where
 * there is no such file (not Linux). Not /sys/class/net: sysfs lists the interfaces of the
 * namespace it was mounted in, so after `unshare --net` it still shows the host's.
 */
export function interfacesHere(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): string[] | undefined {
  let text: string;
  try {
    text = read('/proc/self/net/dev');
  } catch {
    return undefined;
  }
  // Two header lines, then "  name: counters…" per interface.
  return text
    .split('\n')
    .slice(2)
    .map((line) => line.split(':')[0]?.trim() ?? '')
    .filter((name) => name !== '');
}

/** True when the only interface here is loopback: nothing outside this namespace reaches a port opened in it. */
export function onlyLoopbackHere(read?: (path: string) => string): boolean {
  const names = interfacesHere(read);
  return names !== undefined && names.length > 0 && names.every((n) => n === 'lo');
}
