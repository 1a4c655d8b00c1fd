/**
 * The search attributes every job carries, so an operator can filter and sort jobs in the Temporal
 * UI and CLI ("alice's failed jobs"). One list: the workflow upserts them, and `dev`, the compose
 * namespace job and the native deployment register them. Names carry the product's prefix so they
 * cannot collide with other applications' attributes in a shared namespace.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** The principal that started the job. */
export const OWNER = defineSearchAttributeKey('DcmOwner', SearchAttributeType.KEYWORD);
/** The providers the job's script called so far. */
export const PROVIDERS = defineSearchAttributeKey('DcmProviders', SearchAttributeType.KEYWORD_LIST);
/** 1 for a new job; each job_resume adds one. */
export const ATTEMPT = defineSearchAttributeKey('DcmAttempt', SearchAttributeType.INT);
/** running, waiting_for_approval, completed, failed, cancelled: what the job is doing or how it ended. */
export const PHASE = defineSearchAttributeKey('DcmPhase', SearchAttributeType.KEYWORD);
/** Items done as the script last reported with progress(done, total). */
export const PROGRESS_DONE = defineSearchAttributeKey('DcmProgressDone', SearchAttributeType.INT);

export const SEARCH_ATTRIBUTES = [OWNER, PROVIDERS, ATTEMPT, PHASE, PROGRESS_DONE] as const;

/** How the Temporal CLI names each type (`temporal operator search-attribute create --type`, `start-dev --search-attribute`). */
export const CLI_TYPE_NAMES: Record<(typeof SEARCH_ATTRIBUTES)[number]['type'], string> = {
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
  [SearchAttributeType.INT]: 'Int',
};
