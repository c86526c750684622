// Checks an MCP server with the official TypeScript SDK (@modelcontextprotocol/sdk) in its
// default mode.
//
//     node check.mjs --name NAME [--progress TOOL=TOTAL] [--arguments TOOL=JSON]... --url http://127.0.0.1:PORT/mcp
//     node check.mjs --name NAME [--progress TOOL=TOTAL] [--arguments TOOL=JSON]... --stdio -- COMMAND [ARG...]
//     node check.mjs --name NAME --cancel TOOL=TOTAL --hung-status FILE --unreachable-node NODE
//                    --answering-node NODE (--url URL | --stdio -- COMMAND [ARG...])
//
// Connects with `new Client(info)` and `StreamableHTTPClientTransport(url)` or
// `StdioClientTransport({ command, args })`, all with their defaults; lists the tools (every
// page), calls every tool with its default arguments (the SDK validates each `structuredContent`
// against the tool's `outputSchema` with Ajv inside `callTool`, and refuses a missing one), and
// lists prompts and resources only when the server advertises them, gets every prompt, and
// completes every prompt argument when the server advertises completions (a required argument
// takes the first completed value, and later arguments are completed in the context of the
// earlier ones). With resources it lists them and their templates, reads the first listed ones,
// completes every template variable (in the context of the earlier ones) and reads the filled
// template, and reads the `resource_link` blocks that tool answers carry.
// With `--progress TOOL=TOTAL` it also calls TOOL with its default arguments and an `onprogress`
// callback, and requires one progress report per step up to TOTAL (done / total with a message)
// before the result: a gateway fan-out over TOTAL nodes.
// With `--cancel TOOL=TOTAL` it runs the cancellation and logging checks instead of the others,
// against a gateway whose TOTAL nodes include one that never answers (the test bed's hung agent,
// whose connections FILE counts as JSON `{"accepted", "open"}`) and one that refuses connections
// (`--unreachable-node`): it sets a `notifications/message` handler and `setLoggingLevel('warning')`,
// calls TOOL with `onprogress` and an AbortController's `signal`, waits for the TOTAL - 1 progress
// reports of the other nodes and for the hung agent's open connection, aborts (the SDK then sends
// `notifications/cancelled`), and requires that the call rejects at once, that the hung agent's
// connection is closed by the gateway soon after (the outstanding node call was stopped), that
// TOOL on `--answering-node` succeeds next on the same session, and that a log message from the
// `fleet` logger named the unreachable node, with no token in any message (the bearer token and
// the newline-separated values of GPU_MCP_CHECK_SECRETS).
// With `--arguments TOOL=JSON` (repeatable) TOOL is called with that JSON object, required
// arguments it leaves out taking their defaults, and TOOL must be listed. With the environment
// variable GPU_MCP_CHECK_TOKEN set, every HTTP request carries `Authorization: Bearer <token>`
// (the transport's `requestInit.headers`, its only option set).
// Prints one JSON report on stdout; the server's logs go to stderr.
// Exits 0 when every check passed, 1 when one failed, 2 on bad usage.
//
// It runs from a copy beside the pinned `node_modules` (Node resolves packages from the
// importing file's directory), which the test bed installs with `npm ci`.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

// Hang guard of one request; no request here should take more than a few seconds.
const REQUEST_TIMEOUT_MS = 60_000;
// Most pages of one list walked before giving up (a cursor that never ends).
const MAX_PAGES = 100;
// Most listed resources read (a gateway lists every node's).
const MAX_READS = 5;
// How long the cancellation check waits for the fan-out to reach the hung node, for the call to
// end once aborted, and for the gateway to close its connection to the hung node.
const FAN_OUT_WAIT_MS = 30_000;
const CANCEL_WAIT_MS = 10_000;
const CLOSE_WAIT_MS = 10_000;
// The level the cancellation check asks log messages at, and the logger of the gateway's fleet.
const LOG_LEVEL = 'warning';
const FLEET_LOGGER = 'fleet';
// The abort reason, which the SDK puts in its `notifications/cancelled` and its rejection.
const CANCEL_REASON = 'cancelled by the check';

