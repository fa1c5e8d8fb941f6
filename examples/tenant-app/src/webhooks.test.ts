// The verifier against the Standard Webhooks specification's example (the one the hub's own
// signer is tested with) and against what it must refuse. Run: npm test (after npm run build).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { secretKey, sign, verify } from './webhooks.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const AT = 1_614_265_330;
const BODY = Buffer.from('{"test": 2432232314}');
const SIGNATURE = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

const headers = (signature: string, at = AT, id = ID) => ({
  'webhook-id': id,
  'webhook-timestamp': String(at),
  'webhook-signature': signature,
});

test('signs as the specification example does', () => {
  assert.equal(sign(secretKey(SECRET), ID, AT, BODY), SIGNATURE);
});

test('accepts the example, also beside another signature, within the tolerance', () => {
  const key = secretKey(SECRET);
  assert.deepEqual(verify([key], headers(SIGNATURE), BODY, AT), { ok: true, id: ID, timestamp: AT });
  assert.equal(verify([key], headers(`v1,bm9wZQ== ${SIGNATURE}`), BODY, AT + 299).ok, true);
  // During a rotation the receiver may hold the old and the new secret.
  const other = secretKey(`whsec_${Buffer.alloc(32, 7).toString('base64')}`);
  assert.equal(verify([other, key], headers(SIGNATURE), BODY, AT).ok, true);
});

test('refuses a changed body, id or timestamp, another secret, and stale or future deliveries', () => {
  const key = secretKey(SECRET);
  const refused = (h: Record<string, string>, body = BODY, now = AT) => {
    const verdict = verify([key], h, body, now);
    return verdict.ok ? 'accepted' : verdict.reason;
  };
  assert.equal(refused(headers(SIGNATURE), Buffer.from('{"test": 2432232315}')), 'no_matching_signature');
  assert.equal(refused(headers(SIGNATURE, AT, 'msg_other')), 'no_matching_signature');
  assert.equal(refused(headers(SIGNATURE, AT + 1), BODY, AT + 1), 'no_matching_signature');
  assert.equal(refused(headers(SIGNATURE), BODY, AT + 301), 'timestamp_out_of_tolerance');
  assert.equal(refused(headers(SIGNATURE), BODY, AT - 301), 'timestamp_out_of_tolerance');
  assert.equal(refused(headers('v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=')), 'no_matching_signature');
  assert.equal(refused(headers('v1,g0hM9SsE')), 'no_matching_signature');
  assert.equal(refused({ ...headers(SIGNATURE), 'webhook-timestamp': '1614265330.5' }), 'bad_timestamp');
  assert.equal(refused({ 'webhook-id': ID, 'webhook-timestamp': String(AT) }), 'missing_headers');
  const other = secretKey(`whsec_${Buffer.alloc(32, 7).toString('base64')}`);
  assert.equal(verify([other], headers(SIGNATURE), BODY, AT).ok, false);
});

test('takes only whsec_ secrets of 24 to 64 bytes', () => {
  for (const bad of ['', 'whsec_', 'whsec_!!', 'sk_AAAA', 'whsec_AAAA', `whsec_${Buffer.alloc(65).toString('base64')}`]) {
    assert.throws(() => secretKey(bad), /whsec_/, bad);
  }
});
