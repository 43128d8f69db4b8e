// Splits a byte stream into complete lines; a trailing partial line waits for more data or end().

export class LineSplitter {
  private partial = '';
  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer | string): void {
    const text = this.partial + chunk.toString();
    const parts = text.split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.onLine(line);
  }

  end(): void {
    if (this.partial) this.onLine(this.partial);
    this.partial = '';
  }
}
