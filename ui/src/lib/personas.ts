// Sandbox personas' funding sources as the tester panel shows them, in the app's language: the
// sandbox names each source in both languages (`{zh, en}`), and a card carries its last four
// digits. (Each persona's description comes in both languages too: the panel shows it with `pick`.)
import { pick, t } from './i18n.svelte';
import type { SandboxAccount_Serialize } from './bindings';

export type SourceLike = Pick<SandboxAccount_Serialize, 'label'> & {
  card_last4?: string | null;
};

/** The name of a persona's funding source in the current language. */
export function sourceName(a: SourceLike): string {
  const name = pick(a.label);
  return a.card_last4 ? t('tester.card_ending', { name, last4: a.card_last4 }) : name;
}
