/** `model check DIR`: a model folder against its ONNX file, the mappings and a synthetic batch. */
import path from 'node:path';
import { TriageError } from '../domain/errors.ts';
import { checkModel, formatModelCheck } from '../compose/model-check.ts';
import { configFor, loggerFor, onePositional, type Command } from './command.ts';

export const modelCommand: Command = {
  name: 'model',
  synopsis: 'model check <DIR> [--json]',
  description: `check: validate a model folder before it runs — manifest.json (schema 1 or 2), the .onnx against its
sha256, the tokenizer, the ONNX graph's inputs and outputs against the manifest (names, ranks, types, fixed
dimensions), the mappings (each finding coded, selection rules) — and run one synthetic batch through
every declared input. Prints every problem with its fix (exit 1), or what the model needs and produces.
  --json          { ok, dir, problems: [{ where, problem, fix }], notes, summary }
The mappings are those of the configuration (--config; default mappings/).`,
  options: { json: { type: 'boolean', default: false } },
  async run(values, positionals, out) {
    const [sub, ...rest] = positionals;
    if (sub !== 'check') throw new TriageError('USAGE', `model: unknown subcommand "${sub ?? ''}" (check)`);
    const dir = onePositional(rest, 'model check', 'model folder');
    const config = configFor(values);
    const report = await checkModel(dir, { mappingsDir: path.resolve(config.mappings.dir), executionProviders: config.model.executionProviders }, loggerFor(values));
    if (values['json']) {
      const { manifest: _manifest, ...rest } = report;
      out.stdout(JSON.stringify(rest));
    } else {
      out.stdout(formatModelCheck(report));
    }
    return report.ok ? 0 : 1;
  },
};
