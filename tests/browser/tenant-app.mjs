// The sample tenant app (examples/tenant-app) end to end in headless Chromium, against
// `kontor demo`: the app is started on its built client, and a person uses it.
//
// Run by crates/kontor/tests/browser.rs after it generated the app's client from the demo's
// live /openapi.json, type-checked and built it; by hand (with a demo running, see link.mjs):
//
//   (cd examples/tenant-app && npm ci && npm run generate -- "$API" && npm run build)
//   KONTOR_DEMO_JSON="$(head -n 1 demo.json)" node tests/browser/tenant-app.mjs
//
// Input (environment):
//   KONTOR_DEMO_JSON          the demo's first stdout line (api_base_url, client_id, client_secret)
//   KONTOR_TENANT_APP         the app's folder [../../examples/tenant-app from here]; it runs
//                             dist/server.js from there on a free port
//   KONTOR_BROWSER_ARTIFACTS  folder for the screenshots (default: a new temporary folder)
//   KONTOR_CHROMIUM           the browser [default: /usr/bin/chromium]
//
// What a person does, and what must hold:
//   1. creates a user (region de) on the app's home page;
//   2. links a bank account: the app sends them to the hub's connect page; they pick Sonnenbank,
//      sign in as alice at the sandbox bank (password, code, accounts) and come back to the app,
//      which waits for the first sync and then lists the accounts and the verified webhooks
//      `connection.active` and `transactions.updated`;
//   3. opens the current account: its transactions are listed;
//   4. pays 12.34 EUR (SEPA Instant) from it: the app initiates the payment with an
//      Idempotency-Key and sends them to the hub's payment page, they confirm and authorise at
//      the bank, come back, and the app follows the payment to `completed`, showing the verified
//      `payment.status_changed` webhook that says so;
//   5. the payment form sent again as it was (a double click, a retry): the hub answers the
//      same payment for the same Idempotency-Key, and the app leads to it;
//   6. the app refused no webhook delivery (every signature verified), and shows exactly one
//      payment for the user.
// No page may show a console error or an HTTP error. Exit code 0 when everything held, 1 with a
// message naming the step otherwise, 2 on the global timeout.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import { Failure, check, launch, watch } from './chromium.mjs';

const GLOBAL_TIMEOUT_MS = 150_000;
const STEP_TIMEOUT_MS = 15_000;
/** The first sync, and a payment from authorisation to `completed` with its webhook. */
const WAIT_TIMEOUT_MS = 60_000;

const here = path.dirname(fileURLToPath(import.meta.url));
const started = Date.now();
const log = (message) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);

let browser;
let app;
const appOutput = [];
const watchdog = setTimeout(() => {
  console.error(`FAILED: global timeout of ${GLOBAL_TIMEOUT_MS / 1000}s reached; giving up`);
  app?.kill();
  process.exit(2);
}, GLOBAL_TIMEOUT_MS);

function readDemo() {
  const raw = process.env.KONTOR_DEMO_JSON;
  check(raw, 'no demo JSON: set KONTOR_DEMO_JSON');
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new Failure(`the demo JSON does not parse (${err.message})`);
  }
}

// Starts the app on a free port; resolves with the JSON line it prints once it is ready.
function startApp(demoJson) {
  const dir = path.resolve(process.env.KONTOR_TENANT_APP || path.join(here, '../../examples/tenant-app'));
  const server = path.join(dir, 'dist/server.js');
  check(fs.existsSync(server), `no ${server}: generate the client and build the app first (npm run build)`);
  app = spawn(process.execPath, [server], {
    cwd: dir,
    env: { ...process.env, KONTOR_DEMO_JSON: demoJson, APP_LISTEN: '127.0.0.1:0', APP_PUBLIC_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  readline.createInterface({ input: app.stderr }).on('line', (line) => appOutput.push(`[app stderr] ${line}`));
  const lines = readline.createInterface({ input: app.stdout });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Failure('the app printed nothing within 20 s')), 20_000);
    app.once('exit', (code) => reject(new Failure(`the app exited (${code}) before it was ready`)));
    lines.on('line', (line) => {
      appOutput.push(`[app] ${line}`);
      if (line.startsWith('{')) {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      }
    });
  });
}

async function type(page, selector, text) {
  const field = page.locator(selector);
  await field.click();
  await field.fill('');
  await field.pressSequentially(text, { delay: 10 });
}

