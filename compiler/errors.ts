/**
 * Errors that are the user's to fix (a missing package, nginx not running...): the CLI prints
 * their message and exits 1, without a stack trace.
 */
export class UserError extends Error {}
