/**
 * Turns chat messages and tool definitions into the `EnsurePrefix` and
 * `PrefillSuffix` inputs a modeld session takes, with the context manifest the
 * daemon reads to rebuild the conversation and to decide whether the resident
 * KV cache can be reused.
 *
 * The daemon applies the model's own chat template, so the client sends raw
 * message contents: the stable prefix is the system prompt, the volatile suffix
 * is every turn after it, and one manifest segment per message tells the daemon
 * each message's role and its UTF-8 byte range. This module imitates the prompt
 * planner of the Go runtime (`runtime/modelrepo/llama/prompt.go`), by default
 * the one in v0.36.0.
 *
 * @example Build one turn and send it
 * ```ts
 * import { buildContext } from "@contenox/modeldconn";
 *
 * const ctx = await buildContext([
 *   { role: "system", content: "You are terse." },
 *   { role: "user", content: "Hi" },
 * ]);
 * console.assert(ctx.prefix.text === "You are terse." && ctx.suffix.text === "Hi");
 * console.assert(ctx.manifest.stableBytes === 14 && ctx.manifest.totalBytes === 16);
 * // session.ensurePrefix(ctx.prefix); session.prefillSuffix(ctx.suffix); ...
 * ```
 *
 * @module
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  ContextManifest,
  ManifestSegment,
  ManifestSegmentSchema,
  PrefixInput,
  SuffixInput,
} from "../gen/contenox/transport/v1/compute_pb.ts";
import { concatBytes } from "./bytes.ts";
import { InvalidArgumentError } from "./errors.ts";
import type { WireInit } from "./wire_init.ts";

// ---------------------------------------------------------------------------
// Public types

/** The roles a chat message may have; the daemon's templates know no others. */
export type ChatRole = "system" | "user" | "assistant" | "tool";

/** One tool call an assistant turn made (OpenAI style). */
export interface ChatToolCall {
  /** The call id a later `tool` message answers with its `toolCallId`. */
  id?: string;
  /** The function name. */
  name: string;
  /**
   * The arguments: a JSON string (sent as given; `""` becomes `"{}"`) or an
   * object (encoded as compact JSON with sorted keys, as Go encodes a map).
   */
  arguments: string | Record<string, unknown>;
}

/** One chat message. */
export interface ChatMessage {
  /** Who wrote it. */
  role: ChatRole;
  /** The raw text, without any template markup. */
  content: string;
  /** The tool calls of an `assistant` turn. */
  toolCalls?: readonly ChatToolCall[];
  /** The call a `tool` turn answers (required on `tool` turns). */
  toolCallId?: string;
}

/** A function the model may call, rendered into `PrefixInput.tools`. */
export interface ToolDefinition {
  /** The function name. */
  name: string;
  /** What the function does. */
  description?: string;
  /**
   * The JSON Schema of the arguments. Absent means "any object"; a schema
   * without a `type` gets `"type": "object"`, as the v0.36.0 runtime does.
   */
  parameters?: Record<string, unknown>;
}

/**
 * The manifest identity fields. The daemon compares them for equality only and
 * wipes the KV cache when any differs from the resident manifest, so keep them
 * the same across turns. Unset fields take the Go runtime's defaults for a
 * llama model with a default config (see {@linkcode defaultManifestIdentity}).
 */
export interface ManifestIdentity {
  /** `backend`: the runtime's backend name (Go: `"llamacpp"`). */
  backend?: string;
  /** `prompt_format`: the profile's prompt format (Go default `"chatml"`). */
  promptFormat?: string;
  /** `prompt_template_digest`; defaults to the Go runtime's digest for the format. */
  promptTemplateDigest?: string;
  /** `runtime_digest`: a digest of the load config; defaults to Go's for a default config. */
  runtimeDigest?: string;
  /** `add_bos`: `!Config.DisableBOS` (default true). */
  addBos?: boolean;
  /** `profile_id` (default none). */
  profileId?: string;
  /** `model_digest` (default none). */
  modelDigest?: string;
  /** `backend_version` (default: what the chosen planner's runtime sends). */
  backendVersion?: string;
}

/**
 * Which Go runtime prompt planner to imitate.
 *
 * - `"v0.36.0"` (default): every system message, wherever it is, is trimmed and
 *   merged into one leading system message (blank-line separated, empty ones
 *   dropped). Without tool definitions, tool traffic is flattened to text and
 *   consecutive same-role turns are merged, so templates that insist on
 *   alternating user/assistant turns accept the conversation. Segments carry a
 *   `cache_class`.
 * - `"v0.32.3"`: one segment per message, exactly as given; the leading system
 *   messages are stable, everything from the first other message is volatile.
 */
