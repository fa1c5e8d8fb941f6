// The account-linking flow in headless Chromium, like a person on a phone would do it.
//
// Run by crates/kontor/tests/browser.rs against `kontor demo --json`; by hand:
//
//   (cd tests/browser && npm ci)
//   cargo run -p kontor -- demo --listen 127.0.0.1:0 --data-dir "$(mktemp -d)" --json > demo.json &
//   KONTOR_DEMO_JSON="$(head -n 1 demo.json)" node tests/browser/link.mjs   # once demo.json has a line
//
// Input (environment):
//   KONTOR_DEMO_JSON          the demo's first stdout line: one JSON object with api_base_url,
//                             client_id and client_secret (required; the other fields are unused).
//                             The object may instead be given as the first argument.
//   KONTOR_BROWSER_ARTIFACTS  folder for the screenshots (created if missing; default: a new
//                             temporary folder). Their paths are printed.
//   KONTOR_CHROMIUM           the browser [default: /usr/bin/chromium, Debian's `chromium`].
//
// What it does, each in a fresh browser context with a phone viewport (390x844, touch):
//   1. link alice at sonnenbank (Berlin Group) and bob at thames-bank (UK Open Banking): a new
//      user and connection over the tenant API, the connect page (found by search / country),
//      the bank's login, code and account pages, back at the redirect URI with status=active;
//      then over the API: first sync done, accounts as ticked, transactions on the first one;
//      and the demo's redirect page showing the data;
//   2. the connect page in German (lang=de), also after a search;
//   3. cancel at the bank (sonnenbank on its login page, thames-bank on its code page): back at
//      the redirect URI with status=failed, and the connection failed over the API;
//   4. the demo's landing page (`/`): its users and links; bob's link from it opens on his UK
//      bank, and after linking the result page names him and his bank and shows accounts,
//      balances and transactions in words (no raw keys such as `closing_booked`);
//   5. carol's link: the connect page in French, on her French bank.
// Pages must fit the phone's width (no sideways scrolling) and show no console errors or HTTP
// errors. Exit code 0 when everything held; 1 with a message naming the scenario and what
// failed otherwise; 2 on the global timeout. The browser is launched by playwright-core with a
// fresh profile folder (`--user-data-dir` of a new temporary folder, which Playwright creates and
// removes itself; it refuses a `--user-data-dir` among the args of a plain launch).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Failure, check, launch, watch } from './chromium.mjs';

const GLOBAL_TIMEOUT_MS = 150_000;
const STEP_TIMEOUT_MS = 15_000;
const SYNC_TIMEOUT_MS = 30_000;
const PHONE = { width: 390, height: 844 };
const PASSWORD = 'sandbox';
const CODE = '123456';

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (message) => console.log(`[${elapsed()}] ${message}`);

let browser;
const watchdog = setTimeout(() => {
  console.error(`FAILED: global timeout of ${GLOBAL_TIMEOUT_MS / 1000}s reached; giving up`);
  // Playwright kills the browser it launched when this process exits.
  process.exit(2);
}, GLOBAL_TIMEOUT_MS);

// ---------------------------------------------------------------------------------------------
// Input

function readDemo() {
  const raw = process.env.KONTOR_DEMO_JSON ?? process.argv[2];
  check(raw, 'no demo JSON: set KONTOR_DEMO_JSON (or pass it as the first argument)');
  let demo;
  try {
    demo = JSON.parse(raw);
  } catch (err) {
    throw new Failure(`the demo JSON does not parse (${err.message}): ${raw.slice(0, 200)}`);
  }
  for (const key of ['api_base_url', 'client_id', 'client_secret']) {
    check(typeof demo[key] === 'string' && demo[key], `the demo JSON has no ${key}`);
  }
  return { ...demo, api_base_url: demo.api_base_url.replace(/\/+$/, '') };
}

function artifactsDir() {
  const dir =
    process.env.KONTOR_BROWSER_ARTIFACTS ||
    fs.mkdtempSync(path.join(os.tmpdir(), 'kontor-browser-'));
  fs.mkdirSync(dir, { recursive: true });
  return path.resolve(dir);
}

// ---------------------------------------------------------------------------------------------
// The tenant API

