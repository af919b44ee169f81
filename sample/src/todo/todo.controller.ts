import { Body, Controller, Delete, Get, HttpCode, Param, ParseIntPipe, Post, Put, BadRequestException } from '@nestjs/common';
import { BemiContext } from 'nestjs-bemi';
import { TodoService } from './todo.service';

@Controller('todo')
export class TodoController {
  constructor(private readonly todos: TodoService) {}

  @Get()
  list() {
    return this.todos.list();
  }

  @Post()
  create(@Body() body: { task?: unknown }) {
    if (typeof body?.task !== 'string' || !body.task.trim()) throw new BadRequestException('Send {"task": "..."}');
    return this.todos.create(body.task);
  }

  @Put(':id/complete')
  @BemiContext({ action: 'todo.complete' })
  complete(@Param('id', ParseIntPipe) id: number) {
    return this.todos.complete(id);
  }

  @Delete(':id')
  @HttpCode(204)
  @BemiContext({ action: 'todo.delete' })
  remove(@Param('id', ParseIntPipe) id: number) {
    return this.todos.remove(id);
  }
}
