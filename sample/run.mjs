// `npm run sample`: starts PostgreSQL and the Todo API, prints how to try it; Ctrl-C stops both.
import { startSample } from './start.mjs';

async function main() {
  const sample = await startSample();
  const stop = async (signal) => {
    console.log(`\n${signal}: stopping the app and PostgreSQL ...`);
    await sample.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  const { url } = sample;
  console.log(`
nestjs-bemi sample is running at ${url}  (Ctrl-C stops it and PostgreSQL)

Try:
  curl -s -X POST ${url}/todo -H 'content-type: application/json' -H 'x-user-id: 187234' -d '{"task": "Sleep"}'
  curl -s -X PUT ${url}/todo/1/complete -H 'x-user-id: 187234'
  curl -s ${url}/todo/1/history

or, in another terminal, npm run sample:demo
`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
