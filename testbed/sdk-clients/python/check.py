"""Checks an MCP server with the official Python SDK (`mcp`) in its default mode.

    check.py --name NAME [--progress TOOL=TOTAL] [--arguments TOOL=JSON]... --url http://127.0.0.1:PORT/mcp
    check.py --name NAME [--progress TOOL=TOTAL] [--arguments TOOL=JSON]... --stdio -- COMMAND [ARG...]
    check.py --name NAME --cancel TOOL=TOTAL --hung-status FILE --unreachable-node NODE
             --answering-node NODE (--url URL | --stdio -- COMMAND [ARG...])

Connects with `Client(url)` or `Client(StdioServerParameters(...))` and no other argument, so the
SDK negotiates as it does for every user (`mode="auto"`: `server/discover`, falling back to
`initialize`), lists the tools (every page), calls every tool with its default arguments,
validates every `structuredContent` against the tool's `outputSchema` (the SDK does this inside
`call_tool`; this program checks again with `jsonschema` and lists every error), lists prompts
and resources only when the server advertises them, gets every prompt, and completes every
prompt argument when the server advertises completions (a required argument takes the first
completed value, and later arguments are completed in the context of the earlier ones). With
resources it lists them and their templates, reads the first listed ones, completes every
template variable (in the context of the earlier ones) and reads the filled template, and reads
the `resource_link` blocks that tool answers carry.
With `--progress TOOL=TOTAL` it also calls TOOL with its default arguments and a progress
callback, and requires one progress report per step up to TOTAL (done / total with a message)
before the result: a gateway fan-out over TOTAL nodes.
With `--cancel TOOL=TOTAL` it runs the cancellation and logging checks instead of the others,
against a gateway whose TOTAL nodes include one that never answers (the test bed's hung agent,
whose connections FILE counts as JSON `{"accepted", "open"}`) and one that refuses connections
(`--unreachable-node`): it connects asking for `warning` log messages (`Client(server,
log_level=..., logging_callback=...)`, the SDK's opt-in on 2026-07-28; `set_logging_level` on a
handshake revision), calls TOOL with a progress callback in an asyncio task, waits for the
TOTAL - 1 progress reports of the other nodes and for the hung agent's open connection, cancels
the task (the SDK then sends `notifications/cancelled`, or at 2026-07-28 over HTTP closes the
request's stream), and requires that the call ends as cancelled, that the hung agent's
connection is closed by the gateway soon after (the outstanding node call was stopped), that
TOOL on `--answering-node` succeeds next on the same client, and that a `notifications/message`
from the `fleet` logger named the unreachable node, with no token in any message (the bearer
token and the newline-separated values of GPU_MCP_CHECK_SECRETS).
With `--arguments TOOL=JSON` (repeatable) TOOL is called with that JSON object, required
arguments it leaves out taking their defaults, and TOOL must be listed. With the environment
variable GPU_MCP_CHECK_TOKEN set, every HTTP request carries `Authorization: Bearer <token>` (the
only change to the default client: an `httpx2.AsyncClient` with that header given to the SDK's
`streamable_http_client`).
Prints one JSON report on stdout; the server's and the SDK's logs go to stderr.
Exits 0 when every check passed, 1 when one failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import LoggingMessageNotificationParams, PromptReference, ResourceTemplateReference
from mcp.types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

# Hang guard of one request; no request here should take more than a few seconds.
REQUEST_TIMEOUT_S = 60.0
# Most pages of one list walked before giving up (a cursor that never ends).
MAX_PAGES = 100
# Most listed resources read (a gateway lists every node's).
MAX_READS = 5
# Timeouts of the HTTP client given to the SDK with a token: the SDK's own defaults (30 s, and
# 300 s to read, as a response stream may stay open).
HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
# How long the cancellation check waits for the fan-out to reach the hung node, for the call to
# end once cancelled, and for the gateway to close its connection to the hung node.
FAN_OUT_WAIT_S = 30.0
CANCEL_WAIT_S = 10.0
CLOSE_WAIT_S = 10.0
# The level the cancellation check asks log messages at, and the logger of the gateway's fleet.
LOG_LEVEL = "warning"
FLEET_LOGGER = "fleet"
# When the imports above were done; each check records when it ended, relative to this.
STARTED = time.monotonic()


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or `exc` itself."""
    if isinstance(exc, BaseExceptionGroup):
        leaves: list[BaseException] = []
        for inner in exc.exceptions:
            leaves.extend(leaf_exceptions(inner))
        return leaves
    return [exc]


