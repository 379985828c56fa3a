/**
 * Prompt building for the llama engine, as modeld v0.36.0's llama session
 * does it: the manifest's role segments become chat messages, the model's own
 * Jinja chat template (GGUF `tokenizer.chat_template`, ChatML when absent)
 * renders them, and token tapes are compared by their longest common prefix.
 *
 * @example
 * ```ts ignore
 * import { ChatTemplate, stableMessages } from "./prompt.ts";
 * const tpl = new ChatTemplate(source, { bos: "<s>", eos: "</s>", addBos: false });
 * const text = tpl.render(stableMessages(prefix.text, prefix.manifest!), { addGenerationPrompt: false });
 * ```
 *
 * @module
 */

import { Template } from "@huggingface/jinja";
import { createHash } from "node:crypto";
import type { ContextManifest } from "../../../gen/contenox/transport/v1/compute_pb.ts";
import { type ContextManifestInit, manifestDigestInput } from "../../context.ts";
import { ServiceError } from "../sentinels.ts";

/** ChatML, llama.cpp's fallback when a model ships no template. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const ROLES: ReadonlySet<string> = new Set(["system", "user", "assistant", "tool"]);

/**
 * A chat message as the template sees it (OpenAI shape).
 *
 * @example
 * ```ts ignore
 * const m: ChatMessage = { role: "user", content: "Hi" };
 * ```
 */
export interface ChatMessage {
  /** `system`, `user`, `assistant` or `tool`. */
  role: string;
  /** The text. */
  content: string;
  /** Parsed `tool_calls_json` of an assistant turn. */
  tool_calls?: unknown;
  /** The call a tool result answers. */
  tool_call_id?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function messagesFrom(
  text: string,
  manifest: ContextManifest | undefined,
  stable: boolean,
  base: number,
): ChatMessage[] {
  if (!manifest) return [];
  const bytes = encoder.encode(text);
  const out: ChatMessage[] = [];
  for (const seg of manifest.segments) {
    if (seg.stable !== stable || !ROLES.has(seg.kind)) continue;
    const lo = seg.byteStart - base;
    const hi = seg.byteEnd - base;
    if (lo < 0 || lo > hi || hi > bytes.length) continue; // out of range: skipped, as modeld does
    const message: ChatMessage = {
      role: seg.kind,
      content: decoder.decode(bytes.subarray(lo, hi)),
    };
    if (seg.toolCallsJson !== "") {
      try {
        message.tool_calls = JSON.parse(seg.toolCallsJson);
      } catch (err) {
        throw new ServiceError(
          "",
          `llamasession: apply chat template: tool_calls_json is not JSON: ${
            (err as Error).message
          }`,
        );
      }
    }
    if (seg.toolCallId !== "") message.tool_call_id = seg.toolCallId;
    out.push(message);
  }
  return out;
}

/**
 * The stable (system) messages of a prefix: its stable role segments, byte
 * ranges over `prefix.Text`.
 *
 * @param text `PrefixInput.Text`.
 * @param manifest Its manifest.
 * @returns The messages, in manifest order.
 *
 * @example
 * ```ts ignore
 * const msgs = stableMessages("You are terse.", manifest);
 * ```
 */
export function stableMessages(text: string, manifest: ContextManifest | undefined): ChatMessage[] {
  return messagesFrom(text, manifest, true, 0);
}

/**
 * The volatile messages of a suffix: its non-stable role segments, byte
 * ranges over stable + volatile text (so offset by `stable_bytes`).
 *
 * @param text `SuffixInput.Text`.
 * @param manifest Its manifest.
 * @returns The messages, in manifest order.
 *
 * @example
 * ```ts ignore
 * const msgs = volatileMessages("What is 2+2?", manifest);
 * ```
 */
export function volatileMessages(
  text: string,
  manifest: ContextManifest | undefined,
): ChatMessage[] {
  return messagesFrom(text, manifest, false, manifest?.stableBytes ?? 0);
}

/**
 * Options of one {@linkcode ChatTemplate.render}.
 *
 * @example
 * ```ts ignore
 * const o: RenderOptions = { addGenerationPrompt: true, tools: "[]" };
 * ```
 */
export interface RenderOptions {
  /** Append the assistant's turn opener. */
  addGenerationPrompt: boolean;
  /** `PrefixInput.Tools`: a JSON array of OpenAI-style tool definitions ("" = none). */
  tools?: string;
  /** `enable_thinking` (default true, as modeld passes it). */
  enableThinking?: boolean;
  /** `reasoning_effort`, passed only when set. */
  reasoningEffort?: string;
}

/**
 * A model's chat template.
 *
 * @example
 * ```ts ignore
 * const tpl = new ChatTemplate(CHATML_TEMPLATE, { bos: "", eos: "<|im_end|>", addBos: false });
 * tpl.render([{ role: "user", content: "Hi" }], { addGenerationPrompt: true });
 * ```
 */
export class ChatTemplate {
  readonly #template: Template;
  readonly #bos: string;
  readonly #eos: string;
  readonly #addBos: boolean;
  /** The Jinja source. */
  readonly source: string;

