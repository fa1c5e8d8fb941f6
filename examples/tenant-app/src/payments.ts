// A payment after the user authorised it at their bank: followed to its final status by reading
// it from the hub and by the `payment.status_changed` webhooks, both shown.

import type { App } from './app.js';
import { html, page } from './html.js';
import { must, type Schemas } from './kontor.js';
import type { Reply, Request } from './router.js';
import { eventList } from './users.js';

/** The statuses after which nothing changes any more. */
const FINAL: ReadonlySet<Schemas['PaymentStatus']> = new Set<Schemas['PaymentStatus']>(['completed', 'rejected', 'cancelled']);

/** Where the hub sends the user back, with payment_id and status. */
export function paid(request: Request): Reply {
  const id = request.query.get('payment_id');
  if (!id) return { redirect: '/' };
  return { redirect: `/payments/${encodeURIComponent(id)}` };
}

export async function showPayment(app: App, request: Request): Promise<Reply> {
  const id = request.params.id ?? '';
  const payment = await must(app.kontor.GET('/v1/payments/{id}', { params: { path: { id } } }));
  const events = app.inbox.about(
    (e) => e.type === 'payment.status_changed' && (e.data as Record<string, unknown>).payment_id === id,
  );
  const final = FINAL.has(payment.status);
  // Webhooks arrive in order per user: the newest one about this payment carries its latest status.
  const told = (events[0]?.event.data as Record<string, unknown> | undefined)?.status;
  const waiting = !final || told !== payment.status;
  const history = payment.history.map(
    (h) => html`<tr><td>${h.at}</td><td>${h.status}</td><td>${h.bank_status ?? ''}</td><td>${h.reason ?? ''}</td></tr>`,
  );
  return {
    page: page(
      `${payment.amount.value} ${payment.amount.currency} to ${payment.creditor_name}`,
      html`<p id="payment-status">Status: <b>${payment.status}</b>${payment.status_reason ? ` (${payment.status_reason})` : ''}${
        waiting ? html` <span class="muted">— following it, this page reloads</span>` : ''
      }</p>
<p class="muted">Payment <code>${payment.id}</code> at ${payment.bank_id}, ${payment.scheme}; the bank's id ${payment.bank_payment_id ?? '(none yet)'}.
<a href="/users/${payment.user_id}">The customer</a></p>
<h2>History</h2>
<table><tr><th>At</th><th>Status</th><th>Bank said</th><th>Why</th></tr>${history}</table>
<h2>Webhooks about this payment</h2>
${eventList(events)}`,
      {
        refreshSeconds: waiting ? 1 : undefined,
        data: {
          page: 'payment',
          'payment-id': payment.id,
          status: payment.status,
          final: String(final),
          'webhook-status': typeof told === 'string' ? told : '',
        },
      },
    ),
  };
}
