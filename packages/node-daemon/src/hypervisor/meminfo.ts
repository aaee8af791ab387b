/** Reading a /proc/meminfo text (the host's, or a guest's through its agent). */

/** The `KEY:  N kB` field of a /proc/meminfo text, in bytes, or null when it has none. */
export function meminfoBytes(text: string, key: string): number | null {
  const m = new RegExp(`^${key}:\\s+(\\d{1,12}) kB$`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : null;
}
