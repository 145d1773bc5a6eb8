/**
 * A port free on loopback now, for a process the test starts itself (nginx, FerretDB, dinhdanh):
 * the operating system picks it, the probe lets it go.
 */
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  await once(server.listen(0, host), 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}