def describe(exc: BaseException) -> str:
    """One line per cause: pydantic's errors field by field, anything else by type and text."""
    lines = []
    for leaf in leaf_exceptions(exc):
        if isinstance(leaf, ValidationError):
            fields = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']} [{err['type']}]"
                for err in leaf.errors()
            )
            lines.append(f"the SDK rejected the server's {leaf.title}: {fields}")
        elif isinstance(leaf, TimeoutError):
            lines.append(f"no answer within {REQUEST_TIMEOUT_S:.0f} s")
        else:
            lines.append(f"{type(leaf).__name__}: {leaf}")
    return "\n".join(lines)


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """Every error of `instance` against `schema` (dialect from `$schema`), or the schema's own."""
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as err:
        return [f"the outputSchema itself is invalid: {err.message}"]
    return [
        f"{err.json_path}: {err.message}"
        for err in sorted(cls(schema).iter_errors(instance), key=lambda e: list(e.path))
    ]


def default_arguments(input_schema: dict[str, Any], given: dict[str, Any] | None = None) -> dict[str, Any]:
    """Arguments of a call: `given`, and each other required property's `default`."""
    props = input_schema.get("properties") or {}
    args = dict(given or {})
    for name in input_schema.get("required") or []:
        if name in args:
            continue
        if "default" not in props.get(name, {}):
            raise ValueError(f"required argument `{name}` has no default")
        args[name] = props[name]["default"]
    return args


class Report:
    """The checks run so far and their outcomes."""

    def __init__(self, name: str, target: dict[str, Any]) -> None:
        self.data: dict[str, Any] = {
            "client": "python",
            "sdk": {"package": "mcp", "version": version("mcp")},
            "mode": "default (Client(server) with no other argument)",
            "target": {"name": name, **target},
            "checks": [],
        }

    def at(self) -> float:
        """Seconds since the imports were done."""
        return round(time.monotonic() - STARTED, 3)

    def add(self, check: str, ok: bool, detail: Any = None) -> None:
        entry: dict[str, Any] = {"check": check, "ok": ok, "at_s": self.at()}
        if detail is not None:
            entry["detail" if ok else "error"] = detail
        self.data["checks"].append(entry)
        mark = "ok" if ok else "FAILED"
        note = "" if ok or detail is None else f": {detail}"
        print(f"  {mark:6} {check}{note}", file=sys.stderr)

    def skip(self, check: str, why: str) -> None:
        self.data["checks"].append({"check": check, "skipped": why, "at_s": self.at()})
        print(f"  {'skip':6} {check}: {why}", file=sys.stderr)

    @property
    def ok(self) -> bool:
        return all(c.get("ok", True) for c in self.data["checks"]) and any(
            c.get("ok") for c in self.data["checks"]
        )


async def guarded(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, REQUEST_TIMEOUT_S)


async def list_all(report: Report, method: str, fetch: Any, items: str) -> list[Any] | None:
    """Walks every page of a list method; records the check; returns the items or None."""
    collected: list[Any] = []
    cursor = None
    try:
        for _ in range(MAX_PAGES):
            page = await guarded(fetch(cursor=cursor))
            collected.extend(getattr(page, items))
            cursor = page.next_cursor
            if cursor is None:
                break
        else:
            report.add(method, False, f"still a next cursor after {MAX_PAGES} pages")
            return None
    except Exception as exc:  # every failure is a finding, reported with its cause
        report.add(method, False, describe(exc))
        return None
    report.add(method, True, f"{len(collected)} {items}")
    return collected


async def call_tool(report: Report, client: Client, tool: Any, given: dict[str, Any] | None) -> list[str]:
    """Calls `tool` with `given` and default arguments; returns the URIs of its `resource_link` blocks."""
    check = f"tools/call {tool.name}"
    try:
        args = default_arguments(tool.input_schema, given)
    except ValueError as exc:
        report.add(check, False, f"cannot call with default arguments: {exc}")
        return []
    try:
        result = await guarded(client.call_tool(tool.name, args))
    except Exception as exc:
        report.add(check, False, describe(exc))
        return []
    links = [str(c.uri) for c in result.content if getattr(c, "type", None) == "resource_link"]
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        report.add(check, False, f"isError with arguments {json.dumps(args)}: {text[:500]}")
        return []
    if tool.output_schema is None:
        report.add(check, True, "no outputSchema declared")
        return links
    if result.structured_content is None:
        report.add(check, False, "outputSchema declared but no structuredContent returned")
        return []
    errors = schema_errors(tool.output_schema, result.structured_content)
    if errors:
        report.add(check, False, "structuredContent does not match outputSchema: " + "; ".join(errors[:20]))
        return []
    report.add(check, True, "structuredContent matches outputSchema")
    return links


