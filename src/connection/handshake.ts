// The pieces of the connection handshake that are pure: server properties for connection.start,
// SASL PLAIN and AMQPLAIN credential parsing, and tune-ok validation with RabbitMQ's texts.

import { NotAllowed } from '../protocol/errors.js';
import { readTable, type FieldTable } from '../protocol/field-table.js';
import type { BrokerConfig } from '../config.js';
import { WARREN_VERSION } from '../version.js';

export const MECHANISMS = 'PLAIN AMQPLAIN';
export const LOCALES = 'en_US';

/** Capabilities advertised to clients: only what works. */
export const SERVER_CAPABILITIES: FieldTable = {
  publisher_confirms: true,
  exchange_exchange_bindings: true,
  'basic.nack': true,
  consumer_cancel_notify: true,
  'connection.blocked': true,
  consumer_priorities: true,
  authentication_failure_close: true,
  per_consumer_qos: true,
  direct_reply_to: true,
};

export function serverProperties(config: BrokerConfig): FieldTable {
  return {
    capabilities: SERVER_CAPABILITIES,
    cluster_name: config.clusterName,
    copyright: 'Copyright (c) the Warren authors',
    information: 'Licensed under the MIT License',
    platform: `Node.js ${process.version}`,
    product: 'Warren',
    version: WARREN_VERSION,
  };
}

export interface Credentials {
  username: string;
  password: string;
}

/** Parses a SASL response; undefined when the mechanism is unknown or the response malformed. */
export function parseCredentials(mechanism: string, response: Buffer): Credentials | undefined {
  if (mechanism === 'PLAIN') {
    // authzid \0 authcid \0 password
    const first = response.indexOf(0);
    const second = first < 0 ? -1 : response.indexOf(0, first + 1);
    if (first < 0 || second < 0) return undefined;
    return {
      username: response.toString('utf8', first + 1, second),
      password: response.toString('utf8', second + 1),
    };
  }
  if (mechanism === 'AMQPLAIN') {
    // A field table without its length prefix: LOGIN and PASSWORD.
    const prefixed = Buffer.allocUnsafe(response.length + 4);
    prefixed.writeUInt32BE(response.length, 0);
    response.copy(prefixed, 4);
    let table: FieldTable;
    try {
      table = readTable(prefixed, 0, prefixed.length)[0];
    } catch {
      return undefined;
    }
    const login = table['LOGIN'];
    const password = table['PASSWORD'];
    if (typeof login !== 'string' || typeof password !== 'string') return undefined;
    return { username: login, password };
  }
  return undefined;
}

/**
 * Checks a client's tune-ok value against the server's limit as RabbitMQ does: 0 from the client
 * means "no limit", which is too much when the server has one.
 */
export function validateNegotiated(field: 'frame_max' | 'channel_max', min: number, serverValue: number, clientValue: number): void {
  const detail = clientValue === 0 ? ' (no limit)' : '';
  if (clientValue !== 0 && clientValue < min) {
    throw new NotAllowed(
      `negotiated ${field} = ${clientValue}${detail} is lower than the minimum allowed value (${min})`,
    );
  }
  if (serverValue !== 0 && (clientValue === 0 || clientValue > serverValue)) {
    throw new NotAllowed(
      `negotiated ${field} = ${clientValue}${detail} is higher than the maximum allowed value (${serverValue})`,
    );
  }
}