// Waits for a page of the app (its <body data-page>), or a bank step, naming what showed instead.
async function landOn(page, selector, what, timeout = STEP_TIMEOUT_MS) {
  try {
    await page.waitForSelector(selector, { timeout });
  } catch {
    const text = (await page.locator('body').innerText().catch(() => '')).slice(0, 500);
    throw new Failure(`expected ${what}, got ${page.url()}: ${text}`);
  }
}

// The sandbox bank's SCA: alice's password, then the code.
async function signInAtSonnenbank(page, why) {
  await landOn(page, 'body[data-step="login"][data-bank="sonnenbank"]', `Sonnenbank's login page ${why}`);
  await type(page, '#username', 'alice');
  await type(page, '#password', 'sandbox');
  await page.locator('#submit').click();
  await landOn(page, 'body[data-step="otp"]', `the bank's code page ${why}`);
  await type(page, '#otp', '123456');
  await page.locator('#submit').click();
}

async function shoot(page, dir, name, shots) {
  const file = path.join(dir, `tenant-app-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  shots.push(file);
}

async function main() {
  const demoJson = process.env.KONTOR_DEMO_JSON ?? '';
  const demo = readDemo();
  const dir = process.env.KONTOR_BROWSER_ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), 'kontor-browser-'));
  fs.mkdirSync(dir, { recursive: true });
  const shots = [];

  const ready = await startApp(demoJson);
  const base = ready.app_url;
  log(`app at ${base} (webhook endpoint ${ready.webhook_endpoint}); hub at ${demo.api_base_url}`);

  browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1024, height: 800 }, locale: 'en-GB' });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  const problems = [];
  watch(page, problems);

  log('1. create a user');
  await page.goto(base);
  await landOn(page, 'body[data-page="home"]', "the app's home page");
  const reference = `e2e-${Date.now()}`;
  await type(page, 'input[name="external_id"]', reference);
  await page.locator('select[name="region"]').selectOption('de');
  await page.locator('#create-user').click();
  await landOn(page, 'body[data-page="user"]', "the new user's page");
  const userId = await page.locator('body').getAttribute('data-user-id');
  check(userId?.startsWith('usr_de_'), `the user page names user ${userId}`);
  log(`   ${userId}`);

  log('2. link a bank account through the hub and the sandbox bank');
  await page.locator('#link-bank').click();
  await page.waitForURL((url) => url.href.startsWith(demo.api_base_url), { timeout: STEP_TIMEOUT_MS });
  await page.locator('#bank-sonnenbank').click();
  await signInAtSonnenbank(page, 'to link');
  await landOn(page, 'body[data-step="accounts"]', "the bank's account choice");
  const boxes = page.locator('form#accounts-form input[name="account"]');
  for (let i = 0; i < (await boxes.count()); i += 1) {
    if (!(await boxes.nth(i).isChecked())) await boxes.nth(i).click();
  }
  await page.locator('#submit').click();
  // Back at the app's /linked, which reloads until the first sync is done, then shows the user.
  await landOn(page, `body[data-page="user"][data-user-id="${userId}"]:not([data-accounts="0"])`, 'the user page with accounts', WAIT_TIMEOUT_MS);
  check(
    (await page.locator('tr[data-connection-id][data-status="active"]').count()) === 1,
    'the user page does not show one active connection',
  );
  // The webhooks of the link, verified by the app.
  for (const type of ['connection.active', 'transactions.updated']) {
    await reloadUntil(page, `tr[data-event-type="${type}"]`, `the webhook ${type} on the user page`);
  }
  await shoot(page, dir, 'user-linked', shots);
  log(`   ${await page.locator('a.account').count()} account(s); connection.active and transactions.updated received`);

  log('3. the current account and its transactions');
  const current = page.locator('a.account', { hasText: /Girokonto|current/i }).first();
  await ((await current.count()) ? current : page.locator('a.account').first()).click();
  await landOn(page, 'body[data-page="account"]', 'the account page');
  const rows = await page.locator('#transactions tr[data-transaction-id]').count();
  check(rows > 0, 'the account page lists no transactions');
  await shoot(page, dir, 'account', shots);
  log(`   ${rows} transaction(s) on the first page`);

  log('4. pay 12.34 EUR, instantly, and follow it');
  await type(page, 'input[name="creditor_name"]', 'Hausverwaltung Müller');
  await type(page, 'input[name="creditor_iban"]', 'DE89 3704 0044 0532 0130 00');
  await type(page, 'input[name="amount"]', '12.34');
  await type(page, 'input[name="remittance"]', 'Rent December');
  await page.locator('input[name="instant"]').check();
  const key = await page.locator('input[name="idempotency_key"]').inputValue();
  check(/^[\x21-\x7e]{1,255}$/.test(key), `the form's Idempotency-Key is ${JSON.stringify(key)}`);
  const accountId = await page.locator('body').getAttribute('data-account-id');
  const payForm = Object.fromEntries(
    await page.locator('#pay-form input[name]').evaluateAll((inputs) =>
      inputs.filter((i) => i.type !== 'checkbox' || i.checked).map((i) => [i.name, i.value]),
    ),
  );
  await page.locator('#submit-payment').click();
  await page.waitForURL((url) => url.href.startsWith(demo.api_base_url), { timeout: STEP_TIMEOUT_MS });
  check((await page.locator('#amount').innerText()).includes('12.34'), "the hub's payment page shows another amount");
  await page.locator('#pay').click();
  await signInAtSonnenbank(page, 'to pay');
  await landOn(page, 'body[data-page="payment"]', "the app's payment page");
  const paymentId = await page.locator('body').getAttribute('data-payment-id');
  log(`   ${paymentId} back at the app: ${await page.locator('body').getAttribute('data-status')}`);
  await landOn(page, 'body[data-page="payment"][data-final="true"][data-webhook-status]:not([data-webhook-status=""])', 'the payment final, with its webhook', WAIT_TIMEOUT_MS);
  const status = await page.locator('body').getAttribute('data-status');
  check(status === 'completed', `the payment ended ${status}`);
  // Webhooks arrive after the change they tell of: the page may be final before the last one.
  if ((await page.locator('body').getAttribute('data-webhook-status')) !== status) {
    await reloadUntil(page, `body[data-page="payment"][data-webhook-status="${status}"]`, `the payment.status_changed webhook saying ${status}`);
  }
  const told = await page.locator('body').getAttribute('data-webhook-status');
  check(told === 'completed', `the last payment.status_changed webhook says ${told}, the payment is ${status}`);
  await shoot(page, dir, 'payment-completed', shots);
  log(`   completed; the webhook payment.status_changed said so`);

  log('5. the form sent again (a double click, a retry): the same payment, not a second one');
  const again = await page.request.post(`${base}/accounts/${accountId}/payments`, { form: payForm, maxRedirects: 0 });
  check(again.status() === 303, `sending the payment form again answered ${again.status()}: ${(await again.text()).slice(0, 300)}`);
  check(
    again.headers().location === `/payments/${paymentId}`,
    `sending the payment form again led to ${again.headers().location}, not to /payments/${paymentId}`,
  );

  log('6. every webhook verified; one payment');
  await page.goto(`${base}/webhooks`);
  await landOn(page, 'body[data-page="webhooks"]', "the app's webhook page");
  const refused = await page.locator('body').getAttribute('data-refused');
  check(refused === '0', `the app refused ${refused} webhook deliveries (a signature did not verify?)`);
  const received = await page.locator('body').getAttribute('data-received');
  await page.goto(`${base}/users/${userId}`);
  await landOn(page, 'body[data-page="user"]', 'the user page');
  const payments = await page.locator('a[href^="/payments/"]').count();
  check(payments === 1, `the user page lists ${payments} payments, not 1`);
  check(problems.length === 0, `problems seen in the browser:\n  ${problems.join('\n  ')}`);
  await context.close();

  console.log('screenshots:');
  for (const file of shots) console.log(`  ${file}`);
  log(`tenant app test passed: user, link, ${rows} transactions, payment completed, ${received} webhooks verified`);
}

// Reloads until something matches (the app shows webhooks as they arrive).
async function reloadUntil(page, selector, what) {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while ((await page.locator(selector).count()) === 0) {
    check(Date.now() < deadline, `never saw ${what} (${selector})`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await page.reload();
  }
}

let code = 0;
try {
  await main();
} catch (err) {
  code = 1;
  console.error(`FAILED: ${err instanceof Failure ? err.message : err?.stack ?? err}`);
  console.error(appOutput.slice(-30).join('\n'));
} finally {
  if (browser) await browser.close().catch(() => {});
  app?.kill();
  clearTimeout(watchdog);
}
process.exit(code);