async def follow_progress(report: Report, client: Client, tool: str, total: int) -> None:
    """Calls `tool` asking for progress; requires the reports 1..total of total, then a result."""
    check = f"progress {tool}"
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, of: float | None, message: str | None) -> None:
        seen.append((progress, of, message))

    try:
        result = await guarded(client.call_tool(tool, {}, progress_callback=on_progress))
    except Exception as exc:
        report.add(check, False, describe(exc))
        return
    if result.is_error:
        report.add(check, False, "the call failed: " + " ".join(getattr(c, "text", "") for c in result.content)[:500])
        return
    steps = [(p, t) for p, t, _ in seen]
    expected = [(float(i), float(total)) for i in range(1, total + 1)]
    if steps != expected:
        report.add(check, False, f"progress reports {steps}, expected {expected}")
        return
    if not all(m for _, _, m in seen):
        report.add(check, False, f"a progress report without a message: {seen}")
        return
    report.add(check, True, f"{len(seen)} reports before the result: " + "; ".join(m or "" for _, _, m in seen))


@dataclass(frozen=True)
class CancelSpec:
    """What `--cancel` checks: TOOL fans out over TOTAL nodes, one of them the hung agent."""

    tool: str
    total: int
    hung_status: Path
    unreachable: str
    answering: str


def hung_status(path: Path) -> dict[str, Any]:
    """The hung agent's connection counts (the test bed replaces the file whole on each change)."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


async def wait_until(predicate: Any, timeout_s: float) -> bool:
    """Polls `predicate` every 50 ms until it holds (True) or `timeout_s` passed (False)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def secrets() -> list[str]:
    """The values no log message may contain: the bearer token and GPU_MCP_CHECK_SECRETS's lines."""
    values = [os.environ.get("GPU_MCP_CHECK_TOKEN", "")]
    values.extend(os.environ.get("GPU_MCP_CHECK_SECRETS", "").splitlines())
    return [v.strip() for v in values if v.strip()]


async def cancel_fan_out(report: Report, client: Client, spec: CancelSpec) -> None:
    """Cancels a fan-out held by the hung node; checks the call, the node call and the session."""
    check = f"cancel {spec.tool}"
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, of: float | None, message: str | None) -> None:
        seen.append((progress, of, message))

    call = asyncio.create_task(client.call_tool(spec.tool, {}, progress_callback=on_progress))
    others = spec.total - 1
    reached = await wait_until(
        lambda: call.done() or (len(seen) >= others and hung_status(spec.hung_status).get("open", 0) >= 1),
        FAN_OUT_WAIT_S,
    )
    if call.done():
        outcome = describe(call.exception()) if call.exception() else "a result"
        report.add(f"{check}: the call waits for the hung node", False, f"the call ended before it was cancelled: {outcome}")
        return
    if not reached:
        call.cancel()
        report.add(
            f"{check}: the call waits for the hung node",
            False,
            f"after {FAN_OUT_WAIT_S:.0f} s: {len(seen)} progress reports (expected {others}), "
            f"hung agent {hung_status(spec.hung_status)}",
        )
        return
    report.add(
        f"{check}: the call waits for the hung node",
        True,
        f"{len(seen)} of {spec.total} nodes answered; the hung agent holds {hung_status(spec.hung_status)}",
    )

    cancelled_at = time.monotonic()
    call.cancel()
    done, _ = await asyncio.wait({call}, timeout=CANCEL_WAIT_S)
    ended_ms = round((time.monotonic() - cancelled_at) * 1000)
    if not done:
        report.add(f"{check}: the call ends as cancelled", False, f"still running {CANCEL_WAIT_S:.0f} s after the cancel")
        return
    if not call.cancelled():
        outcome = describe(call.exception()) if call.exception() else f"a result: {call.result()}"
        report.add(f"{check}: the call ends as cancelled", False, f"it ended with {outcome}")
        return
    report.add(f"{check}: the call ends as cancelled", True, f"{ended_ms} ms after the task was cancelled")

    closed = await wait_until(lambda: hung_status(spec.hung_status).get("open") == 0, CLOSE_WAIT_S)
    closed_ms = round((time.monotonic() - cancelled_at) * 1000)
    status = hung_status(spec.hung_status)
    report.add(
        f"{check}: the gateway stops the node call",
        closed,
        f"the hung agent's connection was closed {closed_ms} ms after the cancel ({status})"
        if closed
        else f"the gateway still holds its connection to the hung node {CLOSE_WAIT_S:.0f} s after the cancel ({status})",
    )

    check_next = f"{check}: the next request succeeds"
    try:
        result = await guarded(client.call_tool(spec.tool, {"node": spec.answering}))
    except Exception as exc:
        report.add(check_next, False, describe(exc))
        return
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        report.add(check_next, False, f"isError: {text[:500]}")
        return
    report.add(check_next, True, f"{spec.tool} on {spec.answering} answered on the same client")