export type PromptPlanner = "v0.36.0" | "v0.32.3";

/** Options for {@linkcode buildContext}. */
export interface BuildContextOptions {
  /** Functions the model may call; rendered into `PrefixInput.tools`. */
  tools?: readonly ToolDefinition[];
  /** Manifest identity overrides; keep them identical across turns. */
  identity?: ManifestIdentity;
  /** The Go prompt planner to imitate (default `"v0.36.0"`). */
  planner?: PromptPlanner;
}

/** The inputs for one turn, built by {@linkcode buildContext}. */
export interface BuiltContext {
  /** The `EnsurePrefix` input: stable text, manifest and tools JSON. */
  prefix: PrefixInput;
  /** The `PrefillSuffix` input: volatile text and the same manifest. */
  suffix: SuffixInput;
  /** The manifest both inputs carry (the same object). */
  manifest: ContextManifest;
  /** The stable text (the system prompt). */
  stableText: string;
  /** The volatile text (every turn after the system prompt, concatenated). */
  volatileText: string;
  /**
   * The messages after the planner's normalisation, one per manifest segment
   * and in the same order: what the daemon's template will see.
   */
  messages: ChatMessage[];
}

/** The manifest initialiser type, for callers that build one by hand. */
export type ContextManifestInit = WireInit<ContextManifest>;

// ---------------------------------------------------------------------------
// Identity defaults (runtime/modelrepo/llama/{manifest,prompt}.go)

const IDENTITY_DEFAULTS: Record<PromptPlanner, {
  backendVersion: string;
  runtimeDigest: string;
  templateDigests: Record<string, string>;
}> = {
  "v0.36.0": {
    // manifest.go:90 backendVersion() at v0.36.0.
    backendVersion: "llamacpp-direct",
    // sha256(`{"num_ctx":0,"num_batch":512,"num_threads":0,"num_gpu_layers":0,"flash_attention":false}`):
    // runtimeDigest(normalizeConfig(Config{}), nil), manifest.go:22-59.
    runtimeDigest: "449082c3ac584cf2d80ba44497cc35e1fdeba0f8f298bc0eb376f0eb9a539960",
    // prompt.go promptTemplateDigest: sha256("llama-runtime-prompt-metadata:<format>:v1").
    templateDigests: {
      chatml: "09c5f39bd7cf40d7e9e3ce016c022173a8fde3d5660026bbec37f04d32fedb43",
      llama3: "51d1bd196f9bff908568e53939bab9f7ea16d65c0d87318a84de3d5af40f0751",
    },
  },
  "v0.32.3": {
    // backendVersion() reads an ollama dependency from the build info: none, so "".
    backendVersion: "",
    // normalizeConfig at v0.32.3 turns NumCtx 0 into 8192 before hashing.
    runtimeDigest: "f3212f5cd8a5928661fd4e641830b88cf463b3e3252c900794c045ea8647bff0",
    templateDigests: {
      // sha256(`chatml:v1:<|role|>\ncontent\n:<|assistant|>\n`) with literal backslash-n.
      chatml: "ce35b2339554bd5a79e111e3111e2d14f61d47e3fbf625efcaef03fd8b8fad74",
      llama3: "3e4a5bae59429b8aab88fc0a2fd1cb437711da90a75b0e9dab1de52c596c84f3",
    },
  },
};

/**
 * The identity {@linkcode buildContext} uses for fields left unset: what the Go
 * runtime sends for a llama model with a default config.
 *
 * @param planner The planner whose runtime version to copy (default `"v0.36.0"`).
 * @param promptFormat The prompt format (default `"chatml"`; `"llama3"` is the
 *   only other one with a known template digest).
 * @returns Every identity field, filled.
 *
 * @example
 * ```ts
 * import { defaultManifestIdentity } from "./context.ts";
 * const id = defaultManifestIdentity();
 * console.assert(id.backend === "llamacpp" && id.promptFormat === "chatml" && id.addBos);
 * ```
 */
export function defaultManifestIdentity(
  planner: PromptPlanner = "v0.36.0",
  promptFormat = "chatml",
): Required<ManifestIdentity> {
  const d = IDENTITY_DEFAULTS[planner];
  return {
    backend: "llamacpp",
    promptFormat,
    promptTemplateDigest: d.templateDigests[promptFormat] ?? "",
    runtimeDigest: d.runtimeDigest,
    addBos: true,
    profileId: "",
    modelDigest: "",
    backendVersion: d.backendVersion,
  };
}

