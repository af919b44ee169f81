import { Controller, HttpCode, Post } from '@nestjs/common';
import { CleanupJob } from './cleanup.job';

@Controller('jobs')
export class JobsController {
  constructor(private readonly cleanup: CleanupJob) {}

  /** Runs the cleanup job now; its context is the job's merged over this request's. */
  @Post('cleanup')
  @HttpCode(200)
  async runCleanup() {
    return { removed: await this.cleanup.run() };
  }
}
