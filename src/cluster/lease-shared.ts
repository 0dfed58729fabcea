// The memory the main thread shares with the lease keeper (lease-keeper.ts): two i32 slots (status,
// unused) then two i64 slots (valid-until and the main thread's last tick, epoch ms).

export const SLOT_STATUS = 0;
export const SLOT_VALID_UNTIL = 0;
export const SLOT_MAIN_TICK = 1;

/** status: renewing */
export const LEASE_ALIVE = 0;
/** status: the lease is gone (expired, revoked, or ran out unrenewed) */
export const LEASE_LOST = 1;
/** status: the main thread stopped the keeper (stepping down or shutting down) */
export const LEASE_STOP = 2;

export const SHARED_BYTES = 24;

export interface LeaseKeeperData {
  endpoints: string[];
  leaseId: string;
  ttlSec: number;
  /** no renewal when the main thread has not ticked for this long */
  stuckLimitMs: number;
  shared: SharedArrayBuffer;
}