// ---------------------------------------------------------------------------
// Building

const ROLES: ReadonlySet<string> = new Set(["system", "user", "assistant", "tool"]);

/** A message after validation, with its tool calls already encoded. */
interface PlannedMessage {
  role: ChatRole;
  content: string;
  toolCallsJson: string;
  toolCallId: string;
  toolCalls?: readonly ChatToolCall[];
}

/**
 * Builds the `EnsurePrefix` and `PrefillSuffix` inputs for a conversation.
 *
 * The stable prefix is the leading system message(s); everything from the
 * first other message on is volatile. Both texts are plain concatenations of
 * the message contents (no separators, no role markup); the manifest has one
 * segment per (normalised) message with its role, UTF-8 byte range over
 * stable+volatile and SHA-256, plus the tool calls of assistant turns and the
 * call id of tool turns. Call it again with the grown conversation for the
 * next turn: with the same system prompt and identity, the stable hash and
 * identity stay equal and the daemon reuses the resident prefix.
 *
 * @param messages The conversation, oldest first.
 * @param options Tools, identity overrides and the planner to imitate.
 * @returns The two inputs, the shared manifest and the texts.
 * @throws {InvalidArgumentError} A message or tool definition the daemon cannot
 *   take (unknown role, non-string content, a tool turn without `toolCallId`,
 *   text with a lone UTF-16 surrogate, ...); the message says what to fix.
 *
 * @example With tools and a tool round trip
 * ```ts
 * import { buildContext } from "@contenox/modeldconn";
 *
 * const ctx = await buildContext([
 *   { role: "system", content: "Use tools." },
 *   { role: "user", content: "Weather in Paris?" },
 *   { role: "assistant", content: "", toolCalls: [{ id: "c1", name: "weather", arguments: { city: "Paris" } }] },
 *   { role: "tool", content: "18°C", toolCallId: "c1" },
 * ], { tools: [{ name: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } }] });
 * console.assert(ctx.manifest.segments[2].toolCallsJson.includes('"name":"weather"'));
 * console.assert(ctx.manifest.segments[3].toolCallId === "c1");
 * ```
 */
export async function buildContext(
  messages: readonly ChatMessage[],
  options: BuildContextOptions = {},
): Promise<BuiltContext> {
  const planner = options.planner ?? "v0.36.0";
  if (planner !== "v0.36.0" && planner !== "v0.32.3") {
    throw new InvalidArgumentError(
      `Cannot build context: unknown planner ${
        JSON.stringify(planner)
      } (use "v0.36.0" or "v0.32.3")`,
    );
  }
  if (!Array.isArray(messages)) {
    throw new InvalidArgumentError("Cannot build context: messages must be an array");
  }
  const toolsJson = serializeTools(options.tools ?? [], planner);
  const identity = resolveIdentity(options.identity ?? {}, planner);

  let planned = messages.map((m, i) => validateMessage(m, i));
  if (planner === "v0.36.0") planned = normalizeForTemplate(planned, toolsJson);

  // prompt.go:51-94 (both refs): stable = system messages before the first other one.
  const enc = new TextEncoder();
  const stableParts: Uint8Array[] = [];
  const volatileParts: Uint8Array[] = [];
  let stableLen = 0;
  let volatileLen = 0;
  let seenVolatile = false;
  const raw: { m: PlannedMessage; stable: boolean; bytes: Uint8Array }[] = [];
  for (const m of planned) {
    const stable = m.role === "system" && !seenVolatile;
    if (!stable) seenVolatile = true;
    const bytes = enc.encode(m.content);
    if (stable) {
      stableParts.push(bytes);
      stableLen += bytes.length;
    } else {
      volatileParts.push(bytes);
      volatileLen += bytes.length;
    }
    raw.push({ m, stable, bytes });
  }

  let stableCursor = 0;
  let volatileCursor = stableLen;
  const segments: ManifestSegment[] = [];
  for (const { m, stable, bytes } of raw) {
    const start = stable ? stableCursor : volatileCursor;
    const end = start + bytes.length;
    if (stable) stableCursor = end;
    else volatileCursor = end;
    segments.push({
      $typeName: "contenox.transport.v1.ManifestSegment",
      kind: m.role,
      stable,
      // contextasm/manifest.go:156-158,169-183 (v0.36.0 only).
      cacheClass: planner === "v0.36.0" ? (m.role === "system" ? "task_pinned" : "volatile") : "",
      invalidation: "",
      byteStart: start,
      byteEnd: end,
      byteHash: await sha256Hex(bytes),
      tokenStart: 0,
      tokenEnd: 0,
      tokenHash: "",
      toolCallsJson: m.toolCallsJson,
      toolCallId: m.toolCallId,
    });
  }

  // The messages are written out as protobuf-es's create() makes them (proto3:
  // $typeName, then every field in order, zero when unset, an unset message
  // field absent), so that building a context loads no generated code.
  const stableBytes = concatBytes(stableParts, stableLen);
  const manifest: ContextManifest = {
    $typeName: "contenox.transport.v1.ContextManifest",
    profileId: identity.profileId,
    backend: identity.backend,
    backendVersion: identity.backendVersion,
    modelDigest: identity.modelDigest,
    promptFormat: identity.promptFormat,
    promptTemplateDigest: identity.promptTemplateDigest,
    runtimeDigest: identity.runtimeDigest,
    addBos: identity.addBos,
    stableBytes: stableLen,
    totalBytes: stableLen + volatileLen,
    stableByteHash: await sha256Hex(stableBytes),
    stableTokenHash: "",
    volatileTokenHash: "",
    segments,
  };
  const stableText = planned.filter((_, i) => raw[i].stable).map((m) => m.content).join("");
  const volatileText = planned.filter((_, i) => !raw[i].stable).map((m) => m.content).join("");
  return {
    prefix: {
      $typeName: "contenox.transport.v1.PrefixInput",
      text: stableText,
      manifest,
      tools: toolsJson,
    },
    suffix: {
      $typeName: "contenox.transport.v1.SuffixInput",
      text: volatileText,
      manifest,
      reasoningEffort: "",
    },
    manifest,
    stableText,
    volatileText,
    messages: planned.map(toChatMessage),
  };
}

