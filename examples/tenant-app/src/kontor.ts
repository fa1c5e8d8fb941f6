// The Kontor API client: openapi-fetch over the types generated from the hub's /openapi.json
// (src/generated/kontor.ts, `npm run generate`), with the OAuth2 client-credentials token taken
// and renewed here, and the hub's error envelope turned into a KontorError.

import createClient, { type Middleware } from 'openapi-fetch';

import type { components, paths } from './generated/kontor.js';

export type Schemas = components['schemas'];
export type Kontor = ReturnType<typeof createClient<paths>>;

/** An answer of the hub that was not a success, with its stable code and request id. */
export class KontorError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | undefined,
  ) {
    super(message);
    this.name = 'KontorError';
  }
}

export interface Credentials {
  baseUrl: string;
  clientId: string;
  clientSecret: string;
}

/** Renew this long before the token expires, so that no request carries an expired one. */
const TOKEN_MARGIN_MS = 60_000;

export function kontorClient(credentials: Credentials): Kontor {
  const client = createClient<paths>({ baseUrl: credentials.baseUrl.replace(/\/+$/, '') });
  let token: { value: string; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;

  async function fetchToken(): Promise<string> {
    const basic = Buffer.from(`${credentials.clientId}:${credentials.clientSecret}`).toString('base64');
    const answer = await must(
      client.POST('/v1/oauth/token', {
        body: { grant_type: 'client_credentials' },
        bodySerializer: (body) => new URLSearchParams(body as Record<string, string>).toString(),
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${basic}`,
        },
      }),
    );
    token = { value: answer.access_token, renewAt: Date.now() + answer.expires_in * 1000 - TOKEN_MARGIN_MS };
    return answer.access_token;
  }

  async function bearer(): Promise<string> {
    if (token && Date.now() < token.renewAt) return token.value;
    // One token request at a time, whatever the number of requests waiting for it.
    pending ??= fetchToken().finally(() => {
      pending = undefined;
    });
    return pending;
  }

  const auth: Middleware = {
    async onRequest({ request, schemaPath }) {
      if (schemaPath === '/v1/oauth/token') return undefined;
      request.headers.set('authorization', `Bearer ${await bearer()}`);
      return request;
    },
    onResponse({ response }) {
      // A client revoked or a signing key retired: the next request asks for a new token.
      if (response.status === 401) token = undefined;
      return undefined;
    },
  };
  client.use(auth);
  return client;
}

/** The success body of a call, or a KontorError with the hub's code and message. */
export async function must<R extends { data?: unknown; error?: unknown; response: Response }>(
  call: Promise<R>,
): Promise<NonNullable<R['data']>> {
  const { data, error, response } = await call;
  if (response.ok && data !== undefined && data !== null) return data as NonNullable<R['data']>;
  const envelope = (error ?? {}) as Partial<Schemas['ErrorEnvelope']>;
  throw new KontorError(
    response.status,
    envelope.error?.code ?? 'unexpected_answer',
    envelope.error?.message ?? `${response.status} ${response.statusText}`,
    envelope.error?.request_id ?? response.headers.get('x-request-id') ?? undefined,
  );
}
