-- doctor_index_bloat: size of each index of the schema's tables against an estimate of the size
-- it would have if freshly built: entries (pg_class.reltuples, kept by vacuum and analyze) times
-- the bytes per entry (8-byte tuple header + the keys' average widths from pg_stats, aligned to
-- 8 + a 4-byte line pointer), over the usable bytes of a leaf page at the index's fillfactor
-- (btree default 90), plus the metapage. An estimate in the spirit of the well-known
-- btree-bloat queries: good to a few pages, meant to tell 2x from 10x. Btree only; the estimate
-- is null for an index never vacuumed or analyzed (reltuples = -1) bigger than two pages. No parameters; no locks.
with idx as (
  select i.indexrelid, i.indrelid, ic.relname::text as index_name, tc.relname::text as table_name,
         am.amname::text as am, ic.reltuples::float8 as entries, pg_relation_size(i.indexrelid)::float8 as bytes,
         current_setting('block_size')::int as block_size,
         coalesce((select substring(o from 'fillfactor=(\d+)')::int
                     from unnest(ic.reloptions) o where o like 'fillfactor=%'), 90) as fillfactor,
         i.indkey::int2[] as keys
    from pg_index i
    join pg_class ic on ic.oid = i.indexrelid
    join pg_class tc on tc.oid = i.indrelid
    join pg_namespace n on n.oid = tc.relnamespace
    join pg_am am on am.oid = ic.relam
   where n.nspname = ':SCHEMA'
), widths as (
  select idx.indexrelid,
         sum(coalesce(s.avg_width, case when t.typlen > 0 then t.typlen else 16 end))::float8 as key_width
    from idx
    cross join lateral unnest(idx.keys) as k(attnum)
    left join pg_attribute a on a.attrelid = idx.indrelid and a.attnum = k.attnum
    left join pg_type t on t.oid = a.atttypid
    left join pg_stats s on s.schemaname = ':SCHEMA' and s.tablename = idx.table_name and s.attname = a.attname
   group by idx.indexrelid
)
select idx.index_name, idx.table_name, idx.am, idx.bytes, idx.entries, w.key_width, idx.block_size,
       case when idx.bytes <= 2 * idx.block_size then idx.bytes  -- a metapage and a root: nothing to reclaim
            when idx.am = 'btree' and idx.entries >= 0 then
         (1 + greatest(1, ceil(idx.entries * (8 + ceil(w.key_width / 8) * 8 + 4)
                                / ((idx.block_size - 24 - 16) * idx.fillfactor / 100.0)))) * idx.block_size
       end::float8 as expected_bytes
  from idx join widths w using (indexrelid)
 order by idx.table_name, idx.index_name
