// warrenctl's errors and exit codes (sysexits, as rabbitmqctl uses them).

/** sysexits codes, as rabbitmqctl uses them. */
export const EX_USAGE = 64;
export const EX_DATAERR = 65;
export const EX_NOUSER = 67;
export const EX_UNAVAILABLE = 69;
export const EX_SOFTWARE = 70;
export const EX_TEMPFAIL = 75;
export const EX_NOPERM = 77;

export class UsageError extends Error {}

/** A refusal with rabbitmqctl's "Error:\n<text>" output and an exit code. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** printed without the "Error:" line (rabbitmqctl does so for a few refusals) */
    readonly plain = false,
  ) {
    super(message);
  }
}

