// Drives Alipay's official Node SDK (alipay-sdk, pinned in package-lock.json) on behalf of the Rust
// interop tests in crates/alipay-sandbox/tests/node_sdk.rs.
//
// Reads one JSON command on stdin, prints one JSON answer on stdout:
//   {"op":"page_url",  "sdk":{...}, "method":"alipay.trade.page.pay", "params":{...}}   -> {"url"}
//   {"op":"page_form", "sdk":{...}, "method":..., "params":{...}}                      -> {"html"}
//   {"op":"sdk_execute","sdk":{...}, "method":..., "params":{...}}                     -> {"query"}
//   {"op":"exec",      "sdk":{...}, "method":..., "params":{...}, "options"?:{...}}   -> {"ok","result"|"error"}
//   {"op":"curl",      "sdk":{...}, "method":"POST", "path":"/v3/...", "options":{body,needEncrypt...}}
//                                                         -> {"ok","status","data"|"error","code"}
//   {"op":"cert_sns",  "sdk":{...}}        -> {"appCertSn","alipayCertSn","alipayRootCertSn"} (certificate mode)
//   {"op":"check_notify", "sdk":{...}, "bodies":["raw form body", ...]}                -> {"results":[bool]}
//   {"op":"check_response","sdk":{...}, "cases":[{"raw","response_key"}]}              -> {"results":[{"ok","error"}]}
// "sdk" is the AlipaySdk configuration (appId, privateKey, alipayPublicKey, gateway, keyType...).
import { AlipaySdk } from 'alipay-sdk';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function sdkFrom(config) {
  // Answers are compared byte for byte on the Rust side: keep Alipay's snake_case keys.
  return new AlipaySdk({ camelcase: false, timeout: 10000, ...config });
}

// What a web framework hands a merchant for an x-www-form-urlencoded body or a query string:
// every value decoded exactly once.
function formToObject(raw) {
  const out = {};
  for (const [k, v] of new URLSearchParams(raw)) out[k] = v;
  return out;
}

async function run(cmd) {
  const sdk = sdkFrom(cmd.sdk);
  switch (cmd.op) {
    case 'page_url':
      return { url: sdk.pageExecute(cmd.method, 'GET', cmd.params) };
    case 'page_form':
      return { html: sdk.pageExecute(cmd.method, 'POST', cmd.params) };
    case 'sdk_execute':
      return { query: sdk.sdkExecute(cmd.method, cmd.params, { bizContentAutoSnakeCase: false }) };
    case 'exec':
      try {
        const result = await sdk.exec(cmd.method, cmd.params, cmd.options ?? { validateSign: true });
        return { ok: true, result };
      } catch (err) {
        return { ok: false, error: String(err && err.message ? err.message : err) };
      }
    case 'curl':
      try {
        const r = await sdk.curl(cmd.method, cmd.path, cmd.options ?? {});
        return { ok: true, status: r.responseHttpStatus, data: r.data };
      } catch (err) {
        return {
          ok: false,
          status: err.responseHttpStatus ?? null,
          code: err.code ?? null,
          error: String(err && err.message ? err.message : err),
        };
      }
    case 'cert_sns':
      return {
        appCertSn: sdk.config.appCertSn,
        alipayCertSn: sdk.config.alipayCertSn,
        alipayRootCertSn: sdk.config.alipayRootCertSn,
      };
    case 'check_notify':
      return { results: cmd.bodies.map((raw) => sdk.checkNotifySignV2(formToObject(raw))) };
    case 'check_response':
      return {
        results: cmd.cases.map(({ raw, response_key }) => {
          try {
            const sign = JSON.parse(raw).sign;
            sdk.checkResponseSign(raw, response_key, sign, 'interop');
            return { ok: true };
          } catch (err) {
            return { ok: false, error: String(err && err.message ? err.message : err) };
          }
        }),
      };
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const answer = await run(JSON.parse(await readStdin()));
process.stdout.write(JSON.stringify(answer));
