// Launched payments the payment page shows (kept for the session; the Rust side persists the truth).
import type { PaymentLaunch_Serialize } from './api';

export const launches = $state<Record<string, PaymentLaunch_Serialize>>({});
