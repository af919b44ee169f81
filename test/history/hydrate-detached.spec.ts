import { Collection, EntitySchema, MikroORM, Reference, wrap, type EntityManager, type Ref } from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { hydrateDetached } from '../../lib/history/history-mapper';

class Address {
  street!: string;
  city!: string;
}
class Author {
  id!: number;
  name!: string;
  books = new Collection<Book>(this);
}
class Book {
  id!: number;
  title!: string;
  author!: Author;
  address?: Address;
  publishedAt?: Date;
  copies?: string;
  price?: string;
  tags?: string[];
  meta?: Record<string, unknown>;
}
class Review {
  id!: number;
  book!: Ref<Book>;
  authorId!: number;
}
class Note {
  id!: number;
  private _body = '';
  get body(): string {
    return this._body;
  }
  set body(value: string) {
    this._body = value.trim();
  }
}

const AddressSchema = new EntitySchema({ class: Address, embeddable: true, properties: { street: { type: 'string' }, city: { type: 'string' } } });
const AuthorSchema = new EntitySchema({
  class: Author,
  properties: { id: { type: 'number', primary: true }, name: { type: 'string' }, books: { kind: '1:m', entity: () => Book, mappedBy: 'author' } },
});
const BookSchema = new EntitySchema({
  class: Book,
  properties: {
    id: { type: 'number', primary: true },
    title: { type: 'string' },
    author: { kind: 'm:1', entity: () => Author },
    address: { kind: 'embedded', entity: () => Address, nullable: true },
    publishedAt: { type: 'Date', nullable: true },
    copies: { type: 'bigint', nullable: true },
    price: { type: 'decimal', nullable: true },
    tags: { type: 'string[]', nullable: true },
    meta: { type: 'json', nullable: true },
  },
});
const ReviewSchema = new EntitySchema({
  class: Review,
  properties: {
    id: { type: 'number', primary: true },
    book: { kind: 'm:1', entity: () => Book, ref: true },
    // (MikroORM 7's types want a number-typed entity here; the mapping itself is the same.)
    authorId: { kind: 'm:1', entity: () => Author, mapToPk: true } as never,
  },
});
const NoteSchema = new EntitySchema({ class: Note, properties: { id: { type: 'number', primary: true }, body: { type: 'string', getter: true, setter: true } } });

/** MikroORM's own factory, the reference every faster path must match. */
function byFactory(em: EntityManager, entity: new () => object, rows: Record<string, unknown>[]): any[] {
  const fork = em.fork({ clear: true, useContext: false, freshEventManager: true });
  const meta = fork.getMetadata().get(entity);
  return rows.map((row) =>
    fork.getEntityFactory().create(entity, fork.getDriver().mapResult(row as any, meta) as any, { merge: false, refresh: true, newEntity: false, convertCustomTypes: true, initialized: true }),
  );
}

describe('hydrateDetached()', () => {
  let orm: MikroORM;
  beforeAll(async () => {
    orm = await MikroORM.init({ driver: PostgreSqlDriver, dbName: 'unused', ...({ connect: false } as object), entities: [AddressSchema, AuthorSchema, BookSchema, ReviewSchema, NoteSchema], allowGlobalContext: true });
  });
  afterAll(() => orm.close());

  const bookRows = () => [
    { id: 1, title: 'One', author_id: 7, address_street: 'Main St', address_city: 'Oslo', published_at: new Date('2024-05-01T10:00:00Z'), copies: '9007199254740993', price: '12.50', tags: ['a', 'b'], meta: { x: 1 } },
    { id: 2, title: 'Two', author_id: 8, address_street: null, address_city: null, published_at: null, copies: null, price: null, tags: null, meta: null },
  ];

  it('gives the same values, class, references and embeddables as MikroORM\'s factory', () => {
    const meta = orm.getMetadata().get(Book);
    const fast = hydrateDetached(orm.em, meta, bookRows()) as Book[];
    const reference = byFactory(orm.em, Book, bookRows()) as Book[];
    expect(fast).toHaveLength(2);
    for (const [i, book] of fast.entries()) {
      expect(book).toBeInstanceOf(Book);
      expect(wrap(book).toObject()).toEqual(wrap(reference[i]).toObject());
      expect(book.author).toBeInstanceOf(Author);
      expect(book.author.id).toBe(reference[i].author.id);
    }
    expect(fast[0].address).toBeInstanceOf(Address);
    expect(fast[0].address).toEqual({ street: 'Main St', city: 'Oslo' });
    expect(fast[0].publishedAt).toEqual(new Date('2024-05-01T10:00:00Z'));
    expect(fast[0].copies).toBe(reference[0].copies);
    expect(fast[0].price).toBe(reference[0].price);
    expect(fast[0].tags).toEqual(['a', 'b']);
    expect(fast[0].meta).toEqual({ x: 1 });
    // Not managed by any EntityManager, the caller's included.
    expect(wrap(fast[0], true).__managed).toBeFalsy();
    expect(orm.em.getUnitOfWork().getIdentityMap().values()).toHaveLength(0);
  });

  it('keeps Reference wrappers (ref: true) and plain foreign keys (mapToPk) as the factory does', () => {
    const rows = () => [{ id: 3, book_id: 1, author_id_id: 7 }];
    const [fast] = hydrateDetached(orm.em, orm.getMetadata().get(Review), rows()) as Review[];
    const [reference] = byFactory(orm.em, Review, rows()) as Review[];
    expect(wrap(fast, true).__managed).toBeFalsy();
    expect(Reference.isReference(fast.book)).toBe(true);
    expect(fast.book.id).toBe(reference.book.id);
    expect(fast.authorId).toBe(7);
    expect(reference.authorId).toBe(7);
    expect(wrap(fast).toObject()).toEqual(wrap(reference).toObject());
  });

  it('leaves entities with collections or class accessors to MikroORM\'s factory', () => {
    const [author] = hydrateDetached(orm.em, orm.getMetadata().get(Author), [{ id: 7, name: 'Ann' }]) as Author[];
    expect(author).toBeInstanceOf(Author);
    expect(author.books).toBeInstanceOf(Collection);
    expect(author.books.isInitialized()).toBe(false);
    const [note] = hydrateDetached(orm.em, orm.getMetadata().get(Note), [{ id: 1, body: '  padded  ' }]) as Note[];
    expect(note).toBeInstanceOf(Note);
    expect(note.body).toBe(byFactory(orm.em, Note, [{ id: 1, body: '  padded  ' }])[0].body);
  });

  it('builds entities from their own columns only: the history bookkeeping columns stay out, on both paths', () => {
    // tableAt()/at() rows carry _bemi_state, _bemi_detail and _bemi_key; they are not removed first.
    const extra = { _bemi_state: 'trail', _bemi_detail: null, _bemi_key: '7' };
    const [author] = hydrateDetached(orm.em, orm.getMetadata().get(Author), [{ id: 7, name: 'Ann', ...extra }]) as Author[]; // factory path
    const [note] = hydrateDetached(orm.em, orm.getMetadata().get(Note), [{ id: 1, body: 'x', ...extra }]) as Note[]; // factory path (accessor)
    const [book] = hydrateDetached(orm.em, orm.getMetadata().get(Book), [{ ...bookRows()[0], ...extra }]) as Book[]; // plain path
    for (const entity of [author, note, book]) {
      expect(Object.keys(entity).filter((k) => k.startsWith('_bemi'))).toEqual([]);
      expect(JSON.stringify(wrap(entity).toObject())).not.toContain('_bemi');
    }
  });
});

