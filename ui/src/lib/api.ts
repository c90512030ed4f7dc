// Calls into the Rust side. Every command resolves to its data or throws an AppError carrying the
// stable error code; components translate codes, never messages.
import type { ErrorCode, IpcError_Serialize } from './bindings';

export { commands } from './bindings';
export type * from './bindings';

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly field: string | null;

  constructor(e: IpcError_Serialize) {
    super(e.message);
    this.code = e.code;
    this.field = e.field;
  }
}

type Res<T> = { status: 'ok'; data: T } | { status: 'error'; error: IpcError_Serialize };

/** Unwraps a command result, throwing an AppError for the error branch. */
export async function call<T>(p: Promise<Res<T>>): Promise<T> {
  const r = await p;
  if (r.status === 'ok') return r.data;
  throw new AppError(r.error);
}

/** The error code of anything thrown by `call` (or `internal` for anything else). */
export function codeOf(e: unknown): ErrorCode {
  return e instanceof AppError ? e.code : 'internal';
}
