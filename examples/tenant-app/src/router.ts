// A few lines of routing over node:http: a route is a method, a path pattern with `:name`
// segments, and a handler that answers a page or a redirect.

import type { IncomingMessage, ServerResponse } from 'node:http';

import { KontorError } from './kontor.js';
import { html, page } from './html.js';

export type Reply =
  | { page: string; status?: number }
  | { redirect: string }
  | { done: true };

export interface Request {
  raw: IncomingMessage;
  response: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The url-encoded form of a POST. */
  form(): Promise<URLSearchParams>;
}

type Handler = (request: Request) => Promise<Reply>;

interface Route {
  method: string;
  pattern: RegExp;
  names: string[];
  handler: Handler;
}

const MAX_FORM_BYTES = 64 * 1024;

export class Router {
  private readonly routes: Route[] = [];

  on(method: string, path: string, handler: Handler): this {
    const names: string[] = [];
    const pattern = new RegExp(
      `^${path.replace(/:([a-z]+)/g, (_, name: string) => {
        names.push(name);
        return '([^/]+)';
      })}$`,
    );
    this.routes.push({ method, pattern, names, handler });
    return this;
  }

  async serve(raw: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(raw.url ?? '/', 'http://app.invalid');
    const route = this.routes.find((r) => r.method === raw.method && r.pattern.test(url.pathname));
    let reply: Reply;
    try {
      if (!route) {
        reply = { status: 404, page: page('Not found', html`<p>Nothing here. <a href="/">Home</a></p>`) };
      } else {
        const match = route.pattern.exec(url.pathname) ?? [];
        const params = Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(match[i + 1] ?? '')]));
        reply = await route.handler({ raw, response, params, query: url.searchParams, form: () => readForm(raw) });
      }
    } catch (err) {
      reply = failure(err);
    }
    if ('done' in reply) return;
    if ('redirect' in reply) {
      response.writeHead(303, { location: reply.redirect }).end();
      return;
    }
    response
      .writeHead(reply.status ?? 200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      })
      .end(reply.page);
  }
}

/** The hub's error, as a page: its code, message and request id (what support would ask for). */
export function failure(err: unknown): Reply {
  if (err instanceof KontorError) {
    return {
      status: err.status >= 500 ? 502 : err.status,
      page: page(
        'Kontor said no',
        html`<p class="error" id="error" data-code="${err.code}"><b>${err.code}</b>: ${err.message}</p>
<p class="muted">HTTP ${err.status}, request ${err.requestId ?? '(none)'}. <a href="/">Home</a></p>`,
      ),
    };
  }
  console.error(err);
  return { status: 500, page: page('Something went wrong', html`<p class="error">${String(err)}</p>`) };
}

async function readForm(request: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) throw new Error('the form is too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
