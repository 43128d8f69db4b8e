// Errors are typed by what the user must do about them; one top-level handler renders them.

/** The user must act: fix input, a flag, a file, a host. `next` lists concrete next steps. */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    message: string,
    readonly next: readonly string[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Something outside us failed: a command, a remote host, a child process. Carries the command and stderr tail. */
export class ExternalError extends Error {
  override readonly name = 'ExternalError';
  constructor(
    message: string,
    readonly detail: { command?: string; exitCode?: number | null; signal?: string | null; stderrTail?: string } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A broken invariant in llama-relay itself. */
export class BugError extends Error {
  override readonly name = 'BugError';
}

export function formatError(err: unknown): string {
  if (err instanceof UserError) {
    const steps = err.next.map((s) => `  - ${s}`).join('\n');
    return `error: ${err.message}${steps ? `\nwhat to do:\n${steps}` : ''}`;
  }
  if (err instanceof ExternalError) {
    const d = err.detail;
    const lines = [`error: ${err.message}`];
    if (d.command) lines.push(`command: ${d.command}`);
    if (d.exitCode != null) lines.push(`exit code: ${d.exitCode}`);
    if (d.signal) lines.push(`signal: ${d.signal}`);
    if (d.stderrTail) lines.push(`stderr (last lines):\n${d.stderrTail}`);
    return lines.join('\n');
  }
  if (err instanceof Error) return `internal error: ${err.stack ?? err.message}`;
  return `internal error: ${String(err)}`;
}
