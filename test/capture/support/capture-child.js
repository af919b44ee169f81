// Runs `nestjs-bemi capture` in a separate process, so tests can kill -9 it. Loads the library
// as compiled by compileLib() (processes.ts) into the directory named by BEMI_CAPTURE_LIB.
require('reflect-metadata');
const { join } = require('node:path');
const { runCaptureCommand } = require(join(process.env.BEMI_CAPTURE_LIB, 'cli', 'commands', 'capture.command.js'));

runCaptureCommand(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(70);
  },
);
