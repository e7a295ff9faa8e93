// The browser tests' Chromium: the system `chromium` (Debian's) driven by playwright-core, headless,
// a fresh profile, no outside name lookups. `serveCases(run)` launches it and answers one JSON
// case per stdin line with one JSON result per stdout line; the first line it writes is
// {"ready": true, "version": ...} or {"launch_error": ...} (then it exits 1). The drivers
// (play.mjs, preview.mjs) differ only in `run(context, case)`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

// The flags, verbatim; playwright adds --headless and --user-data-dir (ours, fresh).
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
];

function write(doc) {
  process.stdout.write(JSON.stringify(doc) + '\n');
}

export async function serveCases(run) {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  const profile = mkdtempSync(join(tmpdir(), 'cdnpack-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30000,
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    write({ launch_error: String(e.message || e).split('\n')[0] });
    process.exit(1);
  }
  write({ ready: true, version: context.browser()?.version() ?? '' });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let result;
    try {
      result = await run(context, JSON.parse(line));
    } catch (e) {
      result = { ok: false, driver_error: String(e.message || e).split('\n')[0] };
    }
    write(result);
  }
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