function toChatMessage(m: PlannedMessage): ChatMessage {
  const out: ChatMessage = { role: m.role, content: m.content };
  if (m.toolCalls && m.toolCalls.length > 0) out.toolCalls = m.toolCalls;
  if (m.toolCallId) out.toolCallId = m.toolCallId;
  return out;
}

function resolveIdentity(
  id: ManifestIdentity,
  planner: PromptPlanner,
): Required<ManifestIdentity> {
  const defaults = defaultManifestIdentity(planner, id.promptFormat ?? "chatml");
  const out = { ...defaults };
  for (const key of Object.keys(defaults) as (keyof ManifestIdentity)[]) {
    const v = id[key];
    if (v === undefined) continue;
    if (key === "addBos") {
      if (typeof v !== "boolean") {
        throw new InvalidArgumentError("Cannot build context: identity.addBos must be a boolean");
      }
    } else if (typeof v !== "string") {
      throw new InvalidArgumentError(`Cannot build context: identity.${key} must be a string`);
    } else {
      checkText(v, `identity.${key}`);
    }
    (out as Record<string, unknown>)[key] = v;
  }
  if (out.promptTemplateDigest === "") {
    throw new InvalidArgumentError(
      `Cannot build context: no default template digest for prompt format ` +
        `${
          JSON.stringify(out.promptFormat)
        } (pass identity.promptTemplateDigest, or use "chatml" or "llama3")`,
    );
  }
  return out;
}

function validateMessage(m: ChatMessage, i: number): PlannedMessage {
  const where = `messages[${i}]`;
  if (typeof m !== "object" || m === null) {
    throw new InvalidArgumentError(`Cannot build context: ${where} must be an object`);
  }
  if (typeof m.role !== "string" || !ROLES.has(m.role)) {
    throw new InvalidArgumentError(
      `Cannot build context: ${where}.role is ${JSON.stringify(m.role)} ` +
        `(use "system", "user", "assistant" or "tool")`,
    );
  }
  if (typeof m.content !== "string") {
    throw new InvalidArgumentError(
      `Cannot build context: ${where}.content must be a string, got ${typeName(m.content)} ` +
        `(use "" for an empty turn)`,
    );
  }
  checkText(m.content, `${where}.content`);

  let toolCallsJson = "";
  if (m.toolCalls !== undefined) {
    if (!Array.isArray(m.toolCalls)) {
      throw new InvalidArgumentError(`Cannot build context: ${where}.toolCalls must be an array`);
    }
    if (m.toolCalls.length > 0 && m.role !== "assistant") {
      throw new InvalidArgumentError(
        `Cannot build context: ${where} has toolCalls but role ${m.role} (only assistant turns call tools)`,
      );
    }
    if (m.toolCalls.length > 0) toolCallsJson = encodeToolCalls(m.toolCalls, where);
  }

  let toolCallId = "";
  if (m.role === "tool") {
    if (typeof m.toolCallId !== "string" || m.toolCallId === "") {
      throw new InvalidArgumentError(
        `Cannot build context: ${where} is a tool result without toolCallId ` +
          `(set it to the id of the assistant tool call it answers)`,
      );
    }
    checkText(m.toolCallId, `${where}.toolCallId`);
    toolCallId = m.toolCallId;
  } else if (m.toolCallId !== undefined && m.toolCallId !== "") {
    throw new InvalidArgumentError(
      `Cannot build context: ${where} has toolCallId but role ${m.role} (only tool turns answer a call)`,
    );
  }
  return { role: m.role, content: m.content, toolCallsJson, toolCallId, toolCalls: m.toolCalls };
}