def check_logs(report: Report, logs: list[LoggingMessageNotificationParams], spec: CancelSpec) -> None:
    """Requires a `fleet` warning naming the unreachable node, and no token in any message."""
    records = [log.model_dump(mode="json") for log in logs]
    about = [
        r for r in records if r.get("logger") == FLEET_LOGGER and isinstance(r.get("data"), dict)
        and r["data"].get("node") == spec.unreachable
    ]
    if about:
        data = about[0]["data"]
        report.add(
            f"logging: {spec.unreachable} stopped answering",
            True,
            f"{about[0].get('level')} from {FLEET_LOGGER}: {str(data.get('message'))[:300]}",
        )
    else:
        report.add(
            f"logging: {spec.unreachable} stopped answering",
            False,
            f"no notifications/message from {FLEET_LOGGER} named it; got {json.dumps(records)[:500]}",
        )
    text = json.dumps(records)
    leaked = [i for i, s in enumerate(secrets()) if s in text]
    if leaked:
        report.add("logging: no token in the messages", False, f"secret(s) number {leaked} appear in {len(records)} messages")
    else:
        report.add("logging: no token in the messages", True, f"{len(records)} messages, {len(secrets())} secrets checked")


async def get_prompt(report: Report, client: Client, prompt: Any, completes: bool) -> None:
    """Completes the prompt's arguments (when the server completes) and gets the prompt."""
    chosen: dict[str, str] = {}
    for arg in prompt.arguments or []:
        if not completes:
            if arg.required:
                report.add(f"prompts/get {prompt.name}", False, f"required `{arg.name}` and no completions")
                return
            continue
        check = f"completion/complete {prompt.name} {arg.name}"
        try:
            result = await guarded(
                client.complete(
                    PromptReference(type="ref/prompt", name=prompt.name),
                    {"name": arg.name, "value": ""},
                    dict(chosen) or None,
                )
            )
        except Exception as exc:
            report.add(check, False, describe(exc))
            return
        values = result.completion.values
        if arg.required and not values:
            report.add(check, False, "a required argument completed to no values")
            return
        report.add(check, True, f"{len(values)} values")
        if arg.required:
            chosen[arg.name] = values[0]
    check = f"prompts/get {prompt.name}"
    try:
        result = await guarded(client.get_prompt(prompt.name, chosen or None))
    except Exception as exc:
        report.add(check, False, describe(exc))
        return
    if not result.messages:
        report.add(check, False, "no messages")
        return
    report.add(check, True, f"{len(result.messages)} messages with {sorted(chosen)}")


async def read_resource(report: Report, client: Client, uri: str, why: str) -> None:
    check = f"resources/read {uri} ({why})"
    try:
        result = await guarded(client.read_resource(uri))
    except Exception as exc:
        report.add(check, False, describe(exc))
        return
    texts = [getattr(c, "text", None) for c in result.contents]
    if not texts or any(t is None for t in texts):
        report.add(check, False, "no text contents")
        return
    try:
        for t in texts:
            json.loads(t)
    except ValueError as exc:
        report.add(check, False, f"contents are not JSON: {exc}")
        return
    report.add(check, True, f"{sum(len(t) for t in texts)} characters of JSON")


