//! The catalog queries that read a template schema for cloning: its tables,
//! sequences, defaults, constraints, indexes and the columns of the tables
//! whose rows are copied, each taking the schema's name as `$1`, and a
//! count of the objects the clone does not cover.

/// The columns of a table to copy (not generated ones), and whether each has
/// an identity or serial sequence; no rows when the table does not exist.
pub(super) const COPY_COLUMNS: &str = "
SELECT a.attname::text, pg_get_serial_sequence(c.oid::regclass::text, a.attname) IS NOT NULL
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid
 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r'
   AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
 ORDER BY a.attnum";

/// How many views, functions, triggers and custom types the schema holds:
/// the clone covers none of them.
pub(super) const UNSUPPORTED: &str = "
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind IN ('v', 'm', 'f', 'p'))
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = $1)
     + (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND NOT t.tgisinternal)
     + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = $1 AND t.typtype IN ('e', 'd', 'r', 'm'))";

/// The tables, with their comments as quoted literals.
pub(super) const TABLES: &str = "
SELECT c.relname::text, quote_literal(obj_description(c.oid, 'pg_class'))
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.oid";

pub(super) const SEQUENCES: &str = "
SELECT c.relname::text,
       format('AS %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s %s',
              s.seqtypid::regtype, s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache,
              CASE WHEN s.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END),
       t.relname::text, a.attname::text
  FROM pg_sequence s
  JOIN pg_class c ON c.oid = s.seqrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass
       AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  LEFT JOIN pg_class t ON t.oid = d.refobjid
  LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE n.nspname = $1 AND d.deptype IS DISTINCT FROM 'i'
 ORDER BY c.oid";

pub(super) const DEFAULTS: &str = "
SELECT c.relname::text, a.attname::text, pg_get_expr(d.adbin, d.adrelid)
  FROM pg_attrdef d
  JOIN pg_class c ON c.oid = d.adrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
 WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attidentity = '' AND a.attgenerated = ''
 ORDER BY c.oid, a.attnum";

pub(super) const CONSTRAINTS: &str = "
SELECT c.relname::text, co.conname::text, pg_get_constraintdef(co.oid)
  FROM pg_constraint co
  JOIN pg_class c ON c.oid = co.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND co.contype IN ('p', 'u', 'x', 'c', 'f')
 ORDER BY co.contype = 'f', co.oid";

pub(super) const INDEXES: &str = "
SELECT pg_get_indexdef(i.indexrelid)
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND NOT EXISTS (
       SELECT 1 FROM pg_constraint co
        WHERE co.conindid = i.indexrelid AND co.contype IN ('p', 'u', 'x'))
 ORDER BY i.indexrelid";