function usage(message) {
  process.stderr.write(
    `check.mjs: ${message}\nusage: check.mjs --name NAME [--progress TOOL=TOTAL | --cancel TOOL=TOTAL ...] (--url URL | --stdio -- COMMAND [ARG...])\n`,
  );
  process.exit(2);
}

// The SDK's own package.json, found upwards from its entry point (its `exports` map sends
// `@modelcontextprotocol/sdk/package.json` to a nested one).
function sdkVersion() {
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve('@modelcontextprotocol/sdk/client/index.js'));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      if (pkg.name === '@modelcontextprotocol/sdk') return pkg.version;
    }
    if (dirname(dir) === dir) return 'unknown';
    dir = dirname(dir);
  }
}

// An error and its causes (undici's `fetch failed` names the socket error only in `cause`).
function describe(err) {
  const parts = [];
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 5; e = e.cause, depth++) {
    if (typeof e !== 'object') {
      parts.push(String(e));
      break;
    }
    const code = e.code !== undefined ? ` (code ${e.code})` : '';
    parts.push(`${e.name ?? 'Error'}${code}: ${e.message ?? String(e)}`);
  }
  return parts.join(', caused by ');
}

function defaultArguments(inputSchema, given) {
  const props = inputSchema?.properties ?? {};
  const args = { ...given };
  for (const name of inputSchema?.required ?? []) {
    if (name in args) continue;
    if (!props[name] || !('default' in props[name])) {
      throw new Error(`required argument \`${name}\` has no default`);
    }
    args[name] = props[name].default;
  }
  return args;
}

class Report {
  constructor(name, target) {
    this.data = {
      client: 'typescript',
      sdk: { package: '@modelcontextprotocol/sdk', version: sdkVersion() },
      node: process.version,
      mode: 'default (new Client(info) and a transport with no options)',
      target: { name, ...target },
      checks: [],
    };
  }

  add(check, ok, detail) {
    const entry = { check, ok, at_s: Math.round(performance.now()) / 1000 };
    if (detail !== undefined) entry[ok ? 'detail' : 'error'] = detail;
    this.data.checks.push(entry);
    const note = ok || detail === undefined ? '' : `: ${detail}`;
    process.stderr.write(`  ${(ok ? 'ok' : 'FAILED').padEnd(6)} ${check}${note}\n`);
  }

  skip(check, why) {
    this.data.checks.push({ check, skipped: why, at_s: Math.round(performance.now()) / 1000 });
    process.stderr.write(`  ${'skip'.padEnd(6)} ${check}: ${why}\n`);
  }

  get ok() {
    const checks = this.data.checks;
    return checks.every((c) => c.ok !== false) && checks.some((c) => c.ok === true);
  }
}

async function listAll(report, method, fetch, items) {
  const collected = [];
  let cursor;
  try {
    for (let page = 0; ; page++) {
      if (page === MAX_PAGES) {
        report.add(method, false, `still a next cursor after ${MAX_PAGES} pages`);
        return undefined;
      }
      const result = await fetch(cursor === undefined ? undefined : { cursor }, { timeout: REQUEST_TIMEOUT_MS });
      collected.push(...result[items]);
      cursor = result.nextCursor;
      if (cursor === undefined) break;
    }
  } catch (err) {
    report.add(method, false, describe(err));
    return undefined;
  }
  report.add(method, true, `${collected.length} ${items}`);
  return collected;
}

