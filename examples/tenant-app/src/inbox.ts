// The webhook receiver: verifies each delivery, drops repeats by webhook-id, and keeps the events
// (in memory: a real app would store them and do its work after answering).

import type { IncomingMessage, ServerResponse } from 'node:http';

import type { Schemas } from './kontor.js';
import { type Verdict, verify } from './webhooks.js';

export type Event = Schemas['EventResponse'];

export interface Received {
  event: Event;
  /** The delivery's webhook-timestamp: when the hub sent it. */
  sentAt: number;
  receivedAt: Date;
}

export interface Refused {
  reason: Exclude<Verdict, { ok: true }>['reason'] | 'body_too_large' | 'not_an_event';
  at: Date;
}

/** Kontor's events carry ids and counts only; a delivery is far below this. */
const MAX_BODY_BYTES = 256 * 1024;

export class Inbox {
  readonly received: Received[] = [];
  readonly refused: Refused[] = [];
  private readonly seen = new Set<string>();
  private keys: Buffer[] = [];

  /** The secrets to verify with: one, or the new and the old while switching. */
  useKeys(keys: Buffer[]): void {
    this.keys = keys;
  }

  about(predicate: (event: Event) => boolean): Received[] {
    return this.received.filter((r) => predicate(r.event));
  }

  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBody(request);
    if (body === undefined) return this.refuse(response, 413, 'body_too_large');
    const verdict = verify(this.keys, request.headers, body, Math.floor(Date.now() / 1000));
    if (!verdict.ok) return this.refuse(response, 401, verdict.reason);
    if (!this.seen.has(verdict.id)) {
      let event: Event;
      try {
        event = JSON.parse(body.toString('utf8')) as Event;
      } catch {
        return this.refuse(response, 400, 'not_an_event');
      }
      if (event.id !== verdict.id || typeof event.type !== 'string') {
        return this.refuse(response, 400, 'not_an_event');
      }
      this.seen.add(verdict.id);
      this.received.unshift({ event, sentAt: verdict.timestamp, receivedAt: new Date() });
      console.log(`webhook ${event.type} ${event.id} verified`);
    }
    // Any 2xx within 10 s; the work happens afterwards (here: nothing more to do).
    response.writeHead(204).end();
  }

  private refuse(response: ServerResponse, status: number, reason: Refused['reason']): void {
    this.refused.unshift({ reason, at: new Date() });
    console.warn(`webhook refused: ${reason}`);
    response.writeHead(status, { 'content-type': 'text/plain' }).end(`${reason}\n`);
  }
}

async function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
