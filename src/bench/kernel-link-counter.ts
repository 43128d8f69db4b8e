// Bytes on direct loopback links, read from the kernel's per-connection TCP counters (`ss -tin`): no user-space hop
// in the link's path, as in a real deployment. Without ss the bytes are NaN (not measured), never 0.
import { localHost } from '../process/command-host.js';
import { runToCompletion } from '../process/managed-process.js';
import type { LinkCounter, LinkCounts } from './link-counter.js';
import { EMPTY_TALLY, parseSsTcpInfo, portCounts, tallyReading, type PortTally, type TcpConnection } from './ss-tcp-info.js';

const SS_ARGV = ['ss', '-tinH', 'state', 'established'] as const;

const NOT_MEASURED: LinkCounts = { forwardBytes: Number.NaN, backwardBytes: Number.NaN, connections: Number.NaN, heldChunks: 0, heldMsSum: 0 };

/** Runs ss on this machine; one per bench run, so a missing ss is said once. */
export class TcpInfoReader {
  private inFlight: Promise<readonly TcpConnection[] | undefined> | undefined;
  private said = false;

  constructor(
    private readonly info: (message: string) => void,
    private readonly argv: readonly string[] = SS_ARGV,
  ) {}

  /** The established connections now, or undefined when ss cannot tell. Calls while one ss runs share its reading. */
  read(): Promise<readonly TcpConnection[] | undefined> {
    this.inFlight ??= this.run().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async run(): Promise<readonly TcpConnection[] | undefined> {
    const o = await runToCompletion(localHost.commandSpec(this.argv, 'ss (link byte counters)'), { timeoutMs: 10_000 });
    if (o.exitCode === 0) return parseSsTcpInfo(o.stdout);
    if (!this.said) {
      this.said = true;
      const why = o.exitCode === 127 ? 'ss is not installed (apt-get install iproute2)' : `${this.argv.join(' ')} failed: ${o.meaning}${o.stderrTail.length ? `: ${o.stderrTail.at(-1)}` : ''}`;
      this.info(`bench: bytes on direct local links are not measured: ${why}`);
    }
    return undefined;
  }
}

/** The links of one configuration, each named by the port its server end listens on. */
export class KernelLinkCounters {
  private tally: PortTally = EMPTY_TALLY;
  private lastReading: readonly TcpConnection[] | undefined;
  private readonly ports = new Set<number>();

  constructor(private readonly reader: TcpInfoReader) {}

  /** The link to the server listening on `port`. */
  counter(port: number): LinkCounter {
    this.ports.add(port);
    return { snapshot: () => this.snapshot(port), close: async () => undefined };
  }

  private async snapshot(port: number): Promise<LinkCounts> {
    const reading = await this.reader.read();
    if (!reading) return NOT_MEASURED;
    // Several links read in one go share a reading: fold it in once.
    if (reading !== this.lastReading) {
      this.lastReading = reading;
      this.tally = tallyReading(this.tally, reading, this.ports);
    }
    return portCounts(this.tally, port);
  }
}
