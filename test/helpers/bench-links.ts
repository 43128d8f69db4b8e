// What a bench process's command line says about its links: where a chain rank listens and whom it dials, where a
// ggml-rpc-server listens and whom the RPC head dials. Tests compare them to tell a direct link from a relayed one.

export interface LinkArgs {
  /** Chain ranks: --stage-listen and --stage-next (host:port). */
  readonly listen?: string;
  readonly next?: string;
  readonly layers?: string;
  /** A ggml-rpc-server's port (-p). */
  readonly rpcServerPort?: number;
  /** The RPC head's --rpc endpoints. */
  readonly rpcEndpoints?: readonly string[];
}

export function linkArgs(args: string): LinkArgs {
  const flag = (f: string) => new RegExp(`(?:^|\\s)${f} (\\S+)`).exec(args)?.[1];
  const rpcServer = /\/ggml-rpc-server\s/.test(args) ? flag('-p') : undefined;
  const rpc = flag('--rpc');
  return {
    listen: flag('--stage-listen'),
    next: flag('--stage-next'),
    layers: flag('--layer-range'),
    rpcServerPort: rpcServer === undefined ? undefined : Number(rpcServer),
    rpcEndpoints: rpc?.split(','),
  };
}