async function callTool(report, client, tool, given) {
  const check = `tools/call ${tool.name}`;
  let args;
  try {
    args = defaultArguments(tool.inputSchema, given);
  } catch (err) {
    report.add(check, false, `cannot call with default arguments: ${err.message}`);
    return [];
  }
  let result;
  try {
    result = await client.callTool({ name: tool.name, arguments: args }, undefined, { timeout: REQUEST_TIMEOUT_MS });
  } catch (err) {
    report.add(check, false, describe(err));
    return [];
  }
  const links = (result.content ?? []).filter((c) => c.type === 'resource_link').map((c) => c.uri);
  if (result.isError) {
    const text = (result.content ?? []).map((c) => c.text ?? '').join(' ');
    report.add(check, false, `isError with arguments ${JSON.stringify(args)}: ${text.slice(0, 500)}`);
    return [];
  }
  if (!tool.outputSchema) {
    report.add(check, true, 'no outputSchema declared');
    return links;
  }
  if (result.structuredContent === undefined) {
    report.add(check, false, 'outputSchema declared but no structuredContent returned');
    return [];
  }
  report.add(check, true, 'structuredContent matches outputSchema (validated by the SDK)');
  return links;
}

async function getPrompt(report, client, prompt, completes) {
  const chosen = {};
  for (const arg of prompt.arguments ?? []) {
    if (!completes) {
      if (arg.required) {
        report.add(`prompts/get ${prompt.name}`, false, `required \`${arg.name}\` and no completions`);
        return;
      }
      continue;
    }
    const check = `completion/complete ${prompt.name} ${arg.name}`;
    let result;
    try {
      const params = { ref: { type: 'ref/prompt', name: prompt.name }, argument: { name: arg.name, value: '' } };
      if (Object.keys(chosen).length > 0) params.context = { arguments: { ...chosen } };
      result = await client.complete(params, { timeout: REQUEST_TIMEOUT_MS });
    } catch (err) {
      report.add(check, false, describe(err));
      return;
    }
    const values = result.completion.values;
    if (arg.required && values.length === 0) {
      report.add(check, false, 'a required argument completed to no values');
      return;
    }
    report.add(check, true, `${values.length} values`);
    if (arg.required) chosen[arg.name] = values[0];
  }
  const check = `prompts/get ${prompt.name}`;
  let result;
  try {
    result = await client.getPrompt({ name: prompt.name, arguments: chosen }, { timeout: REQUEST_TIMEOUT_MS });
  } catch (err) {
    report.add(check, false, describe(err));
    return;
  }
  if (!result.messages?.length) {
    report.add(check, false, 'no messages');
    return;
  }
  report.add(check, true, `${result.messages.length} messages with ${JSON.stringify(Object.keys(chosen).sort())}`);
}

async function readResource(report, client, uri, why) {
  const check = `resources/read ${uri} (${why})`;
  let result;
  try {
    result = await client.readResource({ uri }, { timeout: REQUEST_TIMEOUT_MS });
  } catch (err) {
    report.add(check, false, describe(err));
    return;
  }
  const texts = (result.contents ?? []).map((c) => c.text);
  if (texts.length === 0 || texts.some((t) => typeof t !== 'string')) {
    report.add(check, false, 'no text contents');
    return;
  }
  try {
    for (const t of texts) JSON.parse(t);
  } catch (err) {
    report.add(check, false, `contents are not JSON: ${err.message}`);
    return;
  }
  report.add(check, true, `${texts.reduce((n, t) => n + t.length, 0)} characters of JSON`);
}

// Completes each variable of the template (earlier ones as context) and reads the result.
async function fillTemplate(report, client, template, completes) {
  const uri = template.uriTemplate;
  const chosen = {};
  for (const [, variable] of uri.matchAll(/\{(\w+)\}/g)) {
    if (!completes) {
      report.skip(`resources/read ${uri}`, 'no completions to fill the template with');
      return;
    }
    const check = `completion/complete ${uri} ${variable}`;
    let result;
    try {
      const params = { ref: { type: 'ref/resource', uri }, argument: { name: variable, value: '' } };
      if (Object.keys(chosen).length > 0) params.context = { arguments: { ...chosen } };
      result = await client.complete(params, { timeout: REQUEST_TIMEOUT_MS });
    } catch (err) {
      report.add(check, false, describe(err));
      return;
    }
    const values = result.completion.values;
    if (values.length === 0) {
      report.add(check, false, 'a template variable completed to no values');
      return;
    }
    report.add(check, true, `${values.length} values`);
    chosen[variable] = values[0];
  }
  const filled = uri.replace(/\{(\w+)\}/g, (_, v) => chosen[v]);
  await readResource(report, client, filled, `template ${uri}`);
}

