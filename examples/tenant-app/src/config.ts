// The app's settings, from the environment:
//
//   KONTOR_API_URL, KONTOR_CLIENT_ID, KONTOR_CLIENT_SECRET   the hub and the tenant's API client
//   KONTOR_DEMO_JSON        instead of those three: the first line `kontor demo --json` prints
//   KONTOR_WEBHOOK_SECRET   the signing secret (whsec_…) of a webhook endpoint registered for
//                           APP_PUBLIC_URL/webhooks/kontor; when absent the app registers one at
//                           start (or rotates the secret of the one it registered before)
//   APP_LISTEN              host:port to listen on [127.0.0.1:3000]; port 0 picks a free one
//   APP_PUBLIC_URL          where browsers and the hub reach the app [http://APP_LISTEN]

import type { Credentials } from './kontor.js';

export interface Config {
  kontor: Credentials;
  webhookSecret: string | undefined;
  host: string;
  port: number;
  publicUrl: string | undefined;
}

export class ConfigError extends Error {}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`${name} is not set (or set KONTOR_DEMO_JSON)`);
  return value;
}

function credentials(env: NodeJS.ProcessEnv): Credentials {
  const demo = env.KONTOR_DEMO_JSON?.trim();
  if (!demo) {
    return {
      baseUrl: required(env, 'KONTOR_API_URL'),
      clientId: required(env, 'KONTOR_CLIENT_ID'),
      clientSecret: required(env, 'KONTOR_CLIENT_SECRET'),
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(demo);
  } catch (err) {
    throw new ConfigError(`KONTOR_DEMO_JSON is not JSON: ${(err as Error).message}`);
  }
  const field = (name: string): string => {
    const value = (parsed as Record<string, unknown> | null)?.[name];
    if (typeof value !== 'string' || !value) throw new ConfigError(`KONTOR_DEMO_JSON has no ${name}`);
    return value;
  };
  return { baseUrl: field('api_base_url'), clientId: field('client_id'), clientSecret: field('client_secret') };
}

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const listen = env.APP_LISTEN?.trim() || '127.0.0.1:3000';
  const match = /^(.+):([0-9]{1,5})$/.exec(listen);
  const port = Number(match?.[2]);
  if (!match || port > 65_535) throw new ConfigError(`APP_LISTEN must be host:port, not ${listen}`);
  return {
    kontor: credentials(env),
    webhookSecret: env.KONTOR_WEBHOOK_SECRET?.trim() || undefined,
    host: (match[1] ?? '').replace(/^\[(.*)\]$/, '$1'),
    port,
    publicUrl: env.APP_PUBLIC_URL?.trim().replace(/\/+$/, '') || undefined,
  };
}
