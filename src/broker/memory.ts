// How many bytes of message bodies sit in queues in memory, against the configured budget. Queues
// add and subtract as messages come and go (plain numbers on the hot path); above the budget,
// queues page new transient messages to disk as well as persistent ones.

export class MemoryGauge {
  bytes = 0;

  constructor(readonly budgetBytes: number) {}

  get overBudget(): boolean {
    return this.bytes > this.budgetBytes;
  }
}