  /**
   * @param source The Jinja source ("" = ChatML).
   * @param tokens The model's BOS/EOS text, and whether its tokenizer adds a BOS.
   */
  constructor(source: string, tokens: { bos: string; eos: string; addBos: boolean }) {
    this.source = source || CHATML_TEMPLATE;
    this.#template = new Template(this.source);
    this.#bos = tokens.bos;
    this.#eos = tokens.eos;
    this.#addBos = tokens.addBos;
  }

  /**
   * Renders messages. Like llama.cpp, a leading BOS text is stripped when the
   * tokenizer adds its own.
   *
   * @param messages The conversation.
   * @param options Generation prompt, tools, thinking.
   * @returns The prompt text.
   * @throws {ServiceError} When the template fails (`internal`).
   *
   * @example
   * ```ts ignore
   * const prompt = tpl.render(messages, { addGenerationPrompt: true });
   * ```
   */
  render(messages: ChatMessage[], options: RenderOptions): string {
    const context: Record<string, unknown> = {
      messages,
      add_generation_prompt: options.addGenerationPrompt,
      bos_token: this.#bos,
      eos_token: this.#eos,
      enable_thinking: options.enableThinking ?? true,
    };
    if (options.tools) {
      try {
        context.tools = JSON.parse(options.tools);
      } catch (err) {
        throw new ServiceError(
          "",
          `llamasession: apply chat template: tools is not JSON: ${(err as Error).message}`,
        );
      }
    }
    if (options.reasoningEffort) context.reasoning_effort = options.reasoningEffort;
    let out: string;
    try {
      out = this.#template.render(context);
    } catch (err) {
      throw new ServiceError(
        "",
        `llamasession: apply chat template: ${(err as Error).message}`,
      );
    }
    if (this.#addBos && this.#bos !== "" && out.startsWith(this.#bos)) {
      out = out.slice(this.#bos.length);
    }
    return out;
  }

  /**
   * Whether the template renders tool definitions (a dummy tool changes the output).
   *
   * @returns True when tools reach the prompt.
   *
   * @example
   * ```ts ignore
   * console.log(tpl.supportsTools());
   * ```
   */
  supportsTools(): boolean {
    const msgs = [{ role: "user", content: "x" }];
    const tool = JSON.stringify([{
      type: "function",
      function: { name: "probe_tool", description: "d", parameters: { type: "object" } },
    }]);
    try {
      const plain = this.render(msgs, { addGenerationPrompt: true });
      return this.render(msgs, { addGenerationPrompt: true, tools: tool }) !== plain;
    } catch {
      return false;
    }
  }

  /**
   * Whether the template reacts to `enable_thinking`.
   *
   * @returns True when turning thinking off changes the output.
   *
   * @example
   * ```ts ignore
   * console.log(tpl.supportsThinking());
   * ```
   */
  supportsThinking(): boolean {
    const msgs = [{ role: "user", content: "x" }];
    try {
      return this.render(msgs, { addGenerationPrompt: true, enableThinking: true }) !==
        this.render(msgs, { addGenerationPrompt: true, enableThinking: false });
    } catch {
      return false;
    }
  }
}

/**
 * The length of the longest common prefix of two token tapes.
 *
 * @param a One tape.
 * @param b The other.
 * @returns How many leading tokens are equal.
 *
 * @example
 * ```ts ignore
 * console.assert(commonPrefix([1, 2, 3], [1, 2, 4]) === 2);
 * ```
 */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * modeld's token hash: SHA-256 over each id as 8 little-endian bytes, hex.
 *
 * @param tokens The token ids.
 * @returns Lowercase hex.
 *
 * @example
 * ```ts ignore
 * console.log(hashTokenIds([]) === "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
 * ```
 */
export function hashTokenIds(tokens: readonly number[]): string {
  const buf = new DataView(new ArrayBuffer(tokens.length * 8));
  tokens.forEach((t, i) => buf.setBigUint64(i * 8, BigInt(t), true));
  return createHash("sha256").update(new Uint8Array(buf.buffer)).digest("hex");
}

/**
 * The manifest's `ManifestDigest` (the client's `manifestDigest`), computed
 * synchronously: `crypto.subtle` hops to a worker thread and back, which took
 * 0.3–1.8 ms per call in a fresh daemon (0.15 ms warm) on a path that answers
 * every EnsurePrefix and PrefillSuffix.
 *
 * @param manifest The manifest.
 * @returns Lowercase hex, or `""` for a zero manifest.
 *
 * @example
 * ```ts ignore
 * console.log(manifestDigestNow(create(ContextManifestSchema)) === "");
 * ```
 */
export function manifestDigestNow(manifest: ContextManifestInit): string {
  const bytes = manifestDigestInput(manifest);
  return bytes === undefined ? "" : createHash("sha256").update(bytes).digest("hex");
}
