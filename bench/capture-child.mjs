// Runs the capture worker alone in this process, so the benchmark can read its peak RSS.
// argv: <source url> [<capture options as JSON>]. Prints "ready" once streaming, stops cleanly on SIGTERM.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { BemiCaptureWorker } = require('../dist/capture/capture.worker.js');
const { resolveCaptureOptions } = require('../dist/options/capture-options.js');

const quiet = { log: () => {}, warn: (m) => process.stderr.write(`[worker] ${m}\n`), error: (m) => process.stderr.write(`[worker] ${m}\n`) };
const worker = new BemiCaptureWorker(resolveCaptureOptions({ source: process.argv[2], logger: quiet, progressIntervalMs: 0, ...JSON.parse(process.argv[3] ?? '{}') }));
await worker.start();
process.stdout.write('ready\n');
process.on('SIGTERM', async () => {
  await worker.stop();
  process.exit(0);
});
