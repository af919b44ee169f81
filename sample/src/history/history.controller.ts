import { BadRequestException, Controller, Get, NotFoundException, Param, ParseIntPipe, Query, UseFilters, Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { BemiHistory, BemiHistoryArgumentError, type HistoryChange } from 'nestjs-bemi';
import { Todo } from '../todo/todo.entity';

/** A bad moment or key, or a moment before capture started, is the client's mistake: 400. */
@Catch(BemiHistoryArgumentError)
class HistoryArgumentFilter implements ExceptionFilter {
  catch(error: BemiHistoryArgumentError, host: ArgumentsHost) {
    const res = host.switchToHttp().getResponse();
    res.status(400).json({ statusCode: 400, message: error.message });
  }
}

/** What one change looks like over HTTP (the `changes` row, property names in before/after). */
function present(change: HistoryChange) {
  return {
    id: change.id,
    primaryKey: change.primaryKey,
    table: change.table,
    operation: change.operation,
    before: change.before,
    after: change.after,
    context: change.context,
    committedAt: change.commitTimestamp,
  };
}

@Controller()
@UseFilters(HistoryArgumentFilter)
export class HistoryController {
  constructor(private readonly history: BemiHistory) {}

  /** The todo's audit trail, oldest first. */
  @Get('todo/:id/history')
  async trail(@Param('id', ParseIntPipe) id: number) {
    return (await this.history.changes(Todo, { primaryKey: id })).map(present);
  }

  /** The todo as it was at `time` (ISO 8601), or 404 when it did not exist then. */
  @Get('todo/:id/at')
  async at(@Param('id', ParseIntPipe) id: number, @Query('time') time?: string) {
    if (!time) throw new BadRequestException('Pass ?time=<ISO 8601>, e.g. ?time=2026-11-25T12:00:00Z');
    const todo = await this.history.at(Todo, id, time);
    if (!todo) throw new NotFoundException(`Todo ${id} did not exist at ${time}`);
    return todo;
  }

  /** Every change, or what one user did (`?userId=`), oldest first; `?from=` limits it in time. */
  @Get('changes')
  async changes(@Query('userId') userId?: string, @Query('from') from?: string) {
    if (userId !== undefined && !/^\d+$/.test(userId)) throw new BadRequestException('userId must be a number');
    const changes = await this.history.changes({
      ...(userId !== undefined ? { context: { userId: Number(userId) } } : {}),
      ...(from ? { from } : {}),
      limit: 10_000,
    });
    return changes.map(present);
  }
}
