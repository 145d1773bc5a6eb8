/**
 * What the parts of the transmitter (events/) give each other: the stream-management API
 * (ssf.routes.ts, streams.service.ts) calls the delivery side (delivery.ts) for verification
 * events, status changes and polling; the emitter (emitter.ts) turns account changes into SETs.
 */
import type { SsfStream } from '../store/index.js';

/** RFC 8936 §2.4's poll request, validated. */
export interface PollRequest {
  /** jtis the receiver acknowledges (RFC 8936 §2.4 `ack`). */
  ack: string[];
  /** jtis the receiver could not process, with its error code and description (RFC 8936 §2.4 `setErrs`). */
  setErrs: Record<string, { err: string; description: string }>;
  /** At most this many SETs in the answer (`maxEvents`; 0 = acknowledge only). */
  maxEvents: number;
  /** `returnImmediately`: false lets the request wait (long polling) until an event or the wait ends. */
  returnImmediately: boolean;
}

/** RFC 8936 §2.5's answer. */
export interface PollResponse {
  sets: Record<string, string>;
  moreAvailable: boolean;
}

export interface EventDelivery {
  /**
   * SSF §8.1.4.2: queues a verification event for the stream (with the receiver's `state`, when
   * given), delivered by the stream's method even when it requested no event types.
   */
  verify(stream: SsfStream, state?: string): Promise<void>;
  /** A stream became enabled or its delivery changed: whatever was held goes out now (push). */
  resume(stream: SsfStream): Promise<void>;
  /**
   * RFC 8936: applies `ack` and `setErrs`, then answers up to `maxEvents` undelivered SETs in
   * order. With none and `returnImmediately` false, waits up to `waitMs` (bounded by the
   * transmitter) for one, ending early when `signal` aborts (the client went away).
   */
  poll(stream: SsfStream, request: PollRequest, options?: { waitMs?: number; signal?: AbortSignal }): Promise<PollResponse>;
}
