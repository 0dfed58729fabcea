// Moved to test/support/harness.ts (with the shared helpers in test/support/amqp.ts and wait.ts).
// Kept as a re-export so tests written against the old path still compile; import from
// ../support/harness.js in new tests.

export * from '../support/harness.js';
export { waitFor as until } from '../support/wait.js';
