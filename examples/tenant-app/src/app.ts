// The app: its routes, and the webhook endpoint it registers at the hub for itself.

import { showAccount, pay } from './accounts.js';
import { html, page } from './html.js';
import { Inbox } from './inbox.js';
import { type Kontor, must, type Schemas } from './kontor.js';
import { paid, showPayment } from './payments.js';
import { Router } from './router.js';
import { createUser, eventList, home, linkBank, linked, showUser } from './users.js';
import { secretKey } from './webhooks.js';

export interface App {
  kontor: Kontor;
  inbox: Inbox;
  /** Where browsers and the hub reach the app, without a trailing slash. */
  publicUrl: string;
}

/** What the app wants to be told; each must be an event type of the hub's document. */
const EVENTS: Schemas['EventType'][] = [
  'connection.active',
  'connection.failed',
  'connection.expired',
  'connection.revoked',
  'transactions.updated',
  'payment.status_changed',
];

export const WEBHOOK_PATH = '/webhooks/kontor';

export function routes(app: App): Router {
  return new Router()
    .on('GET', '/', () => home(app))
    .on('POST', '/users', (r) => createUser(app, r))
    .on('GET', '/users/:id', (r) => showUser(app, r))
    .on('POST', '/users/:id/connections', (r) => linkBank(app, r))
    .on('GET', '/linked', (r) => linked(app, r))
    .on('GET', '/accounts/:id', (r) => showAccount(app, r))
    .on('POST', '/accounts/:id/payments', (r) => pay(app, r))
    .on('GET', '/paid', async (r) => paid(r))
    .on('GET', '/payments/:id', (r) => showPayment(app, r))
    .on('GET', '/webhooks', async () => webhooksPage(app))
    .on('POST', WEBHOOK_PATH, async (r) => {
      await app.inbox.handle(r.raw, r.response);
      return { done: true };
    });
}

function webhooksPage(app: App) {
  const refused = app.inbox.refused.map((r) => html`<li>${r.at.toISOString()}: ${r.reason}</li>`);
  return {
    page: page(
      'Webhooks received',
      html`<p>Every delivery's signature is checked before it is believed (Standard Webhooks, at most five minutes old).</p>
${eventList(app.inbox.received)}
<h2>Refused deliveries</h2>
${refused.length ? html`<ul id="refused">${refused}</ul>` : html`<p class="muted">None.</p>`}`,
      { data: { page: 'webhooks', received: String(app.inbox.received.length), refused: String(app.inbox.refused.length) } },
    ),
  };
}

/**
 * The signing secret for the app's own endpoint: a new endpoint on the first start, and on later
 * starts (the secret was shown once, and this app keeps it only in memory) a rotated secret for
 * the endpoint it registered before: the hub signs with both for a day, so nothing is lost.
 */
export async function registerWebhooks(kontor: Kontor, publicUrl: string): Promise<{ id: string; key: Buffer }> {
  const url = `${publicUrl}${WEBHOOK_PATH}`;
  const endpoints = await must(kontor.GET('/v1/webhook-endpoints'));
  const mine = endpoints.data.find((e) => e.url === url);
  let endpoint: Schemas['WebhookEndpointResponse'];
  if (mine) {
    endpoint = await must(kontor.POST('/v1/webhook-endpoints/{id}/rotate-secret', { params: { path: { id: mine.id } } }));
    if (mine.status !== 'enabled') {
      await must(kontor.PATCH('/v1/webhook-endpoints/{id}', { params: { path: { id: mine.id } }, body: { status: 'enabled' } }));
    }
  } else {
    endpoint = await must(
      kontor.POST('/v1/webhook-endpoints', { body: { url, events: EVENTS, description: 'Budgetly (the sample tenant app)' } }),
    );
  }
  if (!endpoint.secret) throw new Error(`webhook endpoint ${endpoint.id} came without its secret`);
  return { id: endpoint.id, key: secretKey(endpoint.secret) };
}