class Api {
  constructor(demo) {
    this.base = demo.api_base_url;
    this.clientId = demo.client_id;
    this.clientSecret = demo.client_secret;
    this.token = null;
  }

  async call(method, url, { body, form, auth } = {}) {
    const headers = { accept: 'application/json' };
    let payload;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      payload = new URLSearchParams(form).toString();
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    headers.authorization = auth ?? `Bearer ${this.token}`;
    let response;
    try {
      response = await fetch(`${this.base}${url}`, {
        method,
        headers,
        body: payload,
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new Failure(`${method} ${url}: ${err.message}`);
    }
    const text = await response.text();
    let json;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    check(response.ok, `${method} ${url} answered ${response.status}: ${text.slice(0, 500)}`);
    check(json !== null, `${method} ${url} answered ${response.status} without JSON: ${text.slice(0, 200)}`);
    return json;
  }

  async login() {
    const basic = Buffer.from(`${this.clientId}:${this.clientSecret}`).toString('base64');
    const answer = await this.call('POST', '/v1/oauth/token', {
      form: { grant_type: 'client_credentials' },
      auth: `Basic ${basic}`,
    });
    check(typeof answer.access_token === 'string', `no access_token in ${JSON.stringify(answer)}`);
    this.token = answer.access_token;
  }

  async newConnection(region, label) {
    const user = await this.call('POST', '/v1/users', {
      body: { external_id: `browser-${label}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`, region },
    });
    check(typeof user.id === 'string', `no user id in ${JSON.stringify(user)}`);
    const connection = await this.call('POST', '/v1/connections', {
      body: { user_id: user.id, redirect_uri: `${this.base}/demo/done` },
    });
    check(typeof connection.id === 'string', `no connection id in ${JSON.stringify(connection)}`);
    check(
      typeof connection.connect_url === 'string' && connection.connect_url.startsWith('http'),
      `no usable connect_url in ${JSON.stringify(connection)}`,
    );
    check(connection.status === 'pending', `a new connection is ${connection.status}, not pending`);
    return { userId: user.id, connectionId: connection.id, connectUrl: connection.connect_url };
  }

  connection(id) {
    return this.call('GET', `/v1/connections/${encodeURIComponent(id)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The browser

async function phone(lang = 'en-GB') {
  const context = await browser.newContext({
    viewport: PHONE,
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: lang,
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  const problems = [];
  watch(page, problems);
  return { context, page, problems };
}

// Types like a person: focus by clicking, then key by key.
async function type(page, selector, text) {
  const field = page.locator(selector);
  await field.click();
  await field.pressSequentially(text, { delay: 15 });
}

async function step(page, name, bankId) {
  const selector = `body[data-step="${name}"]${bankId ? `[data-bank="${bankId}"]` : ''}`;
  try {
    await page.waitForSelector(selector, { timeout: STEP_TIMEOUT_MS });
  } catch {
    const shown = await page.locator('body').getAttribute('data-step').catch(() => null);
    const text = (await page.locator('body').innerText().catch(() => '')).slice(0, 400);
    throw new Failure(
      `expected the bank's ${name} page${bankId ? ` at ${bankId}` : ''}, ` +
        `got ${page.url()} (data-step=${shown}): ${text}`,
    );
  }
}

// On a phone nothing may need sideways scrolling.
async function fitsThePhone(page, where) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  check(scrollWidth <= innerWidth, `${where} is ${scrollWidth}px wide on a ${innerWidth}px phone screen`);
}

async function screenshot(page, dir, name, shots) {
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  shots.push(file);
}

// Waits to land on the tenant's redirect URI and returns its query.
async function backAtTenant(page, api, connectionId, expected) {
  const done = `${api.base}/demo/done`;
  try {
    await page.waitForURL((url) => url.href.startsWith(done), { timeout: STEP_TIMEOUT_MS });
  } catch {
    const text = (await page.locator('body').innerText().catch(() => '')).slice(0, 400);
    throw new Failure(`did not come back to ${done}; stuck at ${page.url()}: ${text}`);
  }
  const url = new URL(page.url());
  const params = url.searchParams;
  check(
    params.get('connection_id') === connectionId,
    `the redirect names connection ${params.get('connection_id')}, expected ${connectionId}: ${url}`,
  );
  check(params.get('status') === expected, `the redirect says status=${params.get('status')}, expected ${expected}: ${url}`);
  return params;
}

// ---------------------------------------------------------------------------------------------
// The scenarios

const BANKS = {
  sonnenbank: { user: 'alice', region: 'de', country: 'DE', standard: 'Berlin Group', find: 'search' },
  'thames-bank': { user: 'bob', region: 'uk', country: 'GB', standard: 'UK Open Banking', find: 'country' },
};

// On the connect page: narrows the list the way a person would, then picks the bank.
async function pickBank(page, bankId) {
  const bank = BANKS[bankId];
  const others = Object.keys(BANKS).filter((id) => id !== bankId);
  if (bank.find === 'search') {
    await type(page, '#bank-search', bankId.slice(0, 6));
    await page.locator('#bank-search').press('Enter');
  } else {
    await page.locator('#country').selectOption(bank.country);
    await page.locator('form:has(#bank-search) button[type="submit"]').click();
  }
  await page.waitForURL((url) => url.searchParams.has('q'), { timeout: STEP_TIMEOUT_MS });
  check(await page.locator(`#bank-${bankId}`).isVisible(), `#bank-${bankId} is not shown after narrowing the list by ${bank.find}`);
  for (const other of others) {
    check(
      (await page.locator(`#bank-${other}`).count()) === 0,
      `#bank-${other} is still listed after narrowing the list to ${bankId} by ${bank.find}`,
    );
  }
  await page.locator(`#bank-${bankId}`).click();
}

async function login(page, bankId, user) {
  await type(page, '#username', user);
  await type(page, '#password', PASSWORD);
  await page.locator('#submit').click();
}

async function link(api, bankId, dir, shots) {
  const bank = BANKS[bankId];
  log(`link ${bank.user} at ${bankId} (${bank.standard})`);
  const { userId, connectionId, connectUrl } = await api.newConnection(bank.region, bankId);
  const { context, page, problems } = await phone();
  try {
    await page.goto(connectUrl);
    check((await page.locator('html').getAttribute('lang')) === 'en', 'the connect page is not in English by default');
    check(
      (await page.locator('h1').first().innerText()).includes('Connect your bank'),
      `the connect page's heading is "${await page.locator('h1').first().innerText()}"`,
    );
    // The list opens on the user's own country: their region's banks, not the others.
    for (const [id, other] of Object.entries(BANKS)) {
      const shown = await page.locator(`#bank-${id}`).count();
      if (other.region === bank.region) {
        check(shown === 1, `the connect page does not list #bank-${id} for a ${bank.region} user`);
      } else {
        check(shown === 0, `the connect page lists #bank-${id} for a ${bank.region} user before any search`);
      }
    }
    check(
      (await page.locator('#country').inputValue()) === bank.country,
      `the country list does not start on ${bank.country}`,
    );
    check(await page.locator('#cancel').isVisible(), 'the connect page has no #cancel');
    await fitsThePhone(page, 'the connect page');
    await screenshot(page, dir, `connect-page-en-${bankId}`, shots);

    await pickBank(page, bankId);
    await step(page, 'login', bankId);
    await fitsThePhone(page, `${bankId}'s login page`);
    await screenshot(page, dir, `bank-login-${bankId}`, shots);
    await login(page, bankId, bank.user);

    await step(page, 'otp', bankId);
    await type(page, '#otp', CODE);
    await page.locator('#submit').click();

    await step(page, 'accounts', bankId);
    const boxes = page.locator('form#accounts-form input[name="account"]');
    const count = await boxes.count();
    check(count > 0, `${bankId} offers no account to choose for ${bank.user}`);
    for (let i = 0; i < count; i += 1) {
      const box = boxes.nth(i);
      if (!(await box.isChecked())) await box.click();
      check(await box.isChecked(), `account checkbox ${i + 1} at ${bankId} did not get ticked`);
    }
    await page.locator('#submit').click();

    await backAtTenant(page, api, connectionId, 'active');
    log(`  back at the redirect URI with status=active after ${count} account(s) ticked`);

    // Over the API: the first sync, the accounts, their transactions.
    const deadline = Date.now() + SYNC_TIMEOUT_MS;
    let connection = await api.connection(connectionId);
    while (!connection.last_synced_at && Date.now() < deadline) {
      check(connection.status === 'active', `connection ${connectionId} is ${connection.status} while syncing`);
      await new Promise((resolve) => setTimeout(resolve, 250));
      connection = await api.connection(connectionId);
    }
    check(connection.status === 'active', `connection ${connectionId} is ${connection.status}, not active`);
    check(
      connection.last_synced_at,
      `connection ${connectionId} has no last_synced_at ${SYNC_TIMEOUT_MS / 1000}s after linking: ${JSON.stringify(connection)}`,
    );
    const accounts = await api.call('GET', `/v1/accounts?user_id=${encodeURIComponent(userId)}`);
    check(Array.isArray(accounts.data) && accounts.data.length > 0, `no accounts for ${userId}: ${JSON.stringify(accounts)}`);
    check(
      accounts.data.length === count,
      `${count} account(s) ticked at the bank, ${accounts.data.length} listed over the API`,
    );
    if (Array.isArray(connection.account_ids)) {
      const listed = new Set(accounts.data.map((a) => a.id));
      check(
        connection.account_ids.length === count && connection.account_ids.every((id) => listed.has(id)),
        `the connection's account_ids ${JSON.stringify(connection.account_ids)} differ from the accounts listed`,
      );
    }
    const first = accounts.data[0];
    const transactions = await api.call('GET', `/v1/accounts/${encodeURIComponent(first.id)}/transactions`);
    check(
      Array.isArray(transactions.data) && transactions.data.length > 0,
      `no transactions on account ${first.id} (${first.iban ?? 'no IBAN'}) after the first sync`,
    );
    log(
      `  synced at ${connection.last_synced_at}: ${accounts.data.length} account(s), ` +
        `${transactions.data.length} transaction(s) on the first page of ${first.iban ?? first.id}`,
    );

    // The demo's redirect page refreshes itself until the sync is done, then lists the data.
    try {
      await page.waitForFunction(() => document.querySelector('h1')?.textContent === 'Linked', null, {
        timeout: STEP_TIMEOUT_MS,
      });
    } catch {
      const text = (await page.locator('body').innerText().catch(() => '')).slice(0, 400);
      throw new Failure(`the demo's redirect page never showed the linked data: ${text}`);
    }
    await tidyResult(page, `the result page after linking at ${bankId}`);
    await screenshot(page, dir, `linked-${bankId}`, shots);
    check(problems.length === 0, `problems seen in the browser:\n  ${problems.join('\n  ')}`);
  } finally {
    await context.close();
  }
}

// The demo's result page: the data in words, no API keys (`closing_booked`), nothing sideways.
async function tidyResult(page, where) {
  // Ids and API paths are shown as code, on purpose; the rest must read as words.
  const text = await page.evaluate(() => {
    const main = document.querySelector('main').cloneNode(true);
    for (const code of main.querySelectorAll('code')) code.remove();
    return main.innerText;
  });
  const raw = text.match(/\b[a-z]+_[a-z_]+\b/g);
  check(!raw, `${where} shows raw keys: ${raw?.join(', ')}`);
  check((await page.locator('section.account').count()) > 0, `${where} shows no account`);
  check((await page.locator('table.transactions tbody tr').count()) > 0, `${where} shows no transaction`);
  check((await page.locator('dl.balances dt').count()) > 0, `${where} shows no balance`);
  await fitsThePhone(page, where);
}

// `/`: what the demo is, its users, the links; then bob's link from there, through his UK bank,
// to the result page that shows his connection.
async function landing(api, dir, shots) {
  log('the landing page, and bob linking from it');
  const { context, page, problems } = await phone();
  try {
    await page.goto(`${api.base}/`);
    const shown = await page.locator('body').getAttribute('data-page');
    check(shown === 'demo-home', `/ is not the demo's landing page (data-page=${shown})`);
    const body = await page.locator('body').innerText();
    for (const words of ['open banking hub', 'sandbox', 'alice', 'bob', 'carol', 'Thames Bank', 'Banque Lumière']) {
      check(body.includes(words), `the landing page does not mention "${words}"`);
    }
    for (const id of ['connect-alice', 'connect-bob', 'connect-carol', 'docs', 'readme']) {
      check(await page.locator(`#${id}`).isVisible(), `the landing page has no #${id}`);
    }
    await fitsThePhone(page, 'the landing page');
    await screenshot(page, dir, 'landing', shots);

    // The README link serves the README.
    const readme = await page.request.get(`${api.base}/demo/readme`);
    check(readme.ok() && (await readme.text()).startsWith('# Kontor'), `/demo/readme does not serve the README`);

    // bob's link opens on his own (UK) banks: nothing to change in the country list.
    await page.locator('#connect-bob').click();
    await page.waitForURL((url) => url.pathname.startsWith('/connect/'), { timeout: STEP_TIMEOUT_MS });
    check((await page.locator('#country').inputValue()) === 'GB', 'bob\'s connect page does not open on GB');
    check(await page.locator('#bank-thames-bank').isVisible(), 'bob\'s connect page does not list Thames Bank');
    check((await page.locator('#bank-sonnenbank').count()) === 0, 'bob\'s connect page lists Sonnenbank');
    await page.locator('#bank-thames-bank').click();
    await step(page, 'login', 'thames-bank');
    await login(page, 'thames-bank', 'bob');
    await step(page, 'otp', 'thames-bank');
    await type(page, '#otp', CODE);
    await page.locator('#submit').click();
    await step(page, 'accounts', 'thames-bank');
    await page.locator('#submit').click();
    try {
      await page.waitForFunction(() => document.querySelector('h1')?.textContent === 'Linked', null, {
        timeout: SYNC_TIMEOUT_MS,
      });
    } catch {
      const text = (await page.locator('body').innerText().catch(() => '')).slice(0, 400);
      throw new Failure(`bob's result page never showed the linked data: ${text}`);
    }
    const lead = await page.locator('p.lead').first().innerText();
    check(lead.includes('bob') && lead.includes('Thames Bank'), `the result page does not say bob linked Thames Bank: "${lead}"`);
    await tidyResult(page, 'bob\'s result page');
    await screenshot(page, dir, 'result-bob', shots);
    check(problems.length === 0, `problems seen in the browser:\n  ${problems.join('\n  ')}`);
  } finally {
    await context.close();
  }
}

// carol's link: in French, opening on her French bank.
async function french(api, dir, shots) {
  log('carol\'s connect page in French');
  const { context, page, problems } = await phone('en-GB');
  try {
    await page.goto(`${api.base}/demo/connect/carol`);
    check((await page.locator('html').getAttribute('lang')) === 'fr', 'carol\'s connect page is not in French');
    const heading = await page.locator('h1').first().innerText();
    check(heading.includes('Connecter votre banque'), `carol's connect page's heading is "${heading}"`);
    const body = await page.locator('body').innerText();
    for (const words of ['Ce qui sera partagé', 'Choisissez votre banque']) {
      check(body.includes(words), `carol's connect page does not say "${words}"`);
    }
    check(!body.includes('Connect your bank'), 'English text on the French page');
    const button = await page.locator('#bank-banque-lumiere').innerText();
    check(button.includes('Continuer vers Banque Lumière'), `the bank button says "${button}"`);
    check((await page.locator('#cancel').innerText()).trim() === 'Annuler', 'the cancel button is not French');
    await fitsThePhone(page, 'the French connect page');
    await screenshot(page, dir, 'connect-page-fr', shots);
    check(problems.length === 0, `problems seen in the browser:\n  ${problems.join('\n  ')}`);
  } finally {
    await context.close();
  }
}

async function german(api, dir, shots) {
  log('connect page in German (lang=de)');
  const { connectionId, connectUrl } = await api.newConnection('de', 'german');
  const { context, page, problems } = await phone('en-GB');
  try {
    const url = new URL(connectUrl);
    url.searchParams.set('lang', 'de');
    await page.goto(url.href);
    const expectGerman = async (where) => {
      check((await page.locator('html').getAttribute('lang')) === 'de', `${where}: <html lang> is not de`);
      const heading = await page.locator('h1').first().innerText();
      check(heading.includes('Bank verbinden'), `${where}: the heading is "${heading}", not German`);
      const body = await page.locator('body').innerText();
      for (const words of ['Was geteilt wird', 'Wählen Sie Ihre Bank']) {
        check(body.includes(words), `${where}: "${words}" is not shown`);
      }
      const button = await page.locator('#bank-sonnenbank').innerText();
      check(button.includes('Weiter zu Sonnenbank'), `${where}: the bank button says "${button}"`);
      const cancel = await page.locator('#cancel').innerText();
      check(cancel.trim() === 'Abbrechen', `${where}: the cancel button says "${cancel}"`);
      check(!body.includes('Connect your bank'), `${where}: English text on the German page`);
    };
    await expectGerman('the German connect page');
    await fitsThePhone(page, 'the German connect page');
    await screenshot(page, dir, 'connect-page-de', shots);
    // The language survives a search.
    await type(page, '#bank-search', 'sonnen');
    await page.locator('#bank-search').press('Enter');
    await page.waitForURL((u) => u.searchParams.has('q'), { timeout: STEP_TIMEOUT_MS });
    await expectGerman('the German connect page after a search');
    const connection = await api.connection(connectionId);
    check(connection.status === 'pending', `viewing the page changed the connection to ${connection.status}`);
    check(problems.length === 0, `problems seen in the browser:\n  ${problems.join('\n  ')}`);
  } finally {
    await context.close();
  }
}

async function cancelAtBank(api, bankId, where, dir, shots) {
  const bank = BANKS[bankId];
  log(`cancel at ${bankId} on its ${where} page`);
  const { connectionId, connectUrl } = await api.newConnection(bank.region, `cancel-${bankId}`);
  const { context, page, problems } = await phone();
  try {
    await page.goto(connectUrl);
    await page.locator(`#bank-${bankId}`).click();
    await step(page, 'login', bankId);
    if (where === 'otp') {
      await login(page, bankId, bank.user);
      await step(page, 'otp', bankId);
    }
    await page.locator('#cancel').click();
    const params = await backAtTenant(page, api, connectionId, 'failed');
    const connection = await api.connection(connectionId);
    check(connection.status === 'failed', `after a cancel at ${bankId} the connection is ${connection.status}`);
    log(`  back at the redirect URI with status=failed, reason=${params.get('reason') ?? '(none)'}`);
    check(
      (await page.locator('h1').first().innerText()) === 'Not linked',
      `the demo's redirect page does not say "Not linked" after a cancel`,
    );
    await screenshot(page, dir, `cancelled-${bankId}`, shots);
    check(problems.length === 0, `problems seen in the browser:\n  ${problems.join('\n  ')}`);
  } finally {
    await context.close();
  }
}

// ---------------------------------------------------------------------------------------------

// Names the scenario in whatever goes wrong inside it.
async function scenario(name, run) {
  try {
    await run();
  } catch (err) {
    if (err instanceof Failure) throw new Failure(`${name}: ${err.message}`);
    throw new Failure(`${name}: ${err?.stack ?? err}`);
  }
}

async function main() {
  const demo = readDemo();
  const dir = artifactsDir();
  const shots = [];
  log(`hub at ${demo.api_base_url}; screenshots go to ${dir}`);

  browser = await launch();
  log(`browser: Chromium ${browser.version()}`);
  const api = new Api(demo);
  await api.login();

  await scenario('link at sonnenbank', () => link(api, 'sonnenbank', dir, shots));
  await scenario('link at thames-bank', () => link(api, 'thames-bank', dir, shots));
  await scenario('German connect page', () => german(api, dir, shots));
  await scenario('cancel at sonnenbank', () => cancelAtBank(api, 'sonnenbank', 'login', dir, shots));
  await scenario('cancel at thames-bank', () => cancelAtBank(api, 'thames-bank', 'otp', dir, shots));
  await scenario('landing page', () => landing(api, dir, shots));
  await scenario('French connect page', () => french(api, dir, shots));

  console.log('screenshots:');
  for (const file of shots) console.log(`  ${file}`);
  log('browser test passed: 2 links, 1 German page, 2 cancels, the landing page with a link from it, 1 French page');
}

let code = 0;
try {
  await main();
} catch (err) {
  code = 1;
  if (err instanceof Failure) {
    console.error(`FAILED: ${err.message}`);
  } else {
    console.error(`FAILED: ${err?.stack ?? err}`);
  }
} finally {
  if (browser) await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
process.exit(code);
