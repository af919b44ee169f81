import { Entity, OptionalProps, PrimaryKey, Property } from '@mikro-orm/core';

@Entity({ tableName: 'todo' })
export class Todo {
  [OptionalProps]?: 'isCompleted';

  @PrimaryKey({ type: 'integer', autoincrement: true })
  id!: number;

  @Property({ type: 'text' })
  task!: string;

  @Property({ type: 'boolean', default: false })
  isCompleted = false;
}
