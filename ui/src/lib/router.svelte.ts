// A small hash router: `#/`, `#/product/P0001`, `#/orders/HO...`.

function parse(hash: string): { path: string; parts: string[]; query: URLSearchParams } {
  const raw = hash.replace(/^#/, '') || '/';
  const [path = '/', q = ''] = raw.split('?');
  return {
    path,
    parts: path.split('/').filter(Boolean).map(decodeURIComponent),
    query: new URLSearchParams(q),
  };
}

export const route = $state(parse(typeof location === 'undefined' ? '' : location.hash));

if (typeof window !== 'undefined') {
  window.addEventListener('hashchange', () => {
    Object.assign(route, parse(location.hash));
    document.getElementById('main')?.focus();
  });
}

export function go(path: string): void {
  if (location.hash === `#${path}`) return;
  location.hash = path;
}

export function href(path: string): string {
  return `#${path}`;
}
