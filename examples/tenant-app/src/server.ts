// Starts the app: reads the settings (src/config.ts), listens, registers its webhook endpoint at
// the hub unless given a secret, and prints one line with where it is. Stops on SIGTERM/SIGINT.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { type App, registerWebhooks, routes, WEBHOOK_PATH } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { Inbox } from './inbox.js';
import { KontorError, kontorClient } from './kontor.js';
import { secretKey } from './webhooks.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const inbox = new Inbox();
  const app: App = { kontor: kontorClient(config.kontor), inbox, publicUrl: config.publicUrl ?? '' };
  const router = routes(app);
  const server = createServer((request, response) => {
    router.serve(request, response).catch((err: unknown) => {
      console.error(err);
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  const { address, port } = server.address() as AddressInfo;
  app.publicUrl ||= `http://${address.includes(':') ? `[${address}]` : address}:${port}`;

  let endpoint = 'given by KONTOR_WEBHOOK_SECRET';
  if (config.webhookSecret) {
    inbox.useKeys([secretKey(config.webhookSecret)]);
  } else {
    const registered = await registerWebhooks(app.kontor, app.publicUrl);
    inbox.useKeys([registered.key]);
    endpoint = registered.id;
  }
  console.log(
    JSON.stringify({ app_url: app.publicUrl, webhook_url: `${app.publicUrl}${WEBHOOK_PATH}`, webhook_endpoint: endpoint }),
  );

  const stop = () => server.close(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  let why: string;
  if (err instanceof ConfigError) why = err.message;
  else if (err instanceof KontorError) why = `the hub answered ${err.status} ${err.code}: ${err.message} (request ${err.requestId})`;
  else why = (err as Error)?.stack ?? String(err);
  console.error(`tenant-app: ${why}`);
  process.exit(1);
});
