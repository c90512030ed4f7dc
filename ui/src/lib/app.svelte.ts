// App-wide state: start-up, session, settings, connectivity, cart badge, notices.
import {
  call,
  codeOf,
  commands,
  type AppInfo,
  type IpcError_Serialize,
  type SessionState_Serialize,
  type Settings_Serialize,
} from './api';
import { setLang, t, type Lang } from './i18n.svelte';
import { events } from './bindings';

/** A toast's text is rendered on display, so switching the language translates toasts too. */
export type Toast = { id: number; text: () => string; kind: 'info' | 'error' | 'success' };

export const app = $state({
  phase: 'starting' as 'starting' | 'ready' | 'failed',
  startupError: null as IpcError_Serialize | null,
  info: null as AppInfo | null,
  session: null as SessionState_Serialize | null,
  settings: null as Settings_Serialize | null,
  online: true,
  cartCount: 0,
  /** A newer Haitao the background check found (its version), until the app is updated. */
  updateAvailable: null as string | null,
  toasts: [] as Toast[],
});

let nextToast = 1;

/** How long a toast stays; an error has more to read and may need acting on. */
export const TOAST_MS: Record<Toast['kind'], number> = { info: 6000, success: 6000, error: 10000 };
/** After a pause ends, a toast stays at least this long, so it never vanishes as the pointer leaves. */
export const TOAST_AFTER_PAUSE_MS = 2000;

/** Each toast's clock: the timer while it runs, the time left, and how many things hold it. */
type ToastClock = { timer: ReturnType<typeof setTimeout> | null; left: number; since: number; holds: number };
/** Not state: nothing on screen depends on a toast's clock. */
const clocks: Record<number, ToastClock> = {};

function run(id: number, clock: ToastClock, ms: number): void {
  clock.left = ms;
  clock.since = Date.now();
  clock.timer = setTimeout(() => dismissToast(id), ms);
}

export function toast(text: string | (() => string), kind: Toast['kind'] = 'info'): void {
  const id = nextToast++;
  app.toasts.push({ id, text: typeof text === 'function' ? text : () => text, kind });
  const clock: ToastClock = { timer: null, left: 0, since: 0, holds: 0 };
  clocks[id] = clock;
  run(id, clock, TOAST_MS[kind]);
}

/** Stops a toast's clock while the pointer is over it or focus is in it (paired with `releaseToast`). */
export function holdToast(id: number): void {
  const clock = clocks[id];
  if (!clock) return;
  clock.holds += 1;
  if (clock.timer !== null) {
    clearTimeout(clock.timer);
    clock.timer = null;
    clock.left = Math.max(0, clock.left - (Date.now() - clock.since));
  }
}

/** Ends one hold; when none is left the toast's clock runs again for what was left of it. */
export function releaseToast(id: number): void {
  const clock = clocks[id];
  if (!clock || clock.holds === 0) return;
  clock.holds -= 1;
  if (clock.holds === 0) run(id, clock, Math.max(clock.left, TOAST_AFTER_PAUSE_MS));
}

/** Takes a toast away before its time (its close button: it may cover what is beneath it). */
export function dismissToast(id: number): void {
  const clock = clocks[id];
  if (clock?.timer != null) clearTimeout(clock.timer);
  delete clocks[id];
  const i = app.toasts.findIndex((x) => x.id === id);
  if (i >= 0) app.toasts.splice(i, 1);
}

/** Shows a translated error for anything a command threw. */
export function showError(e: unknown): void {
  const code = codeOf(e);
  toast(() => t(`errors.${code}`), 'error');
}

export function applyTheme(theme: string): void {
  const root = document.documentElement;
  root.dataset.theme = theme === 'light' || theme === 'dark' ? theme : '';
}

export async function refreshSession(): Promise<void> {
  try {
    app.session = await call(commands.sessionState());
    if (app.session.signed_in) {
      const cart = await call(commands.cart());
      app.cartCount = cart.lines.reduce((n, l) => n + l.pricing.quantity, 0);
    } else {
      app.cartCount = 0;
    }
  } catch (e) {
    if (codeOf(e) === 'offline') app.online = false;
  }
}

/** Starts the app: settings first (language), then waits for the shop and restores the session. */
export async function boot(): Promise<void> {
  app.phase = 'starting';
  app.startupError = null;
  mark('boot');
  // Both asked at once: the shop's start and the session's restore do not need the settings,
  // and the first page waits for both.
  const settings = call(commands.settingsGet());
  const ready = call(commands.appReady());
  // Awaited below; this only keeps a failure from counting as unhandled meanwhile.
  void ready.catch(() => undefined);
  try {
    app.settings = await settings;
    mark('settings');
    setLang(app.settings.language as Lang);
    applyTheme(app.settings.theme);
  } catch {
    // Settings fall back to defaults (Chinese).
  }
  try {
    app.session = await ready;
    mark('ready');
    app.phase = 'ready';
    app.online = app.session.online;
    app.info = await call(commands.appInfo());
    void refreshSession();
  } catch (e) {
    app.phase = 'failed';
    app.startupError = (e as { code?: string; message?: string }).message
      ? { code: codeOf(e), message: (e as Error).message, field: null }
      : { code: 'startup_failed', message: String(e), field: null };
    try {
      app.info = await call(commands.appInfo());
    } catch {
      // Info is best effort on a failed start.
    }
  }
  // A notification of an order was clicked: show that order.
  void events.openOrderEvent.listen((ev) => {
    location.hash = `#/orders/${encodeURIComponent(ev.payload.order_id)}`;
  });
  // The background update check found a newer version: said once, and a dot on Settings.
  void events.updateFoundEvent.listen((ev) => {
    const v = ev.payload.version;
    app.updateAvailable = v;
    toast(() => t('settings.updates.found_toast', { v }), 'info');
  });
  void events.connectivityEvent.listen((ev) => {
    const wasOffline = !app.online;
    app.online = ev.payload.online;
    if (ev.payload.online && wasOffline) {
      const n = ev.payload.reconciled;
      toast(() => t('app.back_online', { n }), 'success');
    }
  });
}

// Bookkeeping only, never rendered.
// eslint-disable-next-line svelte/prefer-svelte-reactivity
const rendered = new Set<string>();
const marks: { name: string; ms: number }[] = [];

/** Notes a start-up milestone (milliseconds since the page began loading). */
export function mark(name: string): void {
  if (marks.length < 16) marks.push({ name, ms: Math.round(performance.now()) });
}

/** Tells the Rust side (once per run) that a milestone is on screen, after the browser painted it. */
export function markRendered(what: string): void {
  if (rendered.has(what)) return;
  rendered.add(what);
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      mark(`${what}_painted`);
      void commands.uiRendered(what, marks).catch(() => {});
    }),
  );
}