async def fill_template(report: Report, client: Client, template: Any, completes: bool) -> None:
    """Completes each variable of the template (earlier ones as context) and reads the result."""
    uri = template.uri_template
    chosen: dict[str, str] = {}
    for var in re.findall(r"\{(\w+)\}", uri):
        if not completes:
            report.skip(f"resources/read {uri}", "no completions to fill the template with")
            return
        check = f"completion/complete {uri} {var}"
        try:
            result = await guarded(
                client.complete(
                    ResourceTemplateReference(type="ref/resource", uri=uri),
                    {"name": var, "value": ""},
                    dict(chosen) or None,
                )
            )
        except Exception as exc:
            report.add(check, False, describe(exc))
            return
        values = result.completion.values
        if not values:
            report.add(check, False, "a template variable completed to no values")
            return
        report.add(check, True, f"{len(values)} values")
        chosen[var] = values[0]
    filled = re.sub(r"\{(\w+)\}", lambda m: chosen[m.group(1)], uri)
    await read_resource(report, client, filled, f"template {uri}")


async def run(
    report: Report,
    server: Any,
    progress: tuple[str, int] | None,
    arguments: dict[str, dict[str, Any]],
    cancel: CancelSpec | None,
) -> None:
    started = time.monotonic()
    token = os.environ.get("GPU_MCP_CHECK_TOKEN")
    async with contextlib.AsyncExitStack() as stack:
        if token and isinstance(server, str):
            http = await stack.enter_async_context(
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT)
            )
            server = streamable_http_client(server, http_client=http)
        if cancel is None:
            await checks(report, server, progress, arguments)
        else:
            await cancel_checks(report, server, cancel)
    report.data["elapsed_s"] = round(time.monotonic() - started, 3)


def connected(report: Report, client: Client) -> Any:
    """Records the connection (revision, server, capabilities); returns the capabilities."""
    caps = client.server_capabilities
    info = client.server_info
    report.data["protocol_version"] = client.protocol_version
    report.data["server_info"] = info.model_dump(mode="json", exclude_none=True) if info else None
    report.data["capabilities"] = caps.model_dump(mode="json", by_alias=True, exclude_none=True)
    report.add("connect", True, f"protocol {client.protocol_version}")
    return caps


async def cancel_checks(report: Report, server: Any, spec: CancelSpec) -> None:
    logs: list[LoggingMessageNotificationParams] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        logs.append(params)

    # The defaults, plus the two settings a client that wants log messages sets: the level it
    # opts in to on 2026-07-28 (stamped on every request) and the callback that receives them.
    async with Client(server, log_level=LOG_LEVEL, logging_callback=on_log) as client:
        caps = connected(report, client)
        if client.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            if caps.logging is None:
                report.add("logging/setLevel", False, "the server does not advertise logging")
            else:
                try:
                    await guarded(client.set_logging_level(LOG_LEVEL))
                    report.add("logging/setLevel", True, LOG_LEVEL)
                except Exception as exc:
                    report.add("logging/setLevel", False, describe(exc))
        else:
            report.skip("logging/setLevel", f"not in {client.protocol_version}: the level travels in each request's _meta")
        await cancel_fan_out(report, client, spec)
        check_logs(report, logs, spec)


