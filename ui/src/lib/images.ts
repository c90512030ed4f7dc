import { convertFileSrc } from '@tauri-apps/api/core';

/** The URL of a catalog image, served by the app's `himg:` protocol (cached for offline use). */
export function imageUrl(name: string): string {
  return convertFileSrc(name, 'himg');
}
