import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  app,
  dismissToast,
  holdToast,
  releaseToast,
  toast,
  TOAST_AFTER_PAUSE_MS,
  TOAST_MS,
} from './app.svelte';

const texts = () => app.toasts.map((x) => x.text());
const last = () => app.toasts[app.toasts.length - 1]?.id ?? -1;

describe('toasts', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    for (const x of [...app.toasts]) dismissToast(x.id);
  });
  afterEach(() => vi.useRealTimers());

  it('go by themselves, an error after longer than a notice', () => {
    toast('saved', 'success');
    toast('failed', 'error');
    vi.advanceTimersByTime(TOAST_MS.success - 1);
    expect(texts()).toEqual(['saved', 'failed']);
    vi.advanceTimersByTime(1);
    expect(texts()).toEqual(['failed']);
    vi.advanceTimersByTime(TOAST_MS.error - TOAST_MS.success - 1);
    expect(texts()).toEqual(['failed']);
    vi.advanceTimersByTime(1);
    expect(texts()).toEqual([]);
  });

  it('wait while held and then finish what was left of their time', () => {
    toast('failed', 'error');
    const id = last();
    vi.advanceTimersByTime(4000);
    holdToast(id);
    vi.advanceTimersByTime(60_000);
    expect(texts()).toEqual(['failed']);
    releaseToast(id);
    vi.advanceTimersByTime(TOAST_MS.error - 4000 - 1);
    expect(texts()).toEqual(['failed']);
    vi.advanceTimersByTime(1);
    expect(texts()).toEqual([]);
  });

  it('stay held until pointer and focus have both left, then at least a moment longer', () => {
    toast('failed', 'error');
    const id = last();
    vi.advanceTimersByTime(TOAST_MS.error - 100);
    holdToast(id); // pointer
    holdToast(id); // focus
    releaseToast(id); // pointer leaves; focus still in it
    vi.advanceTimersByTime(30_000);
    expect(texts()).toEqual(['failed']);
    releaseToast(id);
    vi.advanceTimersByTime(TOAST_AFTER_PAUSE_MS - 1);
    expect(texts()).toEqual(['failed']);
    vi.advanceTimersByTime(1);
    expect(texts()).toEqual([]);
    // Unpaired releases and holds of a gone toast change nothing.
    releaseToast(id);
    holdToast(id);
    toast('next');
    vi.advanceTimersByTime(TOAST_MS.info);
    expect(texts()).toEqual([]);
  });

  it('closed early never come back', () => {
    toast('saved', 'success');
    const id = last();
    holdToast(id);
    dismissToast(id);
    releaseToast(id);
    vi.advanceTimersByTime(TOAST_MS.success * 2);
    expect(texts()).toEqual([]);
  });
});
