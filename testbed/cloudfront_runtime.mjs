// A stand-in for the CloudFront Functions runtime (cloudfront-js-2.0) in node: the function's
// code is evaluated as the ES module CloudFront evaluates (strict mode, its own global scope,
// `import cf from 'cloudfront'`), with a KeyValueStore read from a file in the KeyValueStore
// import format ({"data": [{"key": ..., "value": ...}]}, checked against the store's limits),
// and a clock the caller may set: Date.now() and new Date() answer the event's "now".
//
// As a program: node --experimental-vm-modules cloudfront_runtime.mjs FUNCTION.js [KVS.json]
// reads one JSON line per request, {"id": ..., "event": {...}, "now": MS (optional)}, and
// answers one JSON line each, {"id": ..., "result": ...} or {"id": ..., "error": "..."} (a
// function that throws: CloudFront answers the viewer 503). Requests run one at a time.
// As a module: `await load(code, kvsFile)` returns {handler, setNow, reads} (the benchmarks';
// reads.count: the KeyValueStore reads so far).
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';

// CloudFront KeyValueStore limits (the import file's, which are the store's).
export const MAX_KEY_BYTES = 512;
export const MAX_VALUE_BYTES = 1024;
export const MAX_STORE_BYTES = 5 * 1024 * 1024;

export function readStore(path) {
  const text = readFileSync(path, 'utf8');
  if (Buffer.byteLength(text) > MAX_STORE_BYTES) {
    throw new Error(`${path}: over the KeyValueStore's ${MAX_STORE_BYTES} bytes`);
  }
  const doc = JSON.parse(text);
  if (!doc || !Array.isArray(doc.data)) throw new Error(`${path}: no "data" list`);
  const store = new Map();
  for (const item of doc.data) {
    const { key, value } = item || {};
    if (typeof key !== 'string' || !key || typeof value !== 'string') {
      throw new Error(`${path}: every item needs a string key and value`);
    }
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new Error(`${path}: key over 512 bytes`);
    if (Buffer.byteLength(value) > MAX_VALUE_BYTES) {
      throw new Error(`${path}: value of ${key} over 1024 bytes`);
    }
    if (store.has(key)) throw new Error(`${path}: duplicate key ${key}`);
    store.set(key, value);
  }
  return store;
}

// The `cloudfront` module's kvs() handle over a Map: get() rejects for a missing key, as
// CloudFront's does; formats string (default), json and bytes. `reads` counts the calls.
function kvsHandle(store, reads) {
  return {
    async get(key, options) {
      reads.count += 1;
      if (!store.has(key)) throw new Error(`KeyValueStore: key not found: ${key}`);
      const value = store.get(key);
      const format = (options && options.format) || 'string';
      if (format === 'json') return JSON.parse(value);
      if (format === 'bytes') return Buffer.from(value);
      return value;
    },
    async exists(key) {
      reads.count += 1;
      return store.has(key);
    },
    async meta() {
      return { keyCount: store.size };
    },
  };
}

// Date in the function's realm, answering the caller's instant when one is set.
const CLOCK = `(() => {
  const RealDate = Date;
  let fixed = null;
  class FunctionDate extends RealDate {
    constructor(...args) {
      if (args.length === 0 && fixed !== null) super(fixed); else super(...args);
    }
    static now() { return fixed === null ? RealDate.now() : fixed; }
  }
  globalThis.Date = FunctionDate;
  return (ms) => { fixed = ms; };
})()`;

export async function load(code, kvsFile) {
  const context = vm.createContext({});
  const setNow = vm.runInContext(CLOCK, context);
  const store = kvsFile ? readStore(kvsFile) : new Map();
  const reads = { count: 0 };
  const cloudfront = { kvs: () => kvsHandle(store, reads) };
  // CloudFront calls the module's top-level `handler`; exporting it is how we reach it.
  const module = new vm.SourceTextModule(`${code}\nexport { handler };`,
    { context, identifier: 'cloudfront-function.js' });
  await module.link(async (specifier) => {
    if (specifier !== 'cloudfront') throw new Error(`no module ${specifier} at the edge`);
    return new vm.SyntheticModule(['default'], function () {
      this.setExport('default', cloudfront);
    }, { context });
  });
  await module.evaluate();
  return { handler: module.namespace.handler, setNow, reads };
}

async function main() {
  const [codeFile, kvsFile] = process.argv.slice(2);
  const { handler, setNow } = await load(readFileSync(codeFile, 'utf8'), kvsFile);
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const request = JSON.parse(line);
    setNow(typeof request.now === 'number' ? request.now : null);
    let answer;
    try {
      answer = { id: request.id, result: await handler(request.event) };
    } catch (error) {
      answer = { id: request.id, error: String(error && error.message || error) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    process.stderr.write(`cloudfront_runtime: ${error.message}\n`);
    process.exit(2);
  });
}