// Calls `tool` with an `onprogress` callback; requires the reports 1..total of total, each with a
// message, before the result. `wire` is every message the transport handed the SDK, in order:
// the server's part is judged there, and what reached `onprogress` is a check of its own, since
// SDK 1.x runs notification handlers a microtask late but responses at once, so a report read in
// the same chunk as the response finds its handler retired (typescript-sdk#2580).
async function followProgress(report, client, wire, tool, total) {
  const check = `progress ${tool}`;
  const seen = [];
  const from = wire.length;
  let result;
  try {
    result = await client.callTool({ name: tool, arguments: {} }, undefined, {
      timeout: REQUEST_TIMEOUT_MS,
      onprogress: (p) => seen.push(p),
    });
  } catch (err) {
    report.add(check, false, describe(err));
    return;
  }
  if (result.isError) {
    const text = (result.content ?? []).map((c) => c.text ?? '').join(' ');
    report.add(check, false, `the call failed: ${text.slice(0, 500)}`);
    return;
  }
  const during = wire.slice(from);
  const answer = during.findIndex((m) => m.id !== undefined && (m.result !== undefined || m.error !== undefined));
  const sent = during
    .slice(0, answer < 0 ? during.length : answer)
    .filter((m) => m.method === 'notifications/progress')
    .map((m) => m.params);
  const steps = sent.map((p) => [p.progress, p.total]);
  const expected = Array.from({ length: total }, (_, i) => [i + 1, total]);
  if (JSON.stringify(steps) !== JSON.stringify(expected)) {
    report.add(check, false, `progress reports before the result ${JSON.stringify(steps)}, expected ${JSON.stringify(expected)}`);
    return;
  }
  if (!sent.every((p) => p.message)) {
    report.add(check, false, `a progress report without a message: ${JSON.stringify(sent)}`);
    return;
  }
  report.add(check, true, `${sent.length} reports before the result: ${sent.map((p) => p.message).join('; ')}`);
  const delivered = `${check}: onprogress`;
  if (JSON.stringify(seen.map((p) => [p.progress, p.total])) === JSON.stringify(expected)) {
    report.add(delivered, true, `the SDK delivered all ${seen.length}`);
  } else {
    report.skip(
      delivered,
      `the SDK delivered ${seen.length} of the ${sent.length} reports that came before the result ` +
        '(typescript-sdk#2580: a report read with the response reaches onprogress after the response retired it)',
    );
  }
}