/** Go's `json.Marshal([]modelrepo.ToolCall)`: `[{"id"?,"type","function":{"name","arguments"}}]`. */
function encodeToolCalls(calls: readonly ChatToolCall[], where: string): string {
  const parts = calls.map((c, j) => {
    const at = `${where}.toolCalls[${j}]`;
    if (typeof c !== "object" || c === null) {
      throw new InvalidArgumentError(`Cannot build context: ${at} must be an object`);
    }
    if (typeof c.name !== "string" || c.name === "") {
      throw new InvalidArgumentError(`Cannot build context: ${at}.name must be a non-empty string`);
    }
    checkText(c.name, `${at}.name`);
    if (c.id !== undefined && typeof c.id !== "string") {
      throw new InvalidArgumentError(`Cannot build context: ${at}.id must be a string`);
    }
    if (c.id) checkText(c.id, `${at}.id`);
    let args: string;
    if (typeof c.arguments === "string") {
      checkText(c.arguments, `${at}.arguments`);
      // toolcalls.go ParseHermes: an empty or null argument list is "{}".
      const t = goTrimSpace(c.arguments);
      args = t === "" || t === "null" ? "{}" : c.arguments;
    } else if (
      typeof c.arguments === "object" && c.arguments !== null && !Array.isArray(c.arguments)
    ) {
      args = goJson(toPlainJson(c.arguments, `${at}.arguments`), `${at}.arguments`);
    } else {
      throw new InvalidArgumentError(
        `Cannot build context: ${at}.arguments must be a JSON string or an object, got ${
          typeName(c.arguments)
        }`,
      );
    }
    const id = c.id ? `"id":${goQuote(c.id)},` : "";
    return `{${id}"type":"function","function":{"name":${goQuote(c.name)},"arguments":${
      goQuote(args)
    }}}`;
  });
  return `[${parts.join(",")}]`;
}

/**
 * `PrefixInput.Tools`. v0.36.0 (tools.go serializeToolDefs): `description`
 * always present, `parameters` defaulted to an open object schema and given a
 * root `type`. v0.32.3 (toolcalls.go SerializeToolDefs): both omitempty.
 */
function serializeTools(tools: readonly ToolDefinition[], planner: PromptPlanner): string {
  if (!Array.isArray(tools)) {
    throw new InvalidArgumentError("Cannot build context: options.tools must be an array");
  }
  if (tools.length === 0) return "";
  const parts = tools.map((t, i) => {
    const at = `tools[${i}]`;
    if (typeof t !== "object" || t === null) {
      throw new InvalidArgumentError(`Cannot build context: ${at} must be an object`);
    }
    if (typeof t.name !== "string" || t.name === "") {
      throw new InvalidArgumentError(`Cannot build context: ${at}.name must be a non-empty string`);
    }
    checkText(t.name, `${at}.name`);
    if (t.description !== undefined && typeof t.description !== "string") {
      throw new InvalidArgumentError(`Cannot build context: ${at}.description must be a string`);
    }
    const description = t.description ?? "";
    checkText(description, `${at}.description`);
    let params: unknown = undefined;
    if (t.parameters !== undefined && t.parameters !== null) {
      if (typeof t.parameters !== "object" || Array.isArray(t.parameters)) {
        throw new InvalidArgumentError(
          `Cannot build context: ${at}.parameters must be a JSON Schema object`,
        );
      }
      params = toPlainJson(t.parameters, `${at}.parameters`);
    }
    let fn = `"name":${goQuote(t.name)}`;
    if (planner === "v0.36.0") {
      const p = (params ?? { type: "object", additionalProperties: true }) as Record<
        string,
        unknown
      >;
      if (!("type" in p)) p.type = "object";
      fn += `,"description":${goQuote(description)},"parameters":${goJson(p, at)}`;
    } else {
      if (description !== "") fn += `,"description":${goQuote(description)}`;
      if (params !== undefined) fn += `,"parameters":${goJson(params, at)}`;
    }
    return `{"type":"function","function":{${fn}}}`;
  });
  return `[${parts.join(",")}]`;
}

