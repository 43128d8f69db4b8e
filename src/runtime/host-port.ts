// host:port as a dial/listen address, with IPv6 hosts in brackets.

export const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
