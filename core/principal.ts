/**
 * Who acts: every job belongs to the principal that started it. Over HTTP a bearer token names the
 * principal (server/auth.ts); stdio and the CLI act as the operator, who sees all jobs.
 */
export interface Principal {
  name: string;
  /** The operator sees and steers every job; anyone else only their own. */
  seesAll: boolean;
}

/** stdio, the CLI, and unauthenticated HTTP on loopback (whoever can reach it is on this machine). */
export const OPERATOR: Principal = { name: 'operator', seesAll: true };

/** Principals are job owners as stored in Temporal; the operator's name is taken. */
export const PRINCIPAL_NAME = /^[A-Za-z0-9_.@-]{1,64}$/;
