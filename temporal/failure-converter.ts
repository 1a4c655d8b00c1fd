/**
 * With payload encryption on (temporal/codec.ts), failure messages and stack traces go into an encoded
 * payload too, so a script's error text or an API's error body is sealed like everything else.
 * Loaded by path into the workflow bundle and the worker, so it imports no Node APIs.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
