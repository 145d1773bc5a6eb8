/**
 * The population registry connector's one interface (PRODUCT.md, "Population registry"): is this
 * person — number, full name, date of birth, gender, and the mobile number where the registry knows
 * one — on record? Registration (Decree 69/2024/ND-CP, identity level 1) asks it; so does
 * `dinhdanh registry check`.
 */
import type { Gender } from '../store/types.js';

/**
 * `unavailable`: the registry could not be asked or gave no usable answer. The connector never
 * throws for that: registration tells the citizen to try later, and nothing is decided on a guess.
 */
export type RegistryAnswer = 'match' | 'no_match' | 'unavailable';

export interface RegistryQuery {
  pid: string;
  fullName: string;
  /** YYYY-MM-DD */
  birthdate: string;
  gender: 'male' | 'female';
  /** E.164 */
  phone?: string;
}

export interface PopulationRegistry {
  readonly kind: 'file' | 'https';
  verify(q: RegistryQuery): Promise<RegistryAnswer>;
}

/** One person, as a file registry stores it (one JSON object a line) and as the adapter is asked. */
export interface RegistryRecord {
  pid: string;
  full_name: string;
  /** YYYY-MM-DD */
  birthdate: string;
  gender: Gender;
  /** E.164; when present, registration must use this number. */
  phone?: string;
}
