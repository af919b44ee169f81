import { Injectable, NotFoundException } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { BemiService } from 'nestjs-bemi';
import { Todo } from './todo.entity';

@Injectable()
export class TodoService {
  constructor(
    private readonly em: EntityManager,
    private readonly bemi: BemiService,
  ) {}

  list(): Promise<Todo[]> {
    return this.em.find(Todo, {}, { orderBy: { id: 'asc' } });
  }

  async create(task: string): Promise<Todo> {
    const todo = this.em.create(Todo, { task });
    await this.em.flush();
    return todo;
  }

  async complete(id: number): Promise<Todo> {
    const todo = await this.em.findOne(Todo, id);
    if (!todo) throw new NotFoundException(`Todo ${id} not found`);
    // Context can be added from anywhere the request reaches, not only from controllers.
    this.bemi.set({ previouslyCompleted: todo.isCompleted });
    todo.isCompleted = true;
    await this.em.flush();
    return todo;
  }

  async remove(id: number): Promise<void> {
    const removed = await this.em.nativeDelete(Todo, { id });
    if (!removed) throw new NotFoundException(`Todo ${id} not found`);
  }
}
