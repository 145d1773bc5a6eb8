/**
 * Form bodies: application/x-www-form-urlencoded only, capped, parsed with URLSearchParams (never
 * qs: `a[$ne]=x` stays a literal key, never an object — ten mistakes #6), then checked by a schema.
 */
import getRawBody from 'raw-body';
import type { Context } from 'koa';
import { z } from 'zod';
import { AppError } from './errors.js';

export const FORM_BODY_LIMIT = 16 * 1024;

/** Reads the request body as a form: each key once, each value a string. */
export async function readForm(ctx: Context, limit = FORM_BODY_LIMIT): Promise<Record<string, string>> {
  const type = ctx.request.type;
  if (type !== 'application/x-www-form-urlencoded') {
    throw new AppError('unsupported_media_type', 415, 'error.invalid_request');
  }
  let raw: string;
  try {
    raw = await getRawBody(ctx.req, { limit, encoding: 'utf8', length: ctx.request.length });
  } catch (err) {
    const e = err as { type?: string; status?: number };
    if (e.type === 'entity.too.large') throw new AppError('body_too_large', 413, 'error.body_too_large');
    throw new AppError('invalid_body', 400, 'error.invalid_request', { cause: err });
  }
  const params = new URLSearchParams(raw);
  const out: Record<string, string> = Object.create(null);
  for (const [key, value] of params) {
    if (key in out) throw new AppError('duplicate_field', 400, 'error.invalid_request', { message: `field ${key} appears twice` });
    out[key] = value;
  }
  return out;
}

/**
 * Parses a form against a strict schema: unknown fields (such as `identifier[$ne]`) make the form
 * malformed rather than being ignored, so a probe is answered as what it is.
 */
export function parseForm<T extends z.ZodRawShape>(form: Record<string, string>, shape: T): z.infer<z.ZodObject<T>> {
  const result = z.strictObject(shape).safeParse({ ...form });
  if (!result.success) throw new AppError('malformed_form', 400, 'error.malformed_form');
  return result.data;
}
