// Definitions: download everything (GET /api/definitions, or one vhost's) as RabbitMQ's JSON
// file, and upload such a file (POST /api/definitions) to import it.
import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { api, seg } from '../api.js';
import { ActionForm, Field, text } from '../components/form.js';
import { Section } from '../components/ui.js';
import { useVhostNames } from '../model.js';

function download(fileName: string, json: unknown): void {
  const blob = new Blob([JSON.stringify(json, null, 2)], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function DefinitionsPage(): VNode {
  const vhosts = useVhostNames();
  return html`<div class="page">
    <h1>Definitions</h1>
    <p class="muted">Users, vhosts, permissions, policies, queues, exchanges and bindings as one JSON file, in RabbitMQ's format (it imports into RabbitMQ too). Messages are not included.</p>
    <${Section} title="Export" id="export">
      <${ActionForm} submit="Download" className="inline-form" action=${async (d: FormData) => {
        const vhost = text(d, 'vhost');
        const json = await api<unknown>(vhost === '' ? '/definitions' : `/definitions/${seg(vhost)}`);
        const date = new Date().toISOString().slice(0, 10);
        const fileName = `warren-definitions${vhost === '' ? '' : `-${vhost.replace(/[^\w.-]+/g, '_')}`}-${date}.json`;
        download(fileName, json);
        return `Downloaded ${fileName}.`;
      }}>
        <${Field} label="Vhost"><select name="vhost"><option value="">all vhosts</option>${vhosts.map((v) => html`<option value=${v}>${v}</option>`)}</select><//>
      <//>
    <//>
    <${Section} title="Import" id="import">
      <${ActionForm} submit="Upload" className="inline-form" action=${async (d: FormData) => {
        const file = d.get('file');
        if (!(file instanceof File) || file.size === 0) throw new Error('Choose a definitions file (JSON) first.');
        let json: unknown;
        try {
          json = JSON.parse(await file.text());
        } catch (err) {
          throw new Error(`${file.name} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
        }
        const vhost = text(d, 'vhost');
        await api(vhost === '' ? '/definitions' : `/definitions/${seg(vhost)}`, { method: 'POST', body: json });
        return `Imported ${file.name}.`;
      }}>
        <${Field} label="File"><input name="file" type="file" accept=".json,application/json" /><//>
        <${Field} label="Into vhost"><select name="vhost"><option value="">as in the file</option>${vhosts.map((v) => html`<option value=${v}>${v}</option>`)}</select><//>
      <//>
    <//>
  </div>`;
}