// The hung agent's connection counts (the test bed replaces the file whole on each change).
function hungStatus(file) {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8'));
    return value !== null && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls `predicate` every 50 ms until it holds (true) or `timeoutMs` passed (false).
async function waitUntil(predicate, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

// The values no log message may contain: the bearer token and GPU_MCP_CHECK_SECRETS's lines.
function secrets() {
  const values = [process.env.GPU_MCP_CHECK_TOKEN ?? '', ...(process.env.GPU_MCP_CHECK_SECRETS ?? '').split('\n')];
  return values.map((v) => v.trim()).filter((v) => v.length > 0);
}

// Aborts a fan-out held by the hung node; checks the call, the node call and the session.
async function cancelFanOut(report, client, spec) {
  const check = `cancel ${spec.tool}`;
  const seen = [];
  const controller = new AbortController();
  let settled;
  const call = client
    .callTool({ name: spec.tool, arguments: {} }, undefined, {
      timeout: REQUEST_TIMEOUT_MS,
      signal: controller.signal,
      onprogress: (p) => seen.push(p),
    })
    .then(
      (result) => {
        settled = { result };
      },
      (error) => {
        settled = { error };
      },
    );
  const others = spec.total - 1;
  const reached = await waitUntil(
    () => settled !== undefined || (seen.length >= others && (hungStatus(spec.hungStatus).open ?? 0) >= 1),
    FAN_OUT_WAIT_MS,
  );
  const waits = `${check}: the call waits for the hung node`;
  if (settled !== undefined) {
    const outcome = settled.error ? describe(settled.error) : 'a result';
    report.add(waits, false, `the call ended before it was cancelled: ${outcome}`);
    return;
  }
  if (!reached) {
    controller.abort(CANCEL_REASON);
    report.add(
      waits,
      false,
      `after ${FAN_OUT_WAIT_MS / 1000} s: ${seen.length} progress reports (expected ${others}), ` +
        `hung agent ${JSON.stringify(hungStatus(spec.hungStatus))}`,
    );
    return;
  }
  report.add(
    waits,
    true,
    `${seen.length} of ${spec.total} nodes answered; the hung agent holds ${JSON.stringify(hungStatus(spec.hungStatus))}`,
  );

  const cancelledAt = performance.now();
  controller.abort(CANCEL_REASON);
  await Promise.race([call, sleep(CANCEL_WAIT_MS)]);
  const endedMs = Math.round(performance.now() - cancelledAt);
  const ends = `${check}: the call ends as cancelled`;
  if (settled === undefined) {
    report.add(ends, false, `still pending ${CANCEL_WAIT_MS / 1000} s after the abort`);
    return;
  }
  if (!settled.error) {
    report.add(ends, false, 'it resolved with a result after the abort');
    return;
  }
  if (!String(settled.error.message ?? '').includes(CANCEL_REASON)) {
    report.add(ends, false, `it rejected with something other than the abort: ${describe(settled.error)}`);
    return;
  }
  report.add(ends, true, `rejected ${endedMs} ms after the abort: ${describe(settled.error)}`);

  const closed = await waitUntil(() => hungStatus(spec.hungStatus).open === 0, CLOSE_WAIT_MS);
  const closedMs = Math.round(performance.now() - cancelledAt);
  const status = JSON.stringify(hungStatus(spec.hungStatus));
  report.add(
    `${check}: the gateway stops the node call`,
    closed,
    closed
      ? `the hung agent's connection was closed ${closedMs} ms after the abort (${status})`
      : `the gateway still holds its connection to the hung node ${CLOSE_WAIT_MS / 1000} s after the abort (${status})`,
  );

  const next = `${check}: the next request succeeds`;
  let result;
  try {
    result = await client.callTool({ name: spec.tool, arguments: { node: spec.answering } }, undefined, {
      timeout: REQUEST_TIMEOUT_MS,
    });
  } catch (err) {
    report.add(next, false, describe(err));
    return;
  }
  if (result.isError) {
    const text = (result.content ?? []).map((c) => c.text ?? '').join(' ');
    report.add(next, false, `isError: ${text.slice(0, 500)}`);
    return;
  }
  report.add(next, true, `${spec.tool} on ${spec.answering} answered on the same session`);
}

// Requires a `fleet` warning naming the unreachable node, and no token in any message.
function checkLogs(report, logs, spec) {
  const about = logs.filter(
    (l) => l.logger === FLEET_LOGGER && l.data !== null && typeof l.data === 'object' && l.data.node === spec.unreachable,
  );
  const named = `logging: ${spec.unreachable} stopped answering`;
  if (about.length > 0) {
    report.add(named, true, `${about[0].level} from ${FLEET_LOGGER}: ${String(about[0].data.message).slice(0, 300)}`);
  } else {
    report.add(named, false, `no notifications/message from ${FLEET_LOGGER} named it; got ${JSON.stringify(logs).slice(0, 500)}`);
  }
  const text = JSON.stringify(logs);
  const all = secrets();
  const leaked = all.flatMap((s, i) => (text.includes(s) ? [i] : []));
  if (leaked.length > 0) {
    report.add('logging: no token in the messages', false, `secret(s) number ${leaked} appear in ${logs.length} messages`);
  } else {
    report.add('logging: no token in the messages', true, `${logs.length} messages, ${all.length} secrets checked`);
  }
}

async function run(report, transport, toolArguments, progress, cancel) {
  const started = performance.now();
  // Ajv (inside the SDK) logs schema keywords it does not know, such as `format: uint32`, with
  // console.warn; they are kept in the report rather than mixed into the server's log.
  const warnings = new Set();
  const warn = console.warn;
  console.warn = (...args) => warnings.add(args.map(String).join(' '));
  // The Protocol calls a handler set before `connect` first, so the initialize answer can be
  // read without changing what the client does.
  let negotiated;
  transport.onmessage = (message) => {
    negotiated ??= message?.result?.protocolVersion;
  };
  const client = new Client({ name: 'gpu-mcp-sdk-check', version: '0.1.0' });
  try {
    try {
      await client.connect(transport, { timeout: REQUEST_TIMEOUT_MS });
    } catch (err) {
      report.add('connect', false, describe(err));
      return;
    }
    const caps = client.getServerCapabilities() ?? {};
    report.data.protocol_version = negotiated ?? null;
    report.data.server_info = client.getServerVersion() ?? null;
    report.data.capabilities = caps;
    report.add('connect', true, `protocol ${negotiated}`);
    // Every message the transport hands the SDK from now on, in order (observed, not changed).
    const wire = [];
    const deliver = transport.onmessage;
    transport.onmessage = (message, extra) => {
      wire.push(message);
      deliver?.(message, extra);
    };

    if (cancel) {
      const logs = [];
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
        logs.push(n.params);
      });
      if (!caps.logging) {
        report.add('logging/setLevel', false, 'the server does not advertise logging');
      } else {
        try {
          await client.setLoggingLevel(LOG_LEVEL, { timeout: REQUEST_TIMEOUT_MS });
          report.add('logging/setLevel', true, LOG_LEVEL);
        } catch (err) {
          report.add('logging/setLevel', false, describe(err));
        }
      }
      await cancelFanOut(report, client, cancel);
      checkLogs(report, logs, cancel);
      return;
    }
    if (!caps.tools) {
      report.add('tools capability', false, 'the server does not advertise tools');
    } else {
      const tools = await listAll(report, 'tools/list', (p, o) => client.listTools(p, o), 'tools');
      if (tools === undefined) {
        report.skip('tools/call', 'tools/list failed, so there is no tool to call');
      } else {
        if (tools.length === 0) report.add('tools/list non-empty', false, 'the server lists no tools');
        const listed = new Set(tools.map((t) => t.name));
        for (const name of Object.keys(toolArguments).filter((n) => !listed.has(n)).sort()) {
          report.add(`tools/call ${name}`, false, 'not listed, though arguments were given for it');
        }
        for (const tool of tools) {
          const links = await callTool(report, client, tool, toolArguments[tool.name]);
          if (links.length > 0 && caps.resources) await readResource(report, client, links[0], `linked by ${tool.name}`);
        }
      }
    }
    if (progress) await followProgress(report, client, wire, progress.tool, progress.total);
    if (!caps.prompts) {
      report.skip('prompts/list', 'capability not advertised');
    } else {
      const prompts = await listAll(report, 'prompts/list', (p, o) => client.listPrompts(p, o), 'prompts');
      for (const prompt of prompts ?? []) await getPrompt(report, client, prompt, Boolean(caps.completions));
    }
    if (!caps.resources) {
      report.skip('resources/list', 'capability not advertised');
    } else {
      const resources = await listAll(report, 'resources/list', (p, o) => client.listResources(p, o), 'resources');
      for (const resource of (resources ?? []).slice(0, MAX_READS)) await readResource(report, client, resource.uri, 'listed');
      const templates = await listAll(
        report,
        'resources/templates/list',
        (p, o) => client.listResourceTemplates(p, o),
        'resourceTemplates',
      );
      for (const template of templates ?? []) await fillTemplate(report, client, template, Boolean(caps.completions));
    }
  } finally {
    try {
      await client.close();
    } catch (err) {
      report.add('close', false, describe(err));
    }
    console.warn = warn;
    report.data.sdk_warnings = [...warnings].sort();
    report.data.elapsed_s = Math.round(performance.now() - started) / 1000;
  }
}

