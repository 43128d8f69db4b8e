// Runs the stock (unpatched) llama-server on a model for a test and talks to it over HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import getPort from 'get-port';
import { stockBinDir } from './llama-src.js';

export interface StockServer {
  readonly url: string;
  readonly pid: number;
  completion(prompt: string, nPredict: number): Promise<{ content: string; tokens_predicted: number; [k: string]: unknown }>;
  stop(): Promise<void>;
  log(): string;
}

export async function startStockServer(model: string, extraArgs: string[] = []): Promise<StockServer> {
  const bin = join(await stockBinDir(), 'llama-server');
  const port = await getPort();
  // defaults first: llama-server takes the last value of a repeated flag, so extraArgs can override them
  const args = ['-m', model, '--host', '127.0.0.1', '--port', String(port), '-c', '512', '-t', '1', '--no-webui', '--parallel', '1', ...extraArgs];
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`llama-server exited with ${child.exitCode}:\n${output}`);
    try {
      const r = await fetch(`${url}/health`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`llama-server did not become healthy in 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    pid: child.pid!,
    log: () => output,
    stop,
    async completion(prompt, nPredict) {
      const r = await fetch(`${url}/completion`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt, n_predict: nPredict, temperature: 0, cache_prompt: false, n_probs: 3 }),
      });
      if (!r.ok) throw new Error(`completion failed: HTTP ${r.status} ${await r.text()}`);
      return (await r.json()) as { content: string; tokens_predicted: number };
    },
  };
}
