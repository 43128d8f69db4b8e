// Waits for an Ink frame that matches `re` (and not `not`): the store batches events, so a frame comes a little later.
export async function frameMatching(lastFrame: () => string | undefined, re: RegExp, not?: RegExp): Promise<string> {
  const end = Date.now() + 10_000;
  for (;;) {
    const f = lastFrame() ?? '';
    if (re.test(f) && !(not && not.test(f))) return f;
    if (Date.now() > end) throw new Error(`frame never matched ${re}${not ? ` without ${not}` : ''}:\n${f}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
