import { EntitySchema, OptionalProps } from '@mikro-orm/core';

export class Todo {
  [OptionalProps]?: 'isCompleted';
  id!: number;
  task!: string;
  isCompleted = false;
}

// An EntitySchema, so that this one file runs on MikroORM 6 and 7 (the sample is tested on both).
// Decorated entities work the same with nestjs-bemi: their decorators come from `@mikro-orm/core`
// on MikroORM 6 and from `@mikro-orm/decorators/legacy` on 7.
export const TodoSchema = new EntitySchema<Todo>({
  class: Todo,
  tableName: 'todo',
  properties: {
    id: { type: 'integer', primary: true, autoincrement: true },
    task: { type: 'text' },
    isCompleted: { type: 'boolean', default: false },
  },
});
