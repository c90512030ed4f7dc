import { describe, expect, it } from 'vitest';
import { boxIn, placeToasts } from './toastPlace';

const view = { width: 1200, height: 800 };
const stack = { width: 300, height: 170 };

describe('toast placement', () => {
  it('stays bottom right when nothing is there', () => {
    expect(placeToasts(stack, view, [], 60)).toBe('bottom-right');
    expect(boxIn('bottom-right', 300, 170, view, 60)).toEqual({
      left: 884,
      top: 614,
      right: 1184,
      bottom: 784,
    });
  });

  it('leaves the tester panel clear', () => {
    // The panel fills the right column from below the header to the bottom.
    const panel = { left: 800, top: 160, right: 1180, bottom: 800 };
    expect(placeToasts(stack, view, [panel], 60)).toBe('bottom-left');
  });

  it('leaves the main action clear too, and goes to the top when both bottoms are taken', () => {
    const panel = { left: 800, top: 300, right: 1180, bottom: 800 };
    const action = { left: 20, top: 700, right: 400, bottom: 744 };
    expect(placeToasts(stack, view, [panel, action], 60)).toBe('top-right');
    const top = boxIn('top-right', 300, 170, view, 60);
    expect(top.top).toBe(76);
  });

  it('covers as little as it can when every corner is taken', () => {
    const everywhere = [
      { left: 0, top: 0, right: 1200, bottom: 300 },
      { left: 0, top: 700, right: 600, bottom: 800 },
      { left: 600, top: 500, right: 1200, bottom: 800 },
    ];
    // Bottom left covers 300 × 84 of the second box; the others more.
    expect(placeToasts(stack, view, everywhere, 60)).toBe('bottom-left');
  });
});