/** prompt.go:117-225 at v0.36.0 (normalizeMessagesForTemplate and helpers). */
function normalizeForTemplate(messages: PlannedMessage[], toolsJson: string): PlannedMessage[] {
  const textOnly = goTrimSpace(toolsJson) === "";
  const systemParts: string[] = [];
  let turns: PlannedMessage[] = [];
  for (const m of messages) {
    switch (m.role) {
      case "system": {
        const c = goTrimSpace(m.content);
        if (c !== "") systemParts.push(c);
        break;
      }
      case "tool":
        turns.push(
          textOnly
            ? { role: "user", content: toolResultText(m), toolCallsJson: "", toolCallId: "" }
            : m,
        );
        break;
      case "assistant":
        if (textOnly && m.toolCallsJson !== "") {
          turns.push({
            ...m,
            content: assistantToolCallText(m),
            toolCallsJson: "",
            toolCalls: undefined,
          });
        } else {
          turns.push(m);
        }
        break;
      default:
        turns.push(m);
    }
  }
  if (textOnly) turns = coalesceAlternatingTextTurns(turns);
  const out: PlannedMessage[] = [];
  if (systemParts.length > 0) {
    out.push({
      role: "system",
      content: systemParts.join("\n\n"),
      toolCallsJson: "",
      toolCallId: "",
    });
  }
  return out.concat(turns);
}

function coalesceAlternatingTextTurns(messages: PlannedMessage[]): PlannedMessage[] {
  const out: PlannedMessage[] = [];
  for (const orig of messages) {
    const m: PlannedMessage = {
      role: orig.role,
      content: orig.content,
      toolCallsJson: "",
      toolCallId: "",
    };
    if (m.role !== "user" && m.role !== "assistant") {
      m.content = roleLabel(m.role) + ":\n" + m.content;
      m.role = "user";
    }
    if (goTrimSpace(m.content) === "") continue;
    if (out.length === 0 && m.role !== "user") {
      m.content = roleLabel(m.role) + ":\n" + m.content;
      m.role = "user";
    }
    const last = out[out.length - 1];
    if (last && last.role === m.role) {
      last.content = joinTurnText(last.content, m.content);
      continue;
    }
    out.push(m);
  }
  return out;
}

function assistantToolCallText(m: PlannedMessage): string {
  const content = goTrimSpace(m.content);
  return (content !== "" ? content + "\n\n" : "") + "Assistant requested tool calls:\n" +
    m.toolCallsJson;
}

function toolResultText(m: PlannedMessage): string {
  let label = "Tool result";
  const id = goTrimSpace(m.toolCallId);
  if (id !== "") label += " for " + id;
  const content = goTrimSpace(m.content);
  return content !== "" ? label + ":\n" + content : label + ".";
}

function roleLabel(role: string): string {
  if (goTrimSpace(role) === "") return "Message";
  return role[0].toUpperCase() + role.slice(1) + " message";
}

function joinTurnText(a: string, b: string): string {
  if (goTrimSpace(a) === "") return b;
  if (goTrimSpace(b) === "") return a;
  return a + "\n\n" + b;
}

// ---------------------------------------------------------------------------
// Bytes and hashes

/**
 * The number of UTF-8 bytes `s` encodes to (what Go's `len(s)` returns and
 * what manifest offsets count), without encoding it.
 *
 * @param s A well-formed string (a lone surrogate counts as U+FFFD: 3 bytes).
 * @returns The UTF-8 byte length.
 *
 * @example
 * ```ts
 * import { utf8ByteLength } from "./context.ts";
 * console.assert(utf8ByteLength("é日😀") === 2 + 3 + 4);
 * ```
 */
export function utf8ByteLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

