// Users and their bank links: the home page (create a user), a user's page (connections,
// accounts with balances, payments, the webhooks about them), sending the user to the hub's
// connect page, and where they come back.

import type { App } from './app.js';
import { html, page, type Html } from './html.js';
import { must, type Schemas } from './kontor.js';
import type { Reply, Request } from './router.js';

/** The regions this app offers; each must be one the hub's document lists, or tsc says so. */
const REGIONS: readonly Schemas['Region'][] = ['de', 'uk'];

export async function home(app: App): Promise<Reply> {
  const users = await must(app.kontor.GET('/v1/users', { params: { query: { limit: 50 } } }));
  const suggestion = `customer-${Date.now().toString(36)}`;
  const rows = users.data.map(
    (u) => html`<tr><td><a href="/users/${u.id}" data-user-id="${u.id}">${u.external_id}</a></td><td>${u.region}</td><td class="muted">${u.created_at}</td></tr>`,
  );
  return {
    page: page(
      'Your customers',
      html`<form method="post" action="/users" id="new-user">
<label>Your reference for the customer <input type="text" name="external_id" value="${suggestion}" required></label>
<label>Home region <select name="region">${REGIONS.map((r) => html`<option>${r}</option>`)}</select></label>
<button type="submit" id="create-user">Create user</button></form>
<h2>Users</h2>
${users.data.length ? html`<table><tr><th>Reference</th><th>Region</th><th>Created</th></tr>${rows}</table>` : html`<p class="muted">None yet.</p>`}`,
      { data: { page: 'home' } },
    ),
  };
}

export async function createUser(app: App, request: Request): Promise<Reply> {
  const form = await request.form();
  const region = REGIONS.find((r) => r === form.get('region')) ?? 'de';
  const user = await must(
    app.kontor.POST('/v1/users', { body: { external_id: form.get('external_id') ?? '', region } }),
  );
  return { redirect: `/users/${encodeURIComponent(user.id)}` };
}

export async function showUser(app: App, request: Request): Promise<Reply> {
  const id = request.params.id ?? '';
  const kontor = app.kontor;
  const [user, connections, accounts, payments] = await Promise.all([
    must(kontor.GET('/v1/users/{id}', { params: { path: { id } } })),
    must(kontor.GET('/v1/connections', { params: { query: { user_id: id } } })),
    must(kontor.GET('/v1/accounts', { params: { query: { user_id: id } } })),
    must(kontor.GET('/v1/payments', { params: { query: { user_id: id } } })),
  ]);
  const balances = await Promise.all(
    accounts.data.map((a) => must(kontor.GET('/v1/accounts/{id}/balances', { params: { path: { id: a.id } } }))),
  );
  const connectionRows = connections.data.map(
    (c) => html`<tr data-connection-id="${c.id}" data-status="${c.status}"><td>${c.bank_id ?? '(not chosen)'}</td><td>${c.status}${c.failure_reason ? ` (${c.failure_reason})` : ''}</td><td class="muted">${c.last_synced_at ?? 'not synced'}</td></tr>`,
  );
  const accountItems = accounts.data.map((a, i) => {
    const shown = balances[i]?.data.find((b) => b.type === 'closing_booked' || b.type === 'interim_available') ?? balances[i]?.data[0];
    return html`<li><a href="/accounts/${a.id}" id="account-${a.id}" class="account">${a.name ?? a.product ?? a.kind}</a>
<span class="muted">${a.iban ?? a.other_identification ?? ''}</span>${shown ? html` · <b>${shown.amount.value} ${shown.amount.currency}</b>` : ''}</li>`;
  });
  const paymentRows = payments.data.map(
    (p) => html`<tr><td><a href="/payments/${p.id}">${p.creditor_name}</a></td><td class="amount">${p.amount.value} ${p.amount.currency}</td><td>${p.status}</td></tr>`,
  );
  const events = app.inbox.about((e) => e.user_id === id).slice(0, 10);
  return {
    page: page(
      user.external_id,
      html`<p class="muted">User <code>${user.id}</code>, region ${user.region}.</p>
<form method="post" action="/users/${user.id}/connections" class="inline"><button type="submit" id="link-bank">Link a bank account</button></form>
<h2>Bank connections</h2>
${connections.data.length ? html`<table><tr><th>Bank</th><th>Status</th><th>Last sync</th></tr>${connectionRows}</table>` : html`<p class="muted">None yet.</p>`}
<h2>Accounts</h2>
${accounts.data.length ? html`<ul id="accounts">${accountItems}</ul>` : html`<p class="muted">None yet: link a bank account.</p>`}
<h2>Payments</h2>
${payments.data.length ? html`<table><tr><th>To</th><th>Amount</th><th>Status</th></tr>${paymentRows}</table>` : html`<p class="muted">None yet.</p>`}
<h2>Webhooks about this user</h2>
${eventList(events)}`,
      { data: { page: 'user', 'user-id': user.id, accounts: String(accounts.data.length) } },
    ),
  };
}

/** Starts linking: a connection at the hub, then the user goes to its connect page. */
export async function linkBank(app: App, request: Request): Promise<Reply> {
  const connection = await must(
    app.kontor.POST('/v1/connections', {
      body: { user_id: request.params.id ?? '', redirect_uri: `${app.publicUrl}/linked` },
    }),
  );
  if (!connection.connect_url) throw new Error(`connection ${connection.id} came without a connect_url`);
  return { redirect: connection.connect_url };
}

/** Where the hub sends the user back, with connection_id, status and (on failure) reason. */
export async function linked(app: App, request: Request): Promise<Reply> {
  const id = request.query.get('connection_id') ?? '';
  const connection = await must(app.kontor.GET('/v1/connections/{id}', { params: { path: { id } } }));
  const toUser = html`<p><a href="/users/${connection.user_id}" id="to-user">Back to the customer</a></p>`;
  if (connection.status !== 'active') {
    return {
      page: page(
        'Not linked',
        html`<p>The bank link ended as <b>${connection.status}</b> (${connection.failure_reason ?? request.query.get('reason') ?? 'no reason given'}).</p>${toUser}`,
        { data: { page: 'linked', status: connection.status } },
      ),
    };
  }
  if (!connection.last_synced_at) {
    // The hub syncs once on activation; `transactions.updated` (webhook) tells when it is done.
    return {
      page: page('Fetching your accounts…', html`<p>The first sync is running; this page reloads.</p>${toUser}`, {
        refreshSeconds: 1,
        data: { page: 'linked', status: 'syncing' },
      }),
    };
  }
  return { redirect: `/users/${encodeURIComponent(connection.user_id)}` };
}

export function eventList(events: App['inbox']['received']): Html {
  if (events.length === 0) return html`<p class="muted">None received yet.</p>`;
  return html`<table class="webhooks"><tr><th>Event</th><th>Data</th><th>Sent</th></tr>${events.map(
    (r) => html`<tr data-event-type="${r.event.type}" data-event-id="${r.event.id}"${statusAttribute(r.event)}><td>${r.event.type}</td><td><code>${JSON.stringify(r.event.data)}</code></td><td class="muted">${new Date(r.sentAt * 1000).toISOString()}</td></tr>`,
  )}</table>`;
}

function statusAttribute(event: App['inbox']['received'][number]['event']): Html | '' {
  const status = (event.data as Record<string, unknown>).status;
  return typeof status === 'string' ? html` data-status="${status}"` : '';
}
