// Sends one event of each type through Segment's Node SDK (@segment/analytics-node) to a Hearth server.
// Run by TestSegmentNodeSDK: HOST is the server's base URL, WRITE_KEY a source's write key.
//
// Prints the delivered events on stdout as JSON ([{"type": …, "messageId": …}, …]), so that the test can
// match them to what was stored. Exits non-zero if the SDK reports any error or any event goes undelivered.
import { Analytics } from '@segment/analytics-node';

const host = process.env.HOST;
const writeKey = process.env.WRITE_KEY;
if (!host || !writeKey) {
  console.error('send.mjs: HOST and WRITE_KEY must be set');
  process.exit(2);
}

const analytics = new Analytics({
  writeKey,
  host,
  path: '/v1/batch',
  flushAt: 3, // six events: two batches
  flushInterval: 200,
  httpRequestTimeout: 10_000,
  // A failure should fail the test within seconds, not after the SDK's default of hours of backoff.
  maxRetries: 2,
  maxTotalBackoffDuration: 10,
  maxRateLimitDuration: 10,
});

const errors = [];
analytics.on('error', (err) => errors.push(`${err.code}: ${err.reason?.message ?? err.reason}`));
// The SDK counts any status below 400 as delivered; the server answers 200.
analytics.on('http_response', (res) => {
  if (res.status !== 200) errors.push(`status ${res.status} ${res.statusText} from ${res.url}`);
});

const sent = [];
const delivered = [];
const done = (err, ctx) => {
  if (!err && ctx) delivered.push({ type: ctx.event.type, messageId: ctx.event.messageId });
};
const call = (method, params) => {
  sent.push(method);
  analytics[method](params, done);
};

call('identify', { userId: 'u-1', traits: { name: '李娜', email: 'li.na@example.com', plan: 'pro' } });
call('track', {
  userId: 'u-1',
  event: 'Order Completed',
  properties: { orderId: 'o-42', revenue: 199.5, currency: 'CNY', products: [{ sku: 'tea-1', quantity: 2 }] },
  timestamp: new Date('2026-06-01T08:00:00.000Z'),
});
call('page', { anonymousId: 'anon-1', category: 'Docs', name: 'Pricing', properties: { url: 'https://shop.example/pricing' } });
call('screen', { userId: 'u-1', name: 'Cart', properties: { items: 2 } });
call('group', { userId: 'u-1', groupId: 'acme', traits: { name: 'Acme', employees: 50 } });
call('alias', { previousId: 'anon-1', userId: 'u-1' });

await analytics.closeAndFlush({ timeout: 30_000 });

if (delivered.length !== sent.length) {
  errors.push(`${delivered.length} of ${sent.length} events delivered`);
}
if (errors.length > 0) {
  for (const e of errors) console.error('send.mjs:', e);
  process.exit(1);
}
console.log(JSON.stringify(delivered));
