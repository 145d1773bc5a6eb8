/**
 * Operators of the console in `operators`, keyed by their person id; roles as a list of checked
 * role names; `rev` is the compare-and-set revision of the roles.
 */
import { StoreConflictError, type Operator, type OperatorRepository } from '../types.js';
import { checkRoles } from '../values.js';
import { str, num, limitOf, insert, type MongoContext } from './shared.js';

export interface OperatorDoc {
  /** The person id. */
  _id: string;
  roles: string[];
  addedBy: string;
  addedAt: number;
  updatedAt: number;
  rev: number;
}

export function operatorDoc(doc: OperatorDoc): Operator {
  return {
    personId: doc._id,
    roles: checkRoles(doc.roles),
    addedBy: doc.addedBy,
    addedAt: doc.addedAt,
    updatedAt: doc.updatedAt,
    rev: doc.rev,
  };
}

export function createMongoOperators({ db, run, write }: MongoContext): OperatorRepository {
  const col = { operators: db.collection<OperatorDoc>('operators') };

  return {
    create: (operator) =>
      write('operators', async () => {
        const addedAt = num(operator.addedAt, 'addedAt');
        const doc: OperatorDoc = {
          _id: str(operator.personId, 'personId'),
          roles: checkRoles(operator.roles),
          addedBy: str(operator.addedBy, 'addedBy'),
          addedAt,
          updatedAt: addedAt,
          rev: 0,
        };
        await insert(col.operators, doc, () => {
          throw new StoreConflictError('personId');
        });
        return operatorDoc(doc);
      }),
    find: (personId) =>
      run(async () => {
        const doc = await col.operators.findOne({ _id: str(personId, 'personId') });
        return doc ? operatorDoc(doc) : undefined;
      }),
    list: ({ limit, offset }) =>
      run(async () => {
        const n = limitOf(limit);
        if (n < 1) return [];
        const docs = await col.operators
          .find({})
          .sort({ addedAt: 1, _id: 1 })
          .skip(Math.max(0, Math.floor(num(offset, 'offset'))))
          .limit(n)
          .toArray();
        return docs.map(operatorDoc);
      }),
    count: () => run(() => col.operators.countDocuments({})),
    // Compare-and-set: the filter carries the expected revision and the update raises it, in one
    // single-document operation, so two admins changing the roles they both read cannot both land.
    setRoles: (personId, expectedRev, roles, at) =>
      write('operators', async () => {
        const result = await col.operators.updateOne(
          { _id: str(personId, 'personId'), rev: num(expectedRev, 'expectedRev') },
          { $set: { roles: checkRoles(roles), updatedAt: num(at, 'now') }, $inc: { rev: 1 } },
        );
        return result.matchedCount === 1;
      }),
    remove: (personId) =>
      write('operators', async () => {
        const result = await col.operators.deleteOne({ _id: str(personId, 'personId') });
        return result.deletedCount === 1;
      }),
  };
}
