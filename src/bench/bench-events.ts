// Progress of a bench run as a typed event stream, and one plain line per event (keyed by kind).
import type { Sample } from './bench-result.js';

export type BenchEvent =
  | { kind: 'config-start'; id: string; description: string; round?: { index: number; of: number } }
  | { kind: 'process-ready'; id: string; label: string; loadMs: number }
  | { kind: 'sample'; id: string; promptTokens: number; parallel: number; repeat: number; sample: Sample }
  | { kind: 'config-done'; id: string }
  | { kind: 'config-failed'; id: string; message: string }
  | { kind: 'info'; message: string };

export type BenchEventKind = BenchEvent['kind'];
type Formatters = { [K in BenchEventKind]: (e: Extract<BenchEvent, { kind: K }>) => string };

const f1 = (n: number) => n.toFixed(1);

const formatters: Formatters = {
  'config-start': (e) => `[${e.id}] ${e.description}${e.round && e.round.of > 1 ? ` (round ${e.round.index + 1}/${e.round.of})` : ''}`,
  'process-ready': (e) => `[${e.id}] ${e.label} ready in ${(e.loadMs / 1000).toFixed(2)} s`,
  sample: (e) =>
    `[${e.id}] prompt ${e.promptTokens} x${e.parallel} #${e.repeat + 1}: ttft ${f1(e.sample.ttftMs)} ms, ` +
    `prefill ${f1(e.sample.prefillTps)} tok/s, decode ${f1(e.sample.decodeTps)} tok/s`,
  'config-done': (e) => `[${e.id}] done`,
  'config-failed': (e) => `[${e.id}] FAILED: ${e.message}`,
  info: (e) => e.message,
};

export function formatBenchEvent(e: BenchEvent): string {
  return (formatters[e.kind] as (e: BenchEvent) => string)(e);
}
