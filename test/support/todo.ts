import { EntitySchema, OptionalProps } from '@mikro-orm/core';

/**
 * The `todo` row of the test apps. Its table comes in two widths: the plain one (`TODO_DDL`,
 * `TodoSchema`) the Nest apps write, and one with three typed columns more (`TYPED_TODO_DDL`,
 * `typedTodoSchema()`) for the history tests' round trips of timestamptz, numeric and integer.
 */
export class Todo {
  [OptionalProps]?: 'isCompleted';
  id!: number;
  task!: string;
  isCompleted = false;
  // Typed table only; `declare` keeps them off the plain table's instances.
  declare dueAt?: Date | null;
  declare amount?: string | null;
  declare views?: number | null;
}

const TODO_COLUMNS = `id serial PRIMARY KEY, task text NOT NULL, is_completed boolean NOT NULL DEFAULT false`;
export const TODO_DDL = `CREATE TABLE todo (${TODO_COLUMNS})`;
export const TYPED_TODO_DDL = `CREATE TABLE todo (${TODO_COLUMNS}, due_at timestamptz, amount numeric(10,2), views integer)`;

const plainProperties = {
  id: { type: 'number', primary: true, autoincrement: true },
  task: { type: 'string', columnType: 'text' },
  isCompleted: { type: 'boolean', default: false },
} as const;

/** `Todo` without the typed table's columns: what `TodoSchema` maps. */
type PlainTodo = Omit<Todo, 'dueAt' | 'amount' | 'views'>;

export const TodoSchema = new EntitySchema<PlainTodo>({ class: Todo, tableName: 'todo', properties: plainProperties });

/**
 * The mapping of the typed table. MikroORM keeps one schema per class in its registry (the last
 * one built), so a test file builds this once and maps `Todo` with it alone.
 */
export function typedTodoSchema(): EntitySchema<Todo> {
  return new EntitySchema<Todo>({
    class: Todo,
    tableName: 'todo',
    properties: {
      ...plainProperties,
      dueAt: { type: 'datetime', columnType: 'timestamptz', nullable: true },
      amount: { type: 'decimal', columnType: 'numeric(10,2)', nullable: true },
      views: { type: 'integer', nullable: true },
    },
  });
}
