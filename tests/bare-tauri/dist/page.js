// Reports, two animation frames after the page is shown (as Haitao's UI does for its first
// catalog page), that the page is on screen: one command call.
requestAnimationFrame(() =>
  requestAnimationFrame(() => {
    window.__TAURI_INTERNALS__.invoke('rendered', { ms: Math.round(performance.now()) });
  }),
);
