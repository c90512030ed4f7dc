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

// 4. The same trade.query through each way an app is configured (crates/alipay/benches/signing.rs
// `modes`): sign the request (sdkExecute signs and renders it), verify the answer. The SDK signs
// v3 requests only inside curl (with the network), so v3 is measured on the answer only.
const { createSign, createPublicKey } = await import('node:crypto');
const alipayKey = read('bench/alipay-private-key.pem');
const signWith = (text) => createSign('RSA-SHA256').update(text, 'utf8').sign(alipayKey, 'base64');
const aesKey = 'AAECAwQFBgcICQoLDA0ODw==';
const keyMode = new AlipaySdk({
  appId: '2021000000000000',
  privateKey: read('app-private-key.pem'),
  alipayPublicKey: createPublicKey(alipayKey).export({ type: 'spki', format: 'pem' }),
  camelcase: false,
});
const certMode = new AlipaySdk({
  appId: '2021000000000000',
  privateKey: read('app-private-key.pem'),
  appCertContent: read('bench/app.crt'),
  alipayPublicCertContent: read('bench/alipay.crt'),
  alipayRootCertContent: read('bench/root.crt'),
  encryptKey: aesKey,
  camelcase: false,
});
const query = { bizContent: { out_trade_no: 'HT202611270000001' } };
const signKeyUs = measure(() => keyMode.sdkExecute('alipay.trade.query', query));
const signCertUs = measure(() => certMode.sdkExecute('alipay.trade.query', query));
const signCertAesUs = measure(() => certMode.sdkExecute('alipay.trade.query', { ...query, needEncrypt: true }));
const node = '{"code":"10000","msg":"Success","trade_no":"2026112722001400001","out_trade_no":"HT202611270000001","trade_status":"TRADE_SUCCESS","total_amount":"220.77","buyer_logon_id":"zha***@sandbox.haitao","send_pay_date":"2026-11-27 10:01:05"}';
const plainBody = `{"alipay_trade_query_response":${node},"sign":"${signWith(node)}"}`;
const verifyKeyUs = measure(() => keyMode.checkResponseSign(plainBody, 'alipay_trade_query_response', JSON.parse(plainBody).sign, 'bench'));
const certBody = `{"alipay_trade_query_response":${node},"alipay_cert_sn":"${certMode.config.alipayCertSn}","sign":"${signWith(node)}"}`;
const verifyCertUs = measure(() => certMode.checkResponseSign(certBody, 'alipay_trade_query_response', JSON.parse(certBody).sign, 'bench'));
// An encrypted node: the SDK's v2 response check cannot cut it (it looks for braces), so the check
// over the quoted ciphertext is rsaCheck, then aesDecrypt, as an integrator would call them.
const { createCipheriv } = await import('node:crypto');
const enc = createCipheriv('aes-128-cbc', Buffer.from(aesKey, 'base64'), Buffer.alloc(16));
const cipher = JSON.stringify(Buffer.concat([enc.update(node, 'utf8'), enc.final()]).toString('base64'));
const cipherSign = signWith(cipher);
const verifyCertAesUs = measure(() => {
  const body = `{"alipay_trade_query_response":${cipher},"alipay_cert_sn":"x","sign":"${cipherSign}"}`;
  const parsed = JSON.parse(body);
  if (!certMode.rsaCheck(cipher, parsed.sign)) throw new Error('encrypted answer did not verify');
  JSON.parse(certMode.aesDecrypt(parsed.alipay_trade_query_response));
});
const v3Body = '{"trade_no":"2026112722001400001","out_trade_no":"HT202611270000001","trade_status":"TRADE_SUCCESS","total_amount":"220.77"}';
const v3Content = `1764208800000\nn1\n${v3Body}\n`;
const v3Sign = signWith(v3Content);
const verifyV3Us = measure(() => {
  if (!keyMode.rsaCheck(`1764208800000\nn1\n${v3Body}\n`, v3Sign)) throw new Error('v3 answer did not verify');
});

process.stdout.write(
  JSON.stringify({
    node: process.version,
    sign_request_us: signUs,
    verify_response_us: responseUs,
    verify_notify_us: notifyUs,
    sign_query_key_us: signKeyUs,
    sign_query_cert_us: signCertUs,
    sign_query_cert_aes_us: signCertAesUs,
    verify_query_key_us: verifyKeyUs,
    verify_query_cert_us: verifyCertUs,
    verify_query_cert_aes_us: verifyCertAesUs,
    verify_v3_us: verifyV3Us,
  }) + '\n',
);
