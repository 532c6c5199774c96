import { sql } from 'kysely';
import { auditColumns, type SchemaMigration } from '../../storage/migrations/types.js';

/**
 * Profiles, their field index, devices, audiences and imports. The field index
 * (`profile_fields`) holds one row per scalar (or array element, or container — on SQLite only
 * empty ones) at every dot path of a profile, so every query operator is one indexed lookup on
 * both dialects (docs/adr/0003-profile-storage.md).
 */
export const profilesMigrations: SchemaMigration[] = [
  {
    name: '0100_profiles',
    async up({ db, t, dialect }) {
      // Text compared byte-wise on both dialects (SQLite BINARY = PostgreSQL "C").
      const ctext = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;
      await db.schema
        .createTable('profiles')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('id', ctext, (c) => c.notNull())
        .addColumn('data', t.json, (c) => c.notNull())
        .addColumn('opt_in', t.json)
        .addColumn('rels', t.json)
        .addColumn('system', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addColumn('etag', 'text', (c) => c.notNull())
        .$call(auditColumns())
        .addColumn('last_activity_on', 'text')
        .addColumn('deleted_on', 'text')
        .addColumn('deleted_by', 'text')
        .addPrimaryKeyConstraint('profiles_pk', ['api_space_id', 'id'])
        .execute();

      // Clustered by profile on SQLite (WITHOUT ROWID): rewriting a profile's rows touches one
      // B-tree range, and no separate rowid table is maintained. The key leads with profile_id so
      // that, without statistics, SQLite never prefers it over the (space, path, …) indexes.
      await db.schema
        .createTable('profile_fields')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('profile_id', ctext, (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('path', 'text', (c) => c.notNull())
        // s string, n number, b boolean, z null, o object, a array
        .addColumn('t', 'text', (c) => c.notNull())
        .addColumn('sv', ctext)
        .addColumn('lv', ctext)
        .addColumn('nv', 'double precision')
        .addPrimaryKeyConstraint('profile_fields_pk', ['profile_id', 'api_space_id', 'seq'])
        .$call((b) => (dialect === 'sqlite' ? b.modifyEnd(sql`WITHOUT ROWID`) : b))
        .execute();
      // (space, path, sv) is complete: it also serves "exists" and the suffix/contains scans of one
      // path. lv and nv are partial (strings / numbers only), which keeps writes cheaper.
      await db.schema.createIndex('profile_fields_sv').on('profile_fields').columns(['api_space_id', 'path', 'sv']).execute();
      await db.schema.createIndex('profile_fields_lv').on('profile_fields').columns(['api_space_id', 'path', 'lv']).where(sql.ref('lv'), 'is not', null).execute();
      await db.schema.createIndex('profile_fields_nv').on('profile_fields').columns(['api_space_id', 'path', 'nv']).where(sql.ref('nv'), 'is not', null).execute();

      await db.schema
        .createTable('profile_devices')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('profile_id', ctext, (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('device', t.json, (c) => c.notNull())
        .addColumn('created_on', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('profile_devices_pk', ['api_space_id', 'profile_id', 'device_id'])
        .execute();

      await db.schema
        .createTable('audiences')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('query', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .$call(auditColumns())
        .addPrimaryKeyConstraint('audiences_pk', ['api_space_id', 'id'])
        .execute();
      await db.schema.createIndex('audiences_name').on('audiences').columns(['api_space_id', 'name']).unique().execute();

      await db.schema
        .createTable('profile_imports')
        .addColumn('api_space_id', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('mode', 'text', (c) => c.notNull())
        .addColumn('filename', 'text')
        .addColumn('row_count', 'integer', (c) => c.notNull())
        .addColumn('valid_row_count', 'integer', (c) => c.notNull())
        .addColumn('invalid_rows', t.json, (c) => c.notNull())
        .addColumn('duplicates', t.json, (c) => c.notNull())
        .addColumn('duplicate_count', 'integer', (c) => c.notNull())
        .addColumn('existing_count', 'integer', (c) => c.notNull())
        .addColumn('processed_count', 'integer', (c) => c.notNull())
        .addColumn('created_count', 'integer', (c) => c.notNull())
        .addColumn('updated_count', 'integer', (c) => c.notNull())
        .addColumn('failed_count', 'integer', (c) => c.notNull())
        // Resume point: the last staged row number applied (committed with each chunk).
        .addColumn('cursor', 'integer', (c) => c.notNull())
        .$call(auditColumns())
        .addColumn('completed_on', 'text')
        .addPrimaryKeyConstraint('profile_imports_pk', ['api_space_id', 'id'])
        .execute();
      await db.schema
        .createTable('profile_import_rows')
        .addColumn('import_id', 'text', (c) => c.notNull())
        .addColumn('row_no', 'integer', (c) => c.notNull())
        .addColumn('profile_id', 'text', (c) => c.notNull())
        .addColumn('data', t.json, (c) => c.notNull())
        .addPrimaryKeyConstraint('profile_import_rows_pk', ['import_id', 'row_no'])
        .execute();
    },
  },
  {
    // The field index keys its rows by a small integer per space instead of the 36-character space
    // id: every index entry carries it, and the narrower entries made bulk writes ~25 % cheaper on
    // SQLite (docs/adr/0003-profile-storage.md, "Space keys").
    name: '0101_profile_space_keys',
    async up({ db, dialect }) {
      const ctext = dialect === 'postgres' ? sql`text collate "C"` : sql`text`;
      await db.schema
        .createTable('profile_space_keys')
        .addColumn('space_key', dialect === 'postgres' ? 'serial' : 'integer', (c) => c.primaryKey())
        .addColumn('api_space_id', 'text', (c) => c.notNull().unique())
        .execute();
      await sql`INSERT INTO profile_space_keys (api_space_id) SELECT DISTINCT api_space_id FROM profile_fields ORDER BY api_space_id`.execute(db);
      await db.schema
        .createTable('profile_fields_keyed')
        .addColumn('space_key', 'integer', (c) => c.notNull())
        .addColumn('profile_id', ctext, (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('path', 'text', (c) => c.notNull())
        .addColumn('t', 'text', (c) => c.notNull())
        .addColumn('sv', ctext)
        .addColumn('lv', ctext)
        .addColumn('nv', 'double precision')
        .addPrimaryKeyConstraint('profile_fields_key_pk', ['profile_id', 'space_key', 'seq'])
        .$call((b) => (dialect === 'sqlite' ? b.modifyEnd(sql`WITHOUT ROWID`) : b))
        .execute();
      await sql`INSERT INTO profile_fields_keyed (space_key, profile_id, seq, path, t, sv, lv, nv)
        SELECT k.space_key, f.profile_id, f.seq, f.path, f.t, f.sv, f.lv, f.nv FROM profile_fields f JOIN profile_space_keys k ON k.api_space_id = f.api_space_id`.execute(db);
      await db.schema.dropTable('profile_fields').execute();
      await db.schema.alterTable('profile_fields_keyed').renameTo('profile_fields').execute();
      await db.schema.createIndex('profile_fields_sv').on('profile_fields').columns(['space_key', 'path', 'sv']).execute();
      await db.schema.createIndex('profile_fields_lv').on('profile_fields').columns(['space_key', 'path', 'lv']).where(sql.ref('lv'), 'is not', null).execute();
      await db.schema.createIndex('profile_fields_nv').on('profile_fields').columns(['space_key', 'path', 'nv']).where(sql.ref('nv'), 'is not', null).execute();
    },
  },
  {
    // Paths compare in byte order on PostgreSQL too (as on SQLite), so a non-empty container is
    // found through the range of its children's paths and needs no row of its own: one index row
    // fewer per object or array (docs/adr/0003-profile-storage.md). Rows that earlier versions
    // wrote for non-empty containers still match and go at the profile's next write.
    name: '0102_profile_fields_path_c',
    async up({ db, dialect }) {
      if (dialect === 'postgres') await sql`ALTER TABLE profile_fields ALTER COLUMN path TYPE text COLLATE "C"`.execute(db);
    },
  },
];
