// Form helpers: a field row, and a form that runs an API call and shows the outcome.
import { html } from 'htm/preact';
import type { ComponentChildren, VNode } from 'preact';
import { OutcomeLine, useAction } from './ui.js';

/** A form whose submit runs `action` (returning a success text) and shows the result below. */
export function ActionForm({ action, submit, children, className = '', onDone }: {
  action: (data: FormData) => Promise<string>;
  submit: string;
  children: ComponentChildren;
  className?: string;
  onDone?: () => void;
}): VNode {
  const [outcome, run, busy] = useAction();
  return html`<form class=${`action-form ${className}`} onSubmit=${async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const ok = await run(() => action(new FormData(form)));
    if (ok) onDone?.();
  }}>
    ${children}
    <div class="form-actions"><button type="submit" class="primary" disabled=${busy}>${submit}</button></div>
    <${OutcomeLine} outcome=${outcome} />
  </form>`;
}

export function Field({ label, children, hint }: { label: string; children: ComponentChildren; hint?: string }): VNode {
  return html`<label class="field"><span class="field-label">${label}</span>${children}${hint === undefined ? null : html`<small class="hint">${hint}</small>`}</label>`;
}

export function VhostSelect({ vhosts, name = 'vhost', value }: { vhosts: string[]; name?: string; value?: string }): VNode {
  return html`<select name=${name}>${vhosts.map((v) => html`<option value=${v} selected=${v === value}>${v}</option>`)}</select>`;
}

export function text(data: FormData, key: string): string {
  const v = data.get(key);
  return typeof v === 'string' ? v : '';
}

export function checked(data: FormData, key: string): boolean {
  return data.get(key) !== null;
}