function checkText(s: string, where: string): void {
  if (!s.isWellFormed()) {
    const i = [...s].findIndex((ch) => ch.length === 1 && ch >= "\ud800" && ch <= "\udfff");
    throw new InvalidArgumentError(
      `Cannot build context: ${where} contains a lone UTF-16 surrogate` +
        `${i >= 0 ? ` at code point ${i}` : ""}, which has no UTF-8 encoding ` +
        "(fix the string, e.g. with s.toWellFormed())",
    );
  }
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

// ---------------------------------------------------------------------------
// Go encoding/json and strings helpers

// unicode.IsSpace: \t \n \v \f \r space U+0085 U+00A0 and category Z (not U+FEFF).
const GO_SPACE = "[\\t\\n\\v\\f\\r \\u0085\\p{Z}]";
const GO_TRIM = new RegExp(`^${GO_SPACE}+|${GO_SPACE}+$`, "gu");

/** Go's `strings.TrimSpace`, which differs from `String.prototype.trim`. */
function goTrimSpace(s: string): string {
  return s.replace(GO_TRIM, "");
}

/** Go's `json.Marshal` of a string: HTML-safe, `\b` `\f` short forms, U+2028/2029 escaped. */
function goQuote(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c === 0x22) esc = '\\"';
    else if (c === 0x5c) esc = "\\\\";
    else if (c === 0x0a) esc = "\\n";
    else if (c === 0x0d) esc = "\\r";
    else if (c === 0x09) esc = "\\t";
    else if (c === 0x08) esc = "\\b";
    else if (c === 0x0c) esc = "\\f";
    else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) {
      esc = "\\u" + c.toString(16).padStart(4, "0");
    } else if (c >= 0xd800 && c <= 0xdfff) {
      // A lone surrogate is invalid UTF-8 to Go: it writes U+FFFD.
      const pair = c <= 0xdbff && i + 1 < s.length &&
        (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      if (pair) {
        i++;
        continue;
      }
      esc = "\\ufffd";
    }
    if (esc !== undefined) {
      out += s.slice(start, i) + esc;
      start = i + 1;
    }
  }
  return out + s.slice(start) + '"';
}

/** Normalises a caller's value to plain JSON data (drops undefined, runs toJSON). */
function toPlainJson(v: unknown, where: string): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(v);
  } catch (err) {
    throw new InvalidArgumentError(
      `Cannot build context: ${where} is not JSON-encodable (${(err as Error).message})`,
      { cause: err },
    );
  }
  if (text === undefined) {
    throw new InvalidArgumentError(`Cannot build context: ${where} is not JSON-encodable`);
  }
  return JSON.parse(text);
}

/** Go's compact `json.Marshal` of decoded JSON data (`map[string]any` keys sorted). */
function goJson(v: unknown, where: string): string {
  if (v === null) return "null";
  switch (typeof v) {
    case "string":
      checkText(v, where);
      return goQuote(v);
    case "boolean":
      return v ? "true" : "false";
    case "number":
      // JSON.stringify and Go's float64 encoder agree (exponent below 1e-6 and from 1e21).
      return JSON.stringify(v);
    case "object": {
      if (Array.isArray(v)) return `[${v.map((x) => goJson(x, where)).join(",")}]`;
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort(compareUtf8);
      return `{${keys.map((k) => `${goQuote(k)}:${goJson(o[k], where)}`).join(",")}}`;
    }
    default:
      throw new InvalidArgumentError(`Cannot build context: ${where} holds a ${typeof v}`);
  }
}

