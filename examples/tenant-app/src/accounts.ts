// An account: its balances and transactions (paged with the hub's cursor), and the form that
// pays from it.

import { randomUUID } from 'node:crypto';

import type { App } from './app.js';
import { html, page, type Html } from './html.js';
import { KontorError, must, type Schemas } from './kontor.js';
import type { Reply, Request } from './router.js';

type Account = Schemas['AccountResponse'];

export async function showAccount(app: App, request: Request, problem?: { error: KontorError; form: URLSearchParams }): Promise<Reply> {
  const id = request.params.id ?? '';
  const cursor = request.query.get('cursor') ?? undefined;
  const kontor = app.kontor;
  const [account, balances, transactions] = await Promise.all([
    must(kontor.GET('/v1/accounts/{id}', { params: { path: { id } } })),
    must(kontor.GET('/v1/accounts/{id}/balances', { params: { path: { id } } })),
    must(kontor.GET('/v1/accounts/{id}/transactions', { params: { path: { id }, query: { limit: 25, cursor } } })),
  ]);
  const rows = transactions.data.map(
    (t) => html`<tr data-transaction-id="${t.id}" data-status="${t.status}"><td>${t.transaction_date}</td><td>${t.counterparty.name ?? t.remittance ?? ''}${t.status === 'pending' ? html` <span class="muted">(pending)</span>` : ''}</td><td class="amount">${t.amount.value} ${t.amount.currency}</td></tr>`,
  );
  const more = transactions.next_cursor
    ? html`<p><a href="/accounts/${account.id}?cursor=${encodeURIComponent(transactions.next_cursor)}" id="older">Older transactions</a></p>`
    : '';
  return {
    status: problem ? 422 : 200,
    page: page(
      account.name ?? account.product ?? 'Account',
      html`<p class="muted">${account.iban ?? account.other_identification ?? ''} · ${account.currency} · <a href="/users/${account.user_id}">the customer</a></p>
<p>${balances.data.map((b) => html`${b.type.replace(/_/g, ' ')}: <b>${b.amount.value} ${b.amount.currency}</b><br>`)}</p>
<h2>Pay from this account</h2>
${payForm(account, problem)}
<h2>Transactions</h2>
${transactions.data.length ? html`<table id="transactions"><tr><th>Date</th><th>What</th><th>Amount</th></tr>${rows}</table>` : html`<p class="muted">None.</p>`}
${more}`,
      { data: { page: 'account', 'account-id': account.id, transactions: String(transactions.data.length) } },
    ),
  };
}

/**
 * The payment form. Its Idempotency-Key is made when the form is shown and sent with it: a
 * double click, a reload of the POST or a retry after a timeout is the same payment at the hub.
 */
function payForm(account: Account, problem?: { error: KontorError; form: URLSearchParams }): Html {
  const old = problem?.form;
  const value = (name: string, fallback = '') => old?.get(name) ?? fallback;
  const uk = account.currency === 'GBP';
  return html`${problem ? html`<p class="error" id="error" data-code="${problem.error.code}"><b>${problem.error.code}</b>: ${problem.error.message}</p>` : ''}
<form method="post" action="/accounts/${account.id}/payments" id="pay-form">
<input type="hidden" name="idempotency_key" value="${value('idempotency_key', randomUUID())}">
<label>To (name) <input type="text" name="creditor_name" value="${value('creditor_name')}" required></label>
${uk
  ? html`<label>Sort code <input type="text" name="creditor_sort_code" value="${value('creditor_sort_code')}"></label>
<label>Account number <input type="text" name="creditor_account_number" value="${value('creditor_account_number')}"></label>`
  : html`<label>IBAN <input type="text" name="creditor_iban" value="${value('creditor_iban')}"></label>`}
<label>Amount (${account.currency}) <input type="text" name="amount" inputmode="decimal" value="${value('amount')}" required></label>
<label>Reference <input type="text" name="remittance" value="${value('remittance')}"></label>
${uk ? '' : html`<label><input type="checkbox" name="instant" value="yes"${old?.get('instant') ? ' checked' : ''}> Instant (SEPA Instant, where the bank offers it)</label>`}
<button type="submit" id="submit-payment">Pay</button></form>`;
}

/** Initiates the payment at the hub and sends the user to authorise it at their bank. */
export async function pay(app: App, request: Request): Promise<Reply> {
  const form = await request.form();
  const id = request.params.id ?? '';
  const account = await must(app.kontor.GET('/v1/accounts/{id}', { params: { path: { id } } }));
  const connection = await must(
    app.kontor.GET('/v1/connections/{id}', { params: { path: { id: account.connection_id } } }),
  );
  if (!connection.bank_id) throw new Error(`connection ${connection.id} has no bank`);
  const text = (name: string) => form.get(name)?.trim() || null;
  const body: Schemas['CreatePaymentRequest'] = {
    user_id: account.user_id,
    bank_id: connection.bank_id,
    // Berlin Group banks need the account to pay from; a UK bank lets the user pick it.
    debtor_account: account.iban ? { iban: account.iban } : null,
    creditor: {
      name: form.get('creditor_name')?.trim() ?? '',
      iban: text('creditor_iban')?.replace(/\s+/g, '') ?? null,
      sort_code: text('creditor_sort_code'),
      account_number: text('creditor_account_number'),
    },
    amount: { value: form.get('amount')?.trim() ?? '', currency: account.currency },
    remittance: text('remittance'),
    instant: form.get('instant') === 'yes' ? true : null,
    redirect_uri: `${app.publicUrl}/paid`,
  };
  try {
    const payment = await must(
      app.kontor.POST('/v1/payments', {
        params: { header: { 'Idempotency-Key': form.get('idempotency_key') ?? randomUUID() } },
        body,
      }),
    );
    if (!payment.authorize_url) return { redirect: `/payments/${encodeURIComponent(payment.id)}` };
    return { redirect: payment.authorize_url };
  } catch (err) {
    // A refused payment (a bad IBAN, an amount the hub does not take): the form again, with the
    // hub's code and message, under the same key.
    if (err instanceof KontorError && err.status >= 400 && err.status < 500) {
      return showAccount(app, request, { error: err, form });
    }
    throw err;
  }
}
