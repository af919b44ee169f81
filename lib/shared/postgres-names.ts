/** PostgreSQL's own default schema: the default of every schema option. */
export const DEFAULT_SCHEMA = 'public';
