// The same three operations as crates/alipay/benches/signing.rs, done by Alipay's official Node SDK,
// with the same keys and messages (crates/alipay/tests/data). Prints one JSON object of µs per operation.
// Run through scripts/bench-signing, which pins it to one core beside criterion and openssl.
//
//   node tests/node/bench.mjs [seconds-per-operation]
import { readFileSync } from 'node:fs';
import { AlipaySdk } from 'alipay-sdk';

const dir = new URL('../../crates/alipay/tests/data/', import.meta.url);
const read = (f) => readFileSync(new URL(f, dir), 'utf8');
const vectors = JSON.parse(read('vectors.json')).vectors;
const vector = (name) => vectors.find((v) => v.name === name);
const seconds = Number(process.argv[2] ?? 3);

function measure(fn) {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const start = process.hrtime.bigint();
  const until = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < until) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / 1e3 / n;
}

// 1. A page-pay request: canonicalise, sign with the app key, render the GET URL (pageExecute).
const merchant = new AlipaySdk({
  appId: '2021000000000000',
  privateKey: read('app-private-key.pem'),
  alipayPublicKey: read('app-public-key.pem'),
  camelcase: false,
});
const pagePay = {
  bizContent: {
    out_trade_no: 'HT202611270000001',
    product_code: 'FAST_INSTANT_TRADE_PAY',
    total_amount: '220.77',
    subject: '绮拉 经典保湿面霜 50ml 等 1 件',
    timeout_express: '30m',
    enable_pay_channels: 'balance,moneyFund',
  },
  notify_url: 'https://shop.example.com/api/v1/alipay/notify',
  return_url: 'http://127.0.0.1:43125/return/7f3a',
};
const signUs = measure(() => merchant.pageExecute('alipay.trade.page.pay', 'GET', pagePay));

// 2. A trade.query response: parse, cut the signed node text, verify (what exec does with validateSign).
const q = vector('response_trade_query');
const body = `{"alipay_trade_query_response":${q.signed_text},"sign":"${q.sign}"}`;
const responseUs = measure(() => {
  const sign = JSON.parse(body).sign;
  merchant.checkResponseSign(body, 'alipay_trade_query_response', sign, 'bench');
});

// 3. An Alipay notification: decode the form body, canonicalise, verify (checkNotifySignV2).
const n = vector('notify_trade');
const form = new URLSearchParams({ ...n.params, sign: n.sign }).toString();
const receiver = new AlipaySdk({
  appId: '2019073166072302',
  privateKey: read('app-private-key.pem'),
  alipayPublicKey: read('alipay-public-key-notify.pem'),
});
const notifyUs = measure(() => {
  const postData = Object.fromEntries(new URLSearchParams(form));
  if (!receiver.checkNotifySignV2(postData)) throw new Error('notify did not verify');
});

process.stdout.write(
  JSON.stringify({ node: process.version, sign_request_us: signUs, verify_response_us: responseUs, verify_notify_us: notifyUs }) + '\n',
);
