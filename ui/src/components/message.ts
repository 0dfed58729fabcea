// One message as returned by POST /api/queues/{vhost}/{name}/get: its routing, properties,
// headers (with an x-death summary when it was dead-lettered) and body shown as text, JSON or
// base64.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { fmtBytes, fmtNum, fmtTime, fmtValue } from '../format.js';
import { ArgsTable, Tag } from './ui.js';

export interface GotMessage {
  payload: string;
  payload_encoding: 'string' | 'base64';
  payload_bytes: number;
  redelivered: boolean;
  exchange: string;
  routing_key: string;
  message_count: number;
  properties: Record<string, unknown> & { headers?: Record<string, unknown> };
}

export interface Death {
  count?: number;
  reason?: string;
  queue?: string;
  exchange?: string;
  'routing-keys'?: string[];
  time?: unknown;
  'original-expiration'?: string;
}

export function deathsOf(m: GotMessage): Death[] {
  const d = m.properties.headers?.['x-death'];
  return Array.isArray(d) ? (d as Death[]) : [];
}

function bytesOf(m: GotMessage): Uint8Array {
  if (m.payload_encoding === 'base64') {
    const binary = atob(m.payload);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  }
  return new TextEncoder().encode(m.payload);
}

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

type BodyView = 'text' | 'json' | 'base64';

function bodyAs(m: GotMessage, view: BodyView): string {
  const bytes = bytesOf(m);
  if (view === 'base64') return toBase64(bytes);
  const text = new TextDecoder('utf-8').decode(bytes);
  if (view === 'text') return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return `(not JSON) ${text}`;
  }
}

function looksLikeJson(m: GotMessage): boolean {
  const ct = m.properties['content_type'];
  if (typeof ct === 'string' && ct.includes('json')) return true;
  const t = m.payload_encoding === 'string' ? m.payload.trim() : '';
  return (t.startsWith('{') && t.endsWith('}')) || (t.startsWith('[') && t.endsWith(']'));
}

/** Death time: RabbitMQ's API renders AMQP timestamps as seconds since the epoch. */
function deathTime(t: unknown): string {
  return typeof t === 'number' ? fmtTime(t * 1000) : fmtValue(t);
}

export function DeathSummary({ deaths }: { deaths: Death[] }): VNode | null {
  if (deaths.length === 0) return null;
  return html`<div class="table-wrap"><table class="list deaths">
    <thead><tr><th>Reason</th><th>From queue</th><th>Exchange</th><th>Routing keys</th><th class="num">Count</th><th>Last time</th></tr></thead>
    <tbody>${deaths.map((d) => html`<tr>
      <td><${Tag} kind="warn">${d.reason ?? '?'}<//></td><td>${d.queue ?? ''}</td><td>${d.exchange === '' ? '(default)' : d.exchange ?? ''}</td>
      <td>${(d['routing-keys'] ?? []).join(', ')}</td><td class="num">${fmtNum(d.count)}</td><td>${deathTime(d.time)}</td></tr>`)}</tbody>
  </table></div>`;
}

export function MessageView({ message, index }: { message: GotMessage; index: number }): VNode {
  const [view, setView] = useState<BodyView>(looksLikeJson(message) ? 'json' : message.payload_encoding === 'base64' ? 'base64' : 'text');
  const { headers, ...props } = message.properties;
  const deaths = deathsOf(message);
  const otherHeaders = Object.fromEntries(Object.entries(headers ?? {}).filter(([k]) => k !== 'x-death'));
  return html`<article class="message card" data-message=${index}>
    <header class="message-head">
      <strong>Message ${index + 1}</strong>
      <span>exchange <code>${message.exchange === '' ? '(default)' : message.exchange}</code></span>
      <span>routing key <code>${message.routing_key}</code></span>
      ${message.redelivered ? html`<${Tag} kind="warn">redelivered<//>` : null}
      <span class="muted">${fmtBytes(message.payload_bytes)} · ${fmtNum(message.message_count)} left in queue</span>
    </header>
    <div class="message-grid">
      <div><h4>Properties</h4><${ArgsTable} args=${props} /></div>
      <div><h4>Headers</h4><${ArgsTable} args=${otherHeaders} /></div>
    </div>
    ${deaths.length > 0 ? html`<h4>Dead-lettered (x-death)</h4><${DeathSummary} deaths=${deaths} />` : null}
    <div class="body-head"><h4>Body</h4>
      <span class="tabs" role="tablist">${(['text', 'json', 'base64'] as BodyView[]).map((v) => html`<button type="button" role="tab"
        aria-selected=${view === v} class=${view === v ? 'active' : ''} onClick=${() => setView(v)}>${v === 'json' ? 'JSON' : v}</button>`)}</span>
    </div>
    <pre class="body" data-body-view=${view}>${bodyAs(message, view)}</pre>
  </article>`;
}
