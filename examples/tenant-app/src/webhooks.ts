// Verifying Kontor's webhook deliveries, exactly as the hub signs them (Standard Webhooks,
// crates/kontor-crypto/src/webhook.rs and the README's "Receive webhooks"):
//
//   webhook-id         the event id, the same on every retry (drop repeats)
//   webhook-timestamp  when this attempt was sent, Unix seconds
//   webhook-signature  space-separated `v1,<base64 HMAC-SHA256>`; two during a secret rotation
//
// The key is the base64 after `whsec_`; the MAC is over `{webhook-id}.{webhook-timestamp}.{raw body}`.
// A delivery is accepted when one `v1` signature matches, compared in constant time, and its
// timestamp is within the tolerance of now (either way): an old delivery replayed is refused.

import { createHmac, timingSafeEqual } from 'node:crypto';

/** Five minutes, as the Standard Webhooks libraries use. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export type Verdict =
  | { ok: true; id: string; timestamp: number }
  | { ok: false; reason: 'missing_headers' | 'bad_timestamp' | 'timestamp_out_of_tolerance' | 'no_matching_signature' };

export type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(' ') : value;
}

/** The HMAC key of a `whsec_…` secret; throws on anything else, so a misconfiguration shows at start. */
export function secretKey(secret: string): Buffer {
  const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret);
  const key = match ? Buffer.from(match[1] ?? '', 'base64') : Buffer.alloc(0);
  if (key.length < 24 || key.length > 64) {
    throw new Error('a webhook signing secret is whsec_ followed by base64 of 24 to 64 bytes');
  }
  return key;
}

/** `v1,<base64 HMAC-SHA256>` of one delivery, as the hub computes it. */
export function sign(key: Buffer, id: string, timestamp: number, body: Buffer): string {
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
  return `v1,${mac.toString('base64')}`;
}

/**
 * Checks one delivery: `keys` are the secrets in use (one, or two while switching secrets),
 * `body` the raw bytes as received (never re-serialised JSON), `now` in Unix seconds.
 */
export function verify(
  keys: readonly Buffer[],
  headers: Headers,
  body: Buffer,
  now: number,
  toleranceSeconds = DEFAULT_TOLERANCE_SECONDS,
): Verdict {
  const id = header(headers, 'webhook-id');
  const stamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !stamp || !signatures) return { ok: false, reason: 'missing_headers' };
  if (!/^[0-9]{1,12}$/.test(stamp)) return { ok: false, reason: 'bad_timestamp' };
  const timestamp = Number(stamp);
  if (Math.abs(now - timestamp) > toleranceSeconds) {
    return { ok: false, reason: 'timestamp_out_of_tolerance' };
  }
  const offered = signatures
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'base64'));
  for (const key of keys) {
    const expected = createHmac('sha256', key).update(`${id}.${stamp}.`).update(body).digest();
    // timingSafeEqual needs equal lengths; a length says nothing about the secret.
    if (offered.some((mac) => mac.length === expected.length && timingSafeEqual(mac, expected))) {
      return { ok: true, id, timestamp };
    }
  }
  return { ok: false, reason: 'no_matching_signature' };
}