const { values, positionals } = (() => {
  try {
    return parseArgs({
      options: {
        name: { type: 'string' },
        url: { type: 'string' },
        stdio: { type: 'boolean' },
        arguments: { type: 'string', multiple: true },
        progress: { type: 'string' },
        cancel: { type: 'string' },
        'hung-status': { type: 'string' },
        'unreachable-node': { type: 'string' },
        'answering-node': { type: 'string' },
      },
      allowPositionals: true,
    });
  } catch (err) {
    return usage(err.message);
  }
})();
if (!values.name) usage('--name is required');
if (!values.url === !values.stdio) usage('give exactly one of --url and --stdio');
if (values.stdio && positionals.length === 0) usage('--stdio needs a command after `--`');
if (values.url && positionals.length > 0) usage('--url takes no command');

// `TOOL=TOTAL` with TOTAL an integer of at least `least`.
function toolTotal(flag, value, least) {
  const at = value.indexOf('=');
  const tool = at > 0 ? value.slice(0, at) : '';
  const total = at > 0 && /^[0-9]+$/.test(value.slice(at + 1)) ? Number(value.slice(at + 1)) : NaN;
  if (!tool || !(total >= least)) usage(`${flag} takes TOOL=TOTAL with TOTAL an integer of at least ${least}`);
  return { tool, total };
}
const progress = values.progress === undefined ? undefined : toolTotal('--progress', values.progress, 1);
let cancel;
if (values.cancel !== undefined) {
  if (!values['hung-status'] || !values['unreachable-node'] || !values['answering-node']) {
    usage('--cancel needs --hung-status, --unreachable-node and --answering-node');
  }
  if (progress || values.arguments) usage('--cancel runs its checks alone: no --progress or --arguments');
  cancel = {
    ...toolTotal('--cancel', values.cancel, 2),
    hungStatus: values['hung-status'],
    unreachable: values['unreachable-node'],
    answering: values['answering-node'],
  };
}

