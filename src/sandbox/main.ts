// Entry point of `npm run sandbox` (node --import tsx src/sandbox/main.ts [options]).
import { parseSandboxArgs, runSandbox, sandboxUsage } from './cli.ts';

let options: ReturnType<typeof parseSandboxArgs>;
try {
  options = parseSandboxArgs(process.argv.slice(2));
} catch (err) {
  console.error(`sandbox: ${(err as Error).message}\n\n${sandboxUsage()}`);
  process.exit(2);
}
if (options === 'help') {
  console.log(sandboxUsage());
} else {
  process.exitCode = await runSandbox(options);
}
