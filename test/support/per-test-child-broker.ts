// A bin/warren child process (ChildBroker) for one test at a time, and what tests read of such a
// process. usePerTestChildBroker() registers the afterEach the memory tests used to repeat: close
// the amqplib connections the test opened, stop the broker (SIGTERM), remove its data folder. Then
// readers of a ChildBroker: its JSON log lines and its resident memory figures (/proc/PID/status).

import { readFileSync, rmSync } from 'node:fs';
import { afterEach } from 'vitest';
import { Clients } from './amqp.js';
import { tempDir } from './broker.js';
import { ChildBroker } from './child-broker.js';

export interface PerTestChildBroker {
  /** The running broker of the current test (throws if the test has not started one). */
  readonly broker: ChildBroker;
  /** amqplib connections to the running broker (clients.connect()), closed after each test. */
  readonly clients: Clients;
  /** Starts bin/warren on a fresh data folder named with `prefix`, with extra command-line flags. */
  start(prefix: string, extraArgs?: string[]): Promise<ChildBroker>;
  /** Closes the connections, stops the broker (SIGTERM) and starts it again on the same folder and flags. */
  restart(): Promise<ChildBroker>;
}

export function usePerTestChildBroker(): PerTestChildBroker {
  let running: { broker: ChildBroker; dataDir: string; extraArgs: string[] } | undefined;
  const started = (): ChildBroker => {
    if (running === undefined) throw new Error('no bin/warren running: start() it in the test first');
    return running.broker;
  };
  const clients = new Clients(() => started().url);

  afterEach(async () => {
    await clients.closeAll();
    const stopping = running;
    running = undefined;
    if (stopping === undefined) return;
    await stopping.broker.stop();
    rmSync(stopping.dataDir, { recursive: true, force: true });
  });

  return {
    get broker() {
      return started();
    },
    clients,
    async start(prefix, extraArgs = []) {
      if (running !== undefined) throw new Error('a bin/warren is already running in this test: restart() it instead');
      const dataDir = tempDir(prefix);
      // A start that fails leaves the folder to tempDir's removal when the test process exits.
      const broker = await ChildBroker.start(dataDir, undefined, extraArgs);
      running = { broker, dataDir, extraArgs };
      return broker;
    },
    async restart() {
      started();
      const current = running!;
      await clients.closeAll();
      await current.broker.stop();
      current.broker = await ChildBroker.start(current.dataDir, undefined, current.extraArgs);
      return current.broker;
    },
  };
}

/** The broker's whole output so far (stdout and stderr) as lines. */
export function outputLines(broker: ChildBroker): string[] {
  return broker.output.join('').split('\n');
}

/** The broker's JSON (pino) log lines so far, parsed; with `msg`, only the lines with that message. */
export function logRecords(broker: ChildBroker, msg?: string): Record<string, unknown>[] {
  return outputLines(broker)
    .filter((line) => line.startsWith('{') && line.endsWith('}'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((record) => msg === undefined || record['msg'] === msg);
}

/**
 * The broker's figures from /proc/PID/status, in MiB, by key (RssAnon, RssShmem, RssFile, VmRSS):
 * reads counters only, cheap enough to poll (unlike /proc/PID/smaps, which walks the page tables).
 */
export function statusMiB(broker: ChildBroker): (key: string) => number {
  const status = readFileSync(`/proc/${broker.process.pid!}/status`, 'utf8');
  return (key) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN) / 1024;
}
