// The IO edge of device probing: run DEVICES_SCRIPT on a node through its transport, with the node's own llama-server.
import type { Transport } from '../ssh/transport.js';
import { devicesArgv, parseDevicesProbe, type NodeDevices } from './node-devices.js';

/** What the node's engine and OS report; `binary` is llama-server on that node (after provisioning). */
export async function probeNodeDevices(t: Transport, binary: string, signal?: AbortSignal): Promise<NodeDevices> {
  const { stdout } = await t.exec(devicesArgv(binary), { timeoutMs: 60_000, ...(signal ? { signal } : {}) });
  return parseDevicesProbe(stdout);
}
