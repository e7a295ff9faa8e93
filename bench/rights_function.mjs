// The rights function's work per request in node, beside an empty function (both loaded by
// testbed/cloudfront_runtime.mjs with the same KeyValueStore), interleaved per repetition.
// Usage: node --experimental-vm-modules bench/rights_function.mjs PLAN.json
// PLAN: {function, kvs, now, repeat, iterations, classes: {name: [event, ...]}}; prints one
// JSON line: {name: {rights_ns: [...], empty_ns: [...], reads: n, statuses: [...]}}.
import { readFileSync } from 'node:fs';
import { load } from '../testbed/cloudfront_runtime.mjs';

const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const rights = await load(readFileSync(plan.function, 'utf8'), plan.kvs);
const empty = await load('async function handler(event) { return event.request; }', plan.kvs);
rights.setNow(plan.now);
empty.setNow(plan.now);

// Each call gets its own copy of the event: the function rewrites request.uri in place.
const copy = (event) => JSON.parse(JSON.stringify(event));

async function time(runtime, events, iterations) {
  const prepared = Array.from({ length: iterations }, (_, i) => copy(events[i % events.length]));
  const start = process.hrtime.bigint();
  for (const event of prepared) await runtime.handler(event);
  return Number(process.hrtime.bigint() - start) / iterations;
}

const out = {};
for (const [name, events] of Object.entries(plan.classes)) {
  const before = rights.reads.count;
  const answers = [];
  for (const event of events) answers.push(await rights.handler(copy(event)));
  out[name] = {
    reads: (rights.reads.count - before) / events.length,
    statuses: [...new Set(answers.map((a) => a.statusCode || 'pass'))],
    rights_ns: [], empty_ns: [],
  };
  await time(rights, events, plan.iterations); // warm the JIT on this class
  await time(empty, events, plan.iterations);
}
for (let r = 0; r < plan.repeat; r++) {
  for (const [name, events] of Object.entries(plan.classes)) {
    out[name].rights_ns.push(await time(rights, events, plan.iterations));
    out[name].empty_ns.push(await time(empty, events, plan.iterations));
  }
}
process.stdout.write(JSON.stringify(out) + '\n');