const toolArguments = {};
for (const item of values.arguments ?? []) {
  const at = item.indexOf('=');
  const tool = at > 0 ? item.slice(0, at) : '';
  let value;
  try {
    value = JSON.parse(item.slice(at + 1));
  } catch (err) {
    usage(`--arguments ${tool}: not JSON: ${err.message}`);
  }
  if (!tool || value === null || typeof value !== 'object' || Array.isArray(value)) {
    usage('--arguments takes TOOL=JSON with JSON an object');
  }
  toolArguments[tool] = value;
}

let report;
let transport;
if (values.url) {
  const token = process.env.GPU_MCP_CHECK_TOKEN;
  const target = { transport: 'streamable-http', url: values.url };
  if (token) target.authorization = 'Bearer token from GPU_MCP_CHECK_TOKEN';
  report = new Report(values.name, target);
  transport = token
    ? new StreamableHTTPClientTransport(new URL(values.url), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      })
    : new StreamableHTTPClientTransport(new URL(values.url));
} else {
  const [command, ...args] = positionals;
  report = new Report(values.name, { transport: 'stdio', command: positionals });
  transport = new StdioClientTransport({ command, args });
}
process.stderr.write(`typescript ${report.data.sdk.package} ${report.data.sdk.version} -> ${values.name}\n`);
try {
  await run(report, transport, toolArguments, progress, cancel);
} catch (err) {
  report.add('session', false, describe(err));
}
report.data.ok = report.ok;
process.stdout.write(`${JSON.stringify(report.data, null, 2)}\n`);
process.exitCode = report.ok ? 0 : 1;
