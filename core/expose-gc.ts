/**
 * V8 gives gc() to the contexts created while --expose-gc is set, a flag of the whole process. It
 * is set only for one synchronous creation, so no other context (a workflow's, a script's) gets
 * gc() along with it.
 */
import v8 from 'node:v8';

export function withGcExposed<T>(createContext: () => T): T {
  v8.setFlagsFromString('--expose-gc');
  try {
    return createContext();
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}
