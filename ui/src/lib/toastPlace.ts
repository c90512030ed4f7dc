// Where the toasts stand: in the corner where they cover none of what must stay clear (the tester
// panel, the page's main action), the bottom right when it is free.

export type Corner = 'bottom-right' | 'bottom-left' | 'top-right' | 'top-left';

export const CORNERS: Corner[] = ['bottom-right', 'bottom-left', 'top-right', 'top-left'];

export interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** The gap between the toasts and the window's edges (and the header). */
export const TOAST_MARGIN = 16;

/** The box the toast stack (`width` × `height`) takes in `corner`; the top corners start below `top`. */
export function boxIn(
  corner: Corner,
  width: number,
  height: number,
  view: { width: number; height: number },
  top: number,
): Box {
  const left = corner.endsWith('left') ? TOAST_MARGIN : view.width - TOAST_MARGIN - width;
  const y = corner.startsWith('top') ? top + TOAST_MARGIN : view.height - TOAST_MARGIN - height;
  return { left, top: y, right: left + width, bottom: y + height };
}

function overlap(a: Box, b: Box): number {
  const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
  const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
  return w > 0 && h > 0 ? w * h : 0;
}

/**
 * The corner whose toast box covers the least of `keepClear` (none, when one is free), in the
 * order of [`CORNERS`] on a tie.
 */
export function placeToasts(
  stack: { width: number; height: number },
  view: { width: number; height: number },
  keepClear: Box[],
  headerBottom: number,
): Corner {
  let best: Corner = 'bottom-right';
  let least = Infinity;
  for (const corner of CORNERS) {
    const box = boxIn(corner, stack.width, stack.height, view, headerBottom);
    const covered = keepClear.reduce((sum, k) => sum + overlap(box, k), 0);
    if (covered < least) {
      least = covered;
      best = corner;
    }
    if (covered === 0) break;
  }
  return best;
}
