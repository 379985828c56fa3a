/**
 * Structured output for the llama engine, after modeld v0.36.0: a JSON Schema
 * (`DecodeConfig.StructuredOutput.Payload`) constrains sampling through a
 * grammar; protocol `llama:json_schema_tool_calls` buffers the whole output
 * and turns its `{"content"?, "tool_calls": [...]}` envelope into one chunk
 * of text and tool calls, normalized as modeld's `sessionkit` does.
 *
 * @example
 * ```ts ignore
 * import { parseToolCallEnvelope } from "./structured.ts";
 * const { text, toolCalls } = parseToolCallEnvelope('{"tool_calls":[{"name":"f","arguments":{}}]}');
 * ```
 *
 * @module
 */

import { ServiceError } from "../sentinels.ts";

/** The structured-output protocols this engine accepts. */
export type StructuredMode = "json_schema" | "tool_calls";

/**
 * The mode of a `StructuredOutput.Protocol`, or `undefined` for an unsupported one.
 *
 * @param protocol The protocol ("" = none).
 * @returns The mode, `null` for none, `undefined` when unsupported.
 *
 * @example
 * ```ts ignore
 * console.assert(structuredMode("llama:json_schema") === "json_schema");
 * ```
 */
export function structuredMode(protocol: string): StructuredMode | null | undefined {
  switch (protocol) {
    case "":
      return null;
    case "json_schema":
    case "llama:json_schema":
      return "json_schema";
    case "llama:json_schema_tool_calls":
      return "tool_calls";
    default:
      return undefined;
  }
}

/** A tool call as the Decode stream carries it. */
export interface ToolCallOut {
  /** `call_<n>` unless the model named one. */
  id: string;
  /** Always `function` unless the model said otherwise. */
  type: string;
  /** The function and its JSON-encoded arguments. */
  function: { name: string; arguments: string };
}

const TOOL_CALL_RE = /<tool_call>\s*(\{[\s\S]*?\})\s*<\/tool_call>/g;

function argumentsText(value: unknown): string {
  if (value === null || value === undefined) return "{}";
  if (typeof value === "string") return value.trim() === "" ? "{}" : value;
  return JSON.stringify(value);
}

function normalize(raw: Record<string, unknown>, i: number): ToolCallOut {
  const fn = (raw.function ?? {}) as Record<string, unknown>;
  const name = String(fn.name ?? raw.name ?? raw.tool_name ?? "");
  const args = fn.arguments ?? fn.parameters ?? raw.arguments ?? raw.parameters;
  return {
    id: typeof raw.id === "string" && raw.id !== "" ? raw.id : `call_${i + 1}`,
    type: typeof raw.type === "string" && raw.type !== "" ? raw.type : "function",
    function: { name, arguments: argumentsText(args) },
  };
}

function fail(why: string): ServiceError {
  return new ServiceError("", `llamasession: parse structured tool calls: ${why}`);
}

/**
 * Parses a buffered tool-call output: a JSON envelope, or Qwen/Hermes
 * `<tool_call>{…}</tool_call>` blocks, or plain text.
 *
 * @param output The whole generated text.
 * @returns The text (`content`) and the tool calls.
 * @throws {ServiceError} Empty output, a bad envelope, a call without a name.
 *
 * @example
 * ```ts ignore
 * const r = parseToolCallEnvelope('{"content":"ok","tool_calls":[]}');
 * ```
 */
export function parseToolCallEnvelope(output: string): { text: string; toolCalls: ToolCallOut[] } {
  const trimmed = output.trim();
  if (trimmed === "") throw fail("structured tool call output is empty");
  if (trimmed.startsWith("{")) {
    let envelope: Record<string, unknown>;
    try {
      envelope = JSON.parse(trimmed);
    } catch (err) {
      throw fail(`parse structured tool call envelope: ${(err as Error).message}`);
    }
    const calls = envelope.tool_calls;
    const content = typeof envelope.content === "string" ? envelope.content : "";
    if (!Array.isArray(calls) && content === "") {
      throw fail("structured tool call envelope contained neither content nor tool_calls");
    }
    return {
      text: content,
      toolCalls: (Array.isArray(calls) ? calls : []).map((c, i) =>
        normalize((c ?? {}) as Record<string, unknown>, i)
      ),
    };
  }
  return toolCallsIn(trimmed, { strict: true });
}

/**
 * Takes Qwen / Hermes `<tool_call>{…}</tool_call>` blocks out of a text.
 *
 * @param text The generated text.
 * @param options `strict`: a block that is not JSON or names no function is an
 *   error (structured output); otherwise it stays in the text (parser protocols).
 * @returns The remaining text (trimmed in strict mode) and the calls.
 * @throws {ServiceError} In strict mode, for a bad block.
 *
 * @example
 * ```ts ignore
 * const { text, toolCalls } = toolCallsIn('Hi <tool_call>{"name":"f","arguments":{}}</tool_call>');
 * ```
 */
export function toolCallsIn(
  text: string,
  options: { strict?: boolean } = {},
): { text: string; toolCalls: ToolCallOut[] } {
  const calls: ToolCallOut[] = [];
  const rest = text.replace(TOOL_CALL_RE, (block, json: string) => {
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(json);
    } catch (err) {
      if (options.strict) throw fail(`parse qwen tool_call payload: ${(err as Error).message}`);
      return block;
    }
    const call = normalize(payload, calls.length);
    if (call.function.name === "") {
      if (options.strict) throw fail("qwen tool_call payload missing name");
      return block;
    }
    calls.push(call);
    return "";
  });
  // Structured output reports the trimmed text; a stream keeps what it already sent.
  const out = calls.length === 0 ? text : rest;
  return { text: options.strict ? out.trim() : out, toolCalls: calls };
}
