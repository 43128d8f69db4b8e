// Splits N layers over k ranks as evenly as possible (used when no GGUF plan is wanted, e.g. fixtures and `--layers`).

export function evenSplit(layers: number, ranks: number): { layerStart: number; layerEnd: number }[] {
  if (!Number.isInteger(layers) || !Number.isInteger(ranks) || ranks < 1 || layers < ranks) {
    throw new Error(`cannot split ${layers} layers over ${ranks} ranks`);
  }
  const base = Math.floor(layers / ranks);
  const extra = layers % ranks;
  let start = 0;
  return Array.from({ length: ranks }, (_, i) => {
    const n = base + (i < extra ? 1 : 0);
    const r = { layerStart: start, layerEnd: start + n };
    start += n;
    return r;
  });
}