/** Go sorts map keys by bytes; for well-formed strings that is code point order. */
function compareUtf8(a: string, b: string): number {
  const ca = [...a];
  const cb = [...b];
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const d = ca[i].codePointAt(0)! - cb[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return ca.length - cb.length;
}

// ---------------------------------------------------------------------------
// Manifest digest

/**
 * The daemon's `ManifestDigest` of a manifest: lowercase hex SHA-256 of Go's
 * compact `json.Marshal(manifest)` (field order of `contextasm.ContextManifest`,
 * its `omitempty` rules, HTML-safe string escaping), or `""` for a zero
 * manifest. Compare it with `PrefixStatus.manifestDigest` to check the daemon
 * saw the manifest you sent.
 *
 * The daemon fills `stable_token_hash` and token ranges before hashing, so the
 * digest it reports matches the one of the manifest you sent only on a
 * backend that leaves them empty (the in-memory reference service does).
 *
 * @param manifest The manifest (a message or an initialiser).
 * @returns The digest, or `""` when the manifest is zero.
 *
 * @example
 * ```ts
 * import { buildContext, manifestDigest } from "@contenox/modeldconn";
 * const { manifest } = await buildContext([{ role: "user", content: "Hi" }]);
 * console.assert((await manifestDigest(manifest)).length === 64);
 * console.assert(await manifestDigest({}) === "");
 * ```
 */
export async function manifestDigest(manifest: ContextManifestInit): Promise<string> {
  const bytes = manifestDigestInput(manifest);
  return bytes === undefined ? "" : await sha256Hex(bytes);
}

/**
 * What {@linkcode manifestDigest} hashes: Go's compact JSON of the manifest
 * as UTF-8, or `undefined` for a zero manifest (whose digest is `""`). For a
 * caller with its own synchronous SHA-256 (the daemon).
 *
 * @param manifest The manifest (a message or an initialiser).
 * @returns The bytes to hash, or `undefined`.
 *
 * @example
 * ```ts
 * import { manifestDigestInput } from "./context.ts";
 * console.assert(manifestDigestInput({}) === undefined);
 * console.assert(manifestDigestInput({ backend: "llama" })![0] === 0x7b); // "{"
 * ```
 */
export function manifestDigestInput(manifest: ContextManifestInit): Uint8Array | undefined {
  if (
    !manifest.backend && !manifest.profileId && !manifest.modelDigest && !manifest.promptFormat &&
    !manifest.promptTemplateDigest && !manifest.runtimeDigest && !manifest.stableByteHash
  ) {
    return undefined; // contextasm/manifest.go:189-197,445-451
  }
  return new TextEncoder().encode(manifestGoJson(manifest));
}

/**
 * Go's compact `json.Marshal` of a manifest, byte for byte.
 *
 * @param manifest The manifest (a message or an initialiser).
 * @returns The JSON text the daemon hashes for its `ManifestDigest`.
 *
 * @example
 * ```ts
 * import { manifestGoJson } from "./context.ts";
 * console.assert(manifestGoJson({ backend: "x<y" }).startsWith('{"backend":"x\\u003cy"'));
 * ```
 */
export function manifestGoJson(manifest: ContextManifestInit): string {
  const m = manifest;
  const f: string[] = [];
  const str = (key: string, v: string | undefined, omitEmpty: boolean) => {
    if (!omitEmpty || v) f.push(`"${key}":${goQuote(v ?? "")}`);
  };
  const int = (key: string, v: number | undefined, omitEmpty: boolean) => {
    if (!omitEmpty || v) f.push(`"${key}":${goInt(v, key)}`);
  };
  str("profile_id", m.profileId, true);
  str("backend", m.backend, false);
  str("backend_version", m.backendVersion, true);
  str("model_digest", m.modelDigest, true);
  str("prompt_format", m.promptFormat, false);
  str("prompt_template_digest", m.promptTemplateDigest, false);
  str("runtime_digest", m.runtimeDigest, false);
  f.push(`"add_bos":${m.addBos ? "true" : "false"}`);
  int("stable_bytes", m.stableBytes, false);
  int("total_bytes", m.totalBytes, false);
  str("stable_byte_hash", m.stableByteHash, false);
  str("stable_token_hash", m.stableTokenHash, true);
  str("volatile_token_hash", m.volatileTokenHash, true);
  if (m.segments && m.segments.length > 0) {
    f.push(`"segments":[${m.segments.map(segmentGoJson).join(",")}]`);
  }
  return `{${f.join(",")}}`;
}

function segmentGoJson(s: MessageInitShape<typeof ManifestSegmentSchema>): string {
  const f: string[] = [];
  const str = (key: string, v: string | undefined, omitEmpty: boolean) => {
    if (!omitEmpty || v) f.push(`"${key}":${goQuote(v ?? "")}`);
  };
  const int = (key: string, v: number | undefined, omitEmpty: boolean) => {
    if (!omitEmpty || v) f.push(`"${key}":${goInt(v, key)}`);
  };
  str("kind", s.kind, false);
  f.push(`"stable":${s.stable ? "true" : "false"}`);
  str("cache_class", s.cacheClass, true);
  str("invalidation", s.invalidation, true);
  int("byte_start", s.byteStart, false);
  int("byte_end", s.byteEnd, false);
  str("byte_hash", s.byteHash, false);
  int("token_start", s.tokenStart, true);
  int("token_end", s.tokenEnd, true);
  str("token_hash", s.tokenHash, true);
  str("tool_calls_json", s.toolCallsJson, true);
  str("tool_call_id", s.toolCallId, true);
  return `{${f.join(",")}}`;
}

function goInt(v: number | undefined, key: string): string {
  const n = v ?? 0;
  if (!Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`Cannot encode manifest: ${key} must be an integer, got ${n}`);
  }
  return String(n);
}
