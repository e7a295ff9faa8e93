// Runs a CloudFront Function (cloudfront-js-2.0 code: a global `handler(event)`, no modules)
// in node on events in CloudFront's viewer-request shape, one JSON event per stdin line; writes
// what the handler returned, one JSON line each. Usage: node cloudfront_run.mjs FUNCTION.js
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import vm from 'node:vm';

const code = readFileSync(process.argv[2], 'utf8');
const handler = vm.runInNewContext(`${code}\n;handler`, {}, { filename: process.argv[2] });
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const result = await handler(JSON.parse(line));
  process.stdout.write(JSON.stringify(result) + '\n');
}
