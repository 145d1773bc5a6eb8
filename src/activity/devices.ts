/**
 * How a browser and a network are shown to the person (session list, activity, notices): coarse on
 * purpose. No fingerprinting: only the User-Agent's obvious parts, and the network, never the full
 * address (an IPv4 /24, an IPv6 /64).
 */
import { ipBucket } from '../accounts/authentication.service.js';

/** "Chrome · Android"-style summary of a User-Agent. */
export function describeDevice(ua: string): string {
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad|iPod/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows'
    : /Mac OS X|Macintosh/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : '';
  const browser = /Edg\//.test(ua) ? 'Edge' : /OPR\//.test(ua) ? 'Opera' : /Firefox\//.test(ua) ? 'Firefox'
    : /Chrome\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : '';
  return [browser, os].filter(Boolean).join(' · ') || '—';
}

/** The network a request came from, never the full address: IPv4 /24, IPv6 /64. */
export function describeNetwork(ip: string): string {
  const bucket = ipBucket(ip);
  const v4 = /^(\d+\.\d+\.\d+)\.\d+$/.exec(bucket);
  return v4 ? `${v4[1]}.x` : bucket;
}
