/**
 * Synchronous loading of the Emscripten-built codecs from @cornerstonejs (libjpeg-turbo, CharLS,
 * OpenJPEG). Their factories instantiate asynchronously by default; the `instantiateWasm` hook
 * lets us compile and instantiate the bundled .wasm synchronously, so a codec is ready the
 * first time a frame needs it (PixelCodec.decodeFrame is synchronous) and costs nothing when no
 * file needs it. Everything is read from node_modules: nothing is fetched.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The embind decoder classes share this shape. */
export interface EmbindDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned?: boolean };
  delete(): void;
}

interface EmscriptenModule {
  HEAPU8: Uint8Array;
  HEAPU32: Uint32Array;
  [exported: string]: unknown;
}

type Factory = (moduleArg: Record<string, unknown>) => unknown;

export class WasmCodec<D extends EmbindDecoder> {
  private compiled: WebAssembly.Module | undefined;
  private instance: EmscriptenModule | undefined;
  /** What the codec printed during the last call (OpenJPEG reports errors this way). */
  private printed: string[] = [];

  /**
   * @param label for messages, e.g. "OpenJPEG"
   * @param pkg   the package, whose `./decodewasmjs` and `./decodewasm` exports are the decoder-only build
   * @param className the embind class, e.g. "J2KDecoder"
   */
  constructor(
    readonly label: string,
    private readonly pkg: string,
    private readonly className: string,
  ) {}

  /**
   * Runs `fn` with a fresh decoder object (deleted afterwards). Errors come out as plain Errors
   * prefixed with the codec's label; a C++ exception carries the codec's own message. After an
   * Emscripten abort (a WebAssembly.RuntimeError) the instance is dropped, so the next call
   * starts from a clean one.
   */
  use<T>(fn: (decoder: D, printed: readonly string[]) => T): T {
    const m = this.module();
    this.printed = [];
    let decoder: D | undefined;
    try {
      const Ctor = m[this.className] as new () => D;
      decoder = new Ctor();
      return fn(decoder, this.printed);
    } catch (err) {
      if (typeof err === 'number') {
        const text = exceptionText(m, err) ?? lastErrors(this.printed) ?? 'it raised an error without a message';
        throw new Error(`${this.label}: ${text}`);
      }
      if (err instanceof WebAssembly.RuntimeError) {
        // An Emscripten abort (out of memory, a trap): this instance is finished.
        this.instance = undefined;
        decoder = undefined;
      }
      throw new Error(`${this.label}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      try {
        decoder?.delete();
      } catch {
        this.instance = undefined;
      }
    }
  }

  private module(): EmscriptenModule {
    if (this.instance !== undefined) return this.instance;
    this.compiled ??= new WebAssembly.Module(readFileSync(require.resolve(`${this.pkg}/decodewasm`)));
    const compiled = this.compiled;
    const factory = require(`${this.pkg}/decodewasmjs`) as Factory;
    const moduleArg: Record<string, unknown> = {
      print: (s: string) => this.printed.push(s),
      printErr: (s: string) => this.printed.push(s),
      instantiateWasm: (imports: WebAssembly.Imports, receive: (instance: WebAssembly.Instance) => void) => {
        const instance = new WebAssembly.Instance(compiled, imports);
        receive(instance);
        return instance.exports;
      },
    };
    // The factory returns a promise, but with a synchronous instantiateWasm the runtime is
    // initialised (and the embind classes are on moduleArg) before it returns.
    const ready = factory(moduleArg);
    if (ready instanceof Promise) ready.catch(() => undefined);
    if (typeof moduleArg[this.className] !== 'function') {
      throw new Error(`${this.label}: the WebAssembly module did not initialise synchronously (no ${this.className})`);
    }
    this.instance = moduleArg as unknown as EmscriptenModule;
    return this.instance;
  }
}

/**
 * The message of a C++ exception thrown by these builds: the exception object is either a
 * std::runtime_error (vtable, then a pointer to the message) or a thrown `const char*`.
 */
function exceptionText(m: EmscriptenModule, ptr: number): string | undefined {
  for (const at of [ptr + 4, ptr]) {
    const p = m.HEAPU32[at >>> 2];
    if (p === undefined || p === 0) continue;
    const s = cString(m.HEAPU8, p);
    const clean = s.replace(/^[^A-Za-z]+/, '').trim();
    if (clean.length >= 4 && /^[\x20-\x7e\n]+$/.test(s.replace(/^[^A-Za-z]+/, ''))) return clean;
  }
  return undefined;
}

function cString(heap: Uint8Array, p: number): string {
  let s = '';
  for (let i = p; i < heap.length && i < p + 400; i++) {
    const c = heap[i] ?? 0;
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** "[ERROR] …" lines a codec printed, joined; undefined when there were none. */
export function lastErrors(printed: readonly string[]): string | undefined {
  const errors = printed.filter((l) => /error/i.test(l)).map((l) => l.replace(/^\[ERROR\]\s*/, '').trim());
  return errors.length > 0 ? errors.join('; ') : undefined;
}
