// llama-server's per-request `timings` → Ollama's counts and nanosecond durations.

export interface LlamaTimings {
  cache_n?: number;
  prompt_n?: number;
  prompt_ms?: number;
  predicted_n?: number;
  predicted_ms?: number;
}

export interface OllamaStats {
  total_duration: number;
  load_duration: number;
  prompt_eval_count: number;
  prompt_eval_duration: number;
  eval_count: number;
  eval_duration: number;
}

const ns = (ms: number | undefined) => Math.round((ms ?? 0) * 1e6);

/** totalMs: the request's wall time at the API. The chain is loaded before the API serves, so nothing is loaded per request. */
export function ollamaStats(t: LlamaTimings | undefined, totalMs: number): OllamaStats {
  return {
    total_duration: ns(totalMs),
    load_duration: 0,
    prompt_eval_count: t?.prompt_n ?? 0,
    prompt_eval_duration: ns(t?.prompt_ms),
    eval_count: t?.predicted_n ?? 0,
    eval_duration: ns(t?.predicted_ms),
  };
}

/** llama-server's stop_type / OpenAI finish_reason → Ollama's done_reason. */
export const doneReason = (r: string | null | undefined): 'stop' | 'length' => (r === 'limit' || r === 'length' ? 'length' : 'stop');