async def checks(
    report: Report, server: Any, progress: tuple[str, int] | None, arguments: dict[str, dict[str, Any]]
) -> None:
    # The SDK's defaults: no mode, no timeouts, no cache settings, no callbacks.
    async with Client(server) as client:
        caps = connected(report, client)
        if caps.tools is None:
            report.add("tools capability", False, "the server does not advertise tools")
        else:
            tools = await list_all(report, "tools/list", client.list_tools, "tools")
            if tools is not None:
                if not tools:
                    report.add("tools/list non-empty", False, "the server lists no tools")
                listed = {tool.name for tool in tools}
                for name in sorted(set(arguments) - listed):
                    report.add(f"tools/call {name}", False, "not listed, though arguments were given for it")
                for tool in tools:
                    links = await call_tool(report, client, tool, arguments.get(tool.name))
                    if links and caps.resources is not None:
                        await read_resource(report, client, links[0], f"linked by {tool.name}")
            else:
                report.skip("tools/call", "tools/list failed, so there is no tool to call")
        if progress is not None:
            await follow_progress(report, client, *progress)

        if caps.prompts is None:
            report.skip("prompts/list", "capability not advertised")
        else:
            prompts = await list_all(report, "prompts/list", client.list_prompts, "prompts")
            for prompt in prompts or []:
                await get_prompt(report, client, prompt, caps.completions is not None)
        if caps.resources is None:
            report.skip("resources/list", "capability not advertised")
        else:
            resources = await list_all(report, "resources/list", client.list_resources, "resources")
            for resource in (resources or [])[:MAX_READS]:
                await read_resource(report, client, str(resource.uri), "listed")
            templates = await list_all(
                report, "resources/templates/list", client.list_resource_templates, "resource_templates"
            )
            for template in templates or []:
                await fill_template(report, client, template, caps.completions is not None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="name of the server in the report")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--url", help="Streamable HTTP endpoint")
    group.add_argument("--stdio", action="store_true", help="spawn the command after `--`")
    parser.add_argument(
        "--progress", metavar="TOOL=TOTAL", help="a tool whose call reports TOTAL progress steps"
    )
    parser.add_argument(
        "--arguments",
        metavar="TOOL=JSON",
        action="append",
        default=[],
        help="call TOOL with this JSON object (repeatable)",
    )
    parser.add_argument(
        "--cancel",
        metavar="TOOL=TOTAL",
        help="run only the cancellation and logging checks: TOOL fans out over TOTAL nodes, one hung",
    )
    parser.add_argument("--hung-status", metavar="FILE", help="the hung agent's connection counts (with --cancel)")
    parser.add_argument("--unreachable-node", metavar="NODE", help="a node that refuses connections (with --cancel)")
    parser.add_argument("--answering-node", metavar="NODE", help="a node that answers (with --cancel)")
    parser.add_argument("command", nargs="*", help="stdio server command line")
    opts = parser.parse_args()

    def tool_total(flag: str, value: str, least: int) -> tuple[str, int]:
        tool, _, total = value.partition("=")
        if not tool or not total.isdigit() or int(total) < least:
            parser.error(f"{flag} takes TOOL=TOTAL with TOTAL an integer of at least {least}")
        return tool, int(total)

    progress = tool_total("--progress", opts.progress, 1) if opts.progress else None
    cancel = None
    if opts.cancel:
        if not (opts.hung_status and opts.unreachable_node and opts.answering_node):
            parser.error("--cancel needs --hung-status, --unreachable-node and --answering-node")
        if progress or opts.arguments:
            parser.error("--cancel runs its checks alone: no --progress or --arguments")
        tool, total = tool_total("--cancel", opts.cancel, 2)
        cancel = CancelSpec(tool, total, Path(opts.hung_status), opts.unreachable_node, opts.answering_node)
    arguments: dict[str, dict[str, Any]] = {}
    for item in opts.arguments:
        tool, _, text = item.partition("=")
        try:
            value = json.loads(text)
        except ValueError as exc:
            parser.error(f"--arguments {tool}: not JSON: {exc}")
        if not tool or not isinstance(value, dict):
            parser.error("--arguments takes TOOL=JSON with JSON an object")
        arguments[tool] = value
    if opts.stdio and not opts.command:
        parser.error("--stdio needs a command after `--`")
    if opts.url and opts.command:
        parser.error("--url takes no command")

    if opts.url:
        server: Any = opts.url
        target = {"transport": "streamable-http", "url": opts.url}
        if os.environ.get("GPU_MCP_CHECK_TOKEN"):
            target["authorization"] = "Bearer token from GPU_MCP_CHECK_TOKEN"
        report = Report(opts.name, target)
    else:
        server = StdioServerParameters(command=opts.command[0], args=opts.command[1:])
        report = Report(opts.name, {"transport": "stdio", "command": opts.command})
    print(f"python mcp {version('mcp')} -> {opts.name}", file=sys.stderr)
    try:
        asyncio.run(run(report, server, progress, arguments, cancel))
    except BaseException as exc:  # a failed connect or teardown is a finding too
        if isinstance(exc, KeyboardInterrupt):
            raise
        traceback.print_exception(exc, file=sys.stderr)
        connected = any(c.get("check") == "connect" for c in report.data["checks"])
        report.add("session" if connected else "connect", False, describe(exc))
    report.data["ok"] = report.ok
    json.dump(report.data, sys.stdout, indent=2)
    print()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
