// Checks an MCP server with the official TypeScript SDK (@modelcontextprotocol/sdk) in its
// default mode.
//
//     node check.mjs --name NAME [--arguments TOOL=JSON]... --url http://127.0.0.1:PORT/mcp
//     node check.mjs --name NAME [--arguments TOOL=JSON]... --stdio -- COMMAND [ARG...]
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

// Hang guard of one request; no request here should take more than a few seconds.
const REQUEST_TIMEOUT_MS = 60_000;
// Most pages of one list walked before giving up (a cursor that never ends).
const MAX_PAGES = 100;
// Most listed resources read (a gateway lists every node's).
const MAX_READS = 5;

function usage(message) {
  process.stderr.write(`check.mjs: ${message}\nusage: check.mjs --name NAME (--url URL | --stdio -- COMMAND [ARG...])\n`);
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

async function run(report, transport, toolArguments) {
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
  await run(report, transport, toolArguments);
} catch (err) {
  report.add('session', false, describe(err));
}
report.data.ok = report.ok;
process.stdout.write(`${JSON.stringify(report.data, null, 2)}\n`);
process.exitCode = report.ok ? 0 : 1;
