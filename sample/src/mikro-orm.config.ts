import { defineConfig } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { join } from 'node:path';
import { Todo } from './todo/todo.entity';

export function mikroOrmConfig(clientUrl: string) {
  return defineConfig({
    clientUrl,
    entities: [Todo],
    extensions: [Migrator],
    migrations: {
      // Compiled migrations next to this file (the sample runs from its build output).
      path: join(__dirname, 'migrations'),
      glob: '!(*.d).{js,ts}', // .js when built, .ts under ts-jest
      transactional: true,
      snapshot: false, // no schema snapshots written next to the migrations
    },
  });
}
