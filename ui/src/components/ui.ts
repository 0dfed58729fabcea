// Small shared pieces: error and empty states, state badges, key/value lists, two-step buttons,
// notices. Everything user-visible that more than one page uses lives here.
import { html } from 'htm/preact';
import type { ComponentChildren, VNode } from 'preact';
import { useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { fmtValue } from '../format.js';

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.reason;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** An API failure, shown with the API's own reason text. */
export function ErrorBox({ error }: { error: unknown }): VNode | null {
  if (error === undefined || error === null) return null;
  return html`<div class="error" role="alert">${errorText(error)}</div>`;
}

/** What an empty list means and what to do about it. */
export function Empty({ children }: { children: ComponentChildren }): VNode {
  return html`<div class="empty">${children}</div>`;
}

export function Loading(): VNode {
  return html`<div class="loading">Loading…</div>`;
}

const STATE_CLASSES: Record<string, string> = {
  running: 'ok',
  idle: 'ok',
  ok: 'ok',
  flow: 'warn',
  blocking: 'warn',
  blocked: 'bad',
  closing: 'warn',
  down: 'bad',
  crashed: 'bad',
  stopped: 'bad',
  alarm: 'bad',
};

/** A coloured state word (green running, amber flow, red blocked/down). */
export function State({ state }: { state: string | undefined }): VNode {
  if (state === undefined) return html`<span class="muted">–</span>`;
  const s = state;
  return html`<span class=${`state ${STATE_CLASSES[s] ?? 'neutral'}`}>${s}</span>`;
}

export function Tag({ children, kind = 'neutral', title }: { children: ComponentChildren; kind?: string; title?: string }): VNode {
  return html`<span class=${`tag ${kind}`} title=${title}>${children}</span>`;
}

/** Key/value pairs as a definition list; nested values shown as JSON. */
export function KeyValues({ rows }: { rows: [string, unknown][] }): VNode {
  return html`<dl class="kv">${rows.map(
    ([k, v]) => html`<dt>${k}</dt><dd>${typeof v === 'object' && v !== null && !('props' in v) ? html`<code>${fmtValue(v)}</code>` : (v as ComponentChildren)}</dd>`,
  )}</dl>`;
}

/** A table of an AMQP arguments / properties table. */
export function ArgsTable({ args, empty = 'none' }: { args: Record<string, unknown> | undefined; empty?: string }): VNode {
  const entries = Object.entries(args ?? {});
  if (entries.length === 0) return html`<span class="muted">${empty}</span>`;
  return html`<table class="args"><tbody>${entries.map(
    ([k, v]) => html`<tr><th>${k}</th><td><code>${v === '' ? '""' : fmtValue(v)}</code></td></tr>`,
  )}</tbody></table>`;
}

/**
 * A button that asks once more before doing something destructive: first click shows
 * "Yes, …" and "Cancel" in place (no browser dialog).
 */
export function ConfirmButton({ label, confirm, onConfirm, disabled = false }: {
  label: string;
  confirm: string;
  onConfirm: () => Promise<void> | void;
  disabled?: boolean;
}): VNode {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  if (!asking) return html`<button type="button" class="danger" disabled=${disabled} onClick=${() => setAsking(true)}>${label}</button>`;
  return html`<span class="confirm">
    <button type="button" class="danger" disabled=${busy} onClick=${async () => {
      setBusy(true);
      try {
        await onConfirm();
      } finally {
        setBusy(false);
        setAsking(false);
      }
    }}>${confirm}</button>
    <button type="button" onClick=${() => setAsking(false)}>Cancel</button>
  </span>`;
}

/** The outcome of an action: a success line or the API's reason. */
export interface Outcome {
  ok: boolean;
  text: string;
}

export function OutcomeLine({ outcome }: { outcome: Outcome | undefined }): VNode | null {
  if (outcome === undefined) return null;
  return html`<div class=${outcome.ok ? 'notice' : 'error'} role=${outcome.ok ? 'status' : 'alert'}>${outcome.text}</div>`;
}

/** Runs an API action and turns its result or failure into an Outcome. */
export function useAction(): [Outcome | undefined, (work: () => Promise<string>) => Promise<boolean>, boolean] {
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const run = async (work: () => Promise<string>): Promise<boolean> => {
    setBusy(true);
    try {
      const text = await work();
      setOutcome({ ok: true, text });
      return true;
    } catch (err) {
      setOutcome({ ok: false, text: errorText(err) });
      return false;
    } finally {
      setBusy(false);
    }
  };
  return [outcome, run, busy];
}

/**
 * A collapsible section. Its content is only rendered (and so only loads data) while it is open:
 * a closed "Replay" section must not peek at messages behind the user's back.
 */
export function Section({ title, children, open = true, id }: { title: string; children: ComponentChildren; open?: boolean; id?: string }): VNode {
  const [isOpen, setOpen] = useState(open);
  return html`<details class="section" open=${isOpen} id=${id} onToggle=${(e: Event) => setOpen((e.currentTarget as HTMLDetailsElement).open)}>
    <summary>${title}</summary>${isOpen ? html`<div class="section-body">${children}</div>` : null}</details>`;
}
