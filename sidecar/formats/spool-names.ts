// The spool directory's file names (docs/protocol.md §3), shared by the plugin that writes the
// files and the sidecar that drains them (and `nostr-bt status`, which measures them).
//
//   <unix ms at creation>-<plugin pid>-<n>.open    while the plugin appends to it
//   <unix ms at creation>-<plugin pid>-<n>.ready   closed: the sidecar may drain and delete it

/** A file the plugin still appends to. */
export const SPOOL_OPEN_SUFFIX = '.open';
/** A closed file: the sidecar may drain and delete it. */
export const SPOOL_READY_SUFFIX = '.ready';
/** The spool directory's mode: setgid, so the sidecar's group can read what strfry's user writes. */
export const SPOOL_DIR_MODE = 0o2770;
/** An `.open` file whose writer is gone is drained once its mtime is older than this. */
export const SPOOL_STALE_OPEN_MS = 2000;

const OPEN_AT_END = /\.open$/;

/** The name of a new spool file: `<ms>-<pid>-<n>.open`. */
export function openSpoolName(createdAtMs: number, pid: number, n: number): string {
  return `${createdAtMs}-${pid}-${n}${SPOOL_OPEN_SUFFIX}`;
}

/** The path an `.open` file has once closed (`.ready`); other paths are answered unchanged. */
export function readySpoolPath(openPath: string): string {
  return openPath.replace(OPEN_AT_END, SPOOL_READY_SUFFIX);
}

export function isOpenSpoolName(name: string): boolean {
  return name.endsWith(SPOOL_OPEN_SUFFIX);
}

export function isReadySpoolName(name: string): boolean {
  return name.endsWith(SPOOL_READY_SUFFIX);
}

/** The pid field of a spool file's name (NaN when the name has none). */
export function spoolWriterPid(name: string): number {
  return Number(name.split('-')[1]);
}
