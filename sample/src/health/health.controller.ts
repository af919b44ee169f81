import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { BemiHealthIndicator } from 'nestjs-bemi';

/** GET /health: 200 while capture keeps up, 503 with the reason otherwise (docs/health.md). */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly bemi: BemiHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.bemi.isHealthy('bemi', { maxLagBytes: 256 * 1024 * 1024, maxLagSeconds: 60 })]);
  }
}
