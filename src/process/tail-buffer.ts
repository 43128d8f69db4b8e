// Keeps only the last lines of a stream, so a crash report shows what matters without holding a whole log.

export class TailBuffer {
  private readonly lines: string[] = [];
  constructor(readonly capacity = 40) {}

  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.shift();
  }

  last(n = this.capacity): string[] {
    return this.lines.slice(-n);
  }

  toString(n = this.capacity): string {
    return this.last(n).join('\n');
  }
}
