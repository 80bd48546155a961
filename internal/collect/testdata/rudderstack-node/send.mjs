// Sends one event of each type through RudderStack's Node SDK (@rudderstack/rudder-sdk-node) to a Hearth
// server. Run by TestRudderStackNodeSDK: HOST is the server's base URL, WRITE_KEY a source's write key.
//
// Prints the delivered events on stdout as JSON ([{"type": …, "messageId": …}, …]), so that the test can
// match them to what was stored. Exits non-zero if the SDK reports any error or any event goes undelivered.
import Analytics from '@rudderstack/rudder-sdk-node';

const host = process.env.HOST;
const writeKey = process.env.WRITE_KEY;
if (!host || !writeKey) {
  console.error('send.mjs: HOST and WRITE_KEY must be set');
  process.exit(2);
}

const errors = [];
const client = new Analytics(writeKey, {
  dataPlaneUrl: host,
  flushAt: 3, // six events: two batches
  flushInterval: 200,
  timeout: 10_000,
  retryCount: 1, // a failure should fail the test within seconds
  logLevel: 'error',
  errorHandler: (err) => errors.push(String(err)),
});

const sent = [];
const delivered = [];
const call = (method, message) => {
  sent.push(method);
  const messageId = `rs-${method}-${Date.now()}`;
  client[method]({ ...message, messageId }, (err) => {
    if (err) errors.push(`${method}: ${err}`);
    else delivered.push({ type: method, messageId });
  });
};

call('identify', { userId: 'u-1', traits: { name: '李娜', email: 'li.na@example.com', plan: 'pro' } });
call('track', {
  userId: 'u-1',
  event: 'Order Completed',
  properties: { orderId: 'o-42', revenue: 199.5, currency: 'CNY', products: [{ sku: 'tea-1', quantity: 2 }] },
  originalTimestamp: new Date('2026-06-01T08:00:00.000Z'),
});
call('page', { anonymousId: 'anon-1', category: 'Docs', name: 'Pricing', properties: { url: 'https://shop.example/pricing' } });
call('screen', { userId: 'u-1', name: 'Cart', properties: { items: 2 } });
call('group', { userId: 'u-1', groupId: 'acme', traits: { name: 'Acme', employees: 50 } });
call('alias', { previousId: 'anon-1', userId: 'u-1' });

await client.flush();
await new Promise((done) => setTimeout(done, 500)); // the callbacks run after the flush settles

if (delivered.length !== sent.length) {
  errors.push(`${delivered.length} of ${sent.length} events delivered`);
}
if (errors.length > 0) {
  for (const e of errors) console.error('send.mjs:', e);
  process.exit(1);
}
console.log(JSON.stringify(delivered));
