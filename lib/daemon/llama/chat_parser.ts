/**
 * modeld's llama parser protocols for the common chat formats: with
 * `llama:common_chat_reasoning_parser` a `<think>…</think>` block streams as
 * `thinking` deltas; with `llama:common_chat_tool_parser` Hermes / Qwen
 * `<tool_call>{"name", "arguments"}</tool_call>` blocks leave the text and
 * arrive as tool calls in the final chunk. Deltas follow modeld: the new
 * content when it extends what was sent, else the whole content again.
 *
 * @example
 * ```ts ignore
 * import { ChatOutputParser } from "./chat_parser.ts";
 * const p = new ChatOutputParser({ tools: true, reasoning: true, startsInThinking: false });
 * p.push("<think>hm</think>Hi");
 * const last = p.finish();
 * ```
 *
 * @module
 */

import { type ToolCallOut, toolCallsIn } from "./structured.ts";

/** The two parser protocols. */
export const REASONING_PARSER = "llama:common_chat_reasoning_parser";
/** See {@linkcode REASONING_PARSER}. */
export const TOOL_PARSER = "llama:common_chat_tool_parser";

/** Options of a {@linkcode ChatOutputParser}. */
export interface ChatParserOptions {
  /** Parse tool calls. */
  tools: boolean;
  /** Parse a reasoning block. */
  reasoning: boolean;
  /** The prompt already opened the reasoning block (it ended with `<think>`). */
  startsInThinking: boolean;
}

/** What one step adds. */
export interface ParsedDelta {
  /** New answer text. */
  text: string;
  /** New reasoning text. */
  thinking: string;
  /** Tool calls (final step only). */
  toolCalls: ToolCallOut[];
}

const THINK_OPEN = "<think>";
const THINK_CLOSE = "</think>";
const CALL_OPEN = "<tool_call>";

/** The length of the longest suffix of `text` that is a proper prefix of `tag`. */
function partialTag(text: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) {
    if (text.endsWith(tag.slice(0, n))) return n;
  }
  return 0;
}

function delta(prev: string, next: string): string {
  return next.startsWith(prev) ? next.slice(prev.length) : next;
}

/**
 * A streaming parser of one reply.
 *
 * @example
 * ```ts ignore
 * const p = new ChatOutputParser({ tools: true, reasoning: false, startsInThinking: false });
 * ```
 */
export class ChatOutputParser {
  readonly #options: ChatParserOptions;
  #raw = "";
  #sentText = "";
  #sentThinking = "";

  /** @param options Which blocks to parse. */
  constructor(options: ChatParserOptions) {
    this.#options = options;
  }

  #split(partial: boolean): { content: string; reasoning: string; toolCalls: ToolCallOut[] } {
    let rest = this.#raw;
    let reasoning = "";
    if (this.#options.reasoning) {
      const lead = rest.trimStart();
      const opened = this.#options.startsInThinking || lead.startsWith(THINK_OPEN);
      if (opened) {
        const body = lead.startsWith(THINK_OPEN) ? lead.slice(THINK_OPEN.length) : rest;
        const end = body.indexOf(THINK_CLOSE);
        if (end < 0) {
          const hold = partial ? partialTag(body, THINK_CLOSE) : 0;
          return { content: "", reasoning: body.slice(0, body.length - hold), toolCalls: [] };
        }
        reasoning = body.slice(0, end);
        rest = body.slice(end + THINK_CLOSE.length).replace(/^\s+/, "");
      } else if (partial && THINK_OPEN.startsWith(lead) && lead !== "") {
        return { content: "", reasoning: "", toolCalls: [] }; // maybe the start of <think>
      }
    }
    if (!this.#options.tools) return { content: rest, reasoning, toolCalls: [] };
    const open = rest.indexOf(CALL_OPEN);
    if (partial) {
      const visible = open >= 0 ? rest.slice(0, open) : rest;
      const hold = open >= 0 ? 0 : partialTag(visible, CALL_OPEN);
      return { content: visible.slice(0, visible.length - hold), reasoning, toolCalls: [] };
    }
    const { text, toolCalls } = toolCallsIn(rest);
    return { content: text, reasoning, toolCalls };
  }

  #step(partial: boolean): ParsedDelta {
    const { content, reasoning, toolCalls } = this.#split(partial);
    const out = {
      text: delta(this.#sentText, content),
      thinking: delta(this.#sentThinking, reasoning),
      toolCalls,
    };
    this.#sentText = content;
    this.#sentThinking = reasoning;
    return out;
  }

  /**
   * Adds a generated piece.
   *
   * @param piece The text of the next token(s).
   * @returns What can be sent now.
   *
   * @example
   * ```ts ignore
   * const { text, thinking } = parser.push(piece);
   * ```
   */
  push(piece: string): ParsedDelta {
    this.#raw += piece;
    return this.#step(true);
  }

  /**
   * Ends the reply: the rest of the text and the tool calls.
   *
   * @returns The final delta.
   *
   * @example
   * ```ts ignore
   * const { toolCalls } = parser.finish();
   * ```
   */
  finish(): ParsedDelta {
    return this.#step(false);
  }
}
