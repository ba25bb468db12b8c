/**
 * A small user application, the kind pgjobs is for: a shop where placing an order enqueues its
 * receipt email in the same transaction as the order row (the transactional outbox), and the
 * receipt task, once it has mailed the customer, schedules a review request three days later.
 *
 * The shop is built by a factory that takes its connection, its schemas and its mailer, so its
 * tests can give it a fresh schema and a fake mailer (see shop.test.ts and docs/testing.md).
 *
 * Run it for real:  DATABASE_URL=... pgjobs worker --app dist/examples/user-app/worker.js --queues email
 */
import pg from "pg";
import { createJobs, type Jobs } from "pgjobs";

export interface Mailer {
  send(message: { to: string; subject: string; text: string }): Promise<void>;
}

export interface ShopOptions {
  connectionString: string;
  /** Where pgjobs' tables live. Default "jobs". */
  jobsSchema?: string;
  /** Where the shop's own tables live. Default "public". */
  shopSchema?: string;
  mailer: Mailer;
  logLevel?: string;
}

export interface Order {
  email: string;
  totalCents: number;
}

export type Shop = ReturnType<typeof createShop>;

export function createShop(options: ShopOptions) {
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 5 });
  pool.on("error", () => {}); // an idle connection dropped by the server must not crash the shop
  const jobs: Jobs = createJobs({ pool, schema: options.jobsSchema ?? "jobs", logLevel: options.logLevel ?? "warn" });
  const orders = `${pg.escapeIdentifier(options.shopSchema ?? "public")}.orders`;

  const askForReview = jobs.task(
    "ask_for_review",
    async (_ctx, orderId: number) => {
      const { rows } = await pool.query<{ email: string }>(`select email from ${orders} where id = $1`, [orderId]);
      await options.mailer.send({ to: rows[0]!.email, subject: `How was order #${orderId}?`, text: "Tell us in one click." });
    },
    { queue: "email" },
  );

  const sendReceipt = jobs.task(
    "send_receipt",
    async (ctx, orderId: number) => {
      const { rows } = await pool.query<{ email: string; total_cents: number }>(`select email, total_cents from ${orders} where id = $1`, [orderId]);
      const order = rows[0];
      if (!order) throw new Error(`order ${orderId} does not exist`);
      await options.mailer.send({
        to: order.email,
        subject: `Your order #${orderId}`,
        text: `Thank you! Total: ${(order.total_cents / 100).toFixed(2)} EUR`,
      });
      await pool.query(`update ${orders} set receipt_sent_at = now() where id = $1`, [orderId]);
      ctx.log.info("receipt sent", { orderId });
      await askForReview.applyAsync([orderId], { countdown: 3 * 24 * 3600 });
      return { sentTo: order.email };
    },
    { queue: "email", retries: 3, backoff: { delay: 2_000 } },
  );

  return {
    jobs,
    pool,
    /** The orders table, schema-qualified. */
    ordersTable: orders,
    tasks: { sendReceipt, askForReview },

    /** The shop's table (pgjobs' own schema is applied by `jobs.migrate()` or `pgjobs migrate`). */
    async setup(): Promise<void> {
      await pool.query(`create table if not exists ${orders} (
        id bigint generated always as identity primary key,
        email text not null,
        total_cents integer not null check (total_cents > 0),
        created_at timestamptz not null default now(),
        receipt_sent_at timestamptz
      )`);
    },

    /** Insert the order and enqueue its receipt, in one transaction: both exist, or neither. */
    async placeOrder(order: Order): Promise<number> {
      if (!order.email.includes("@")) throw new Error(`invalid email ${JSON.stringify(order.email)}`);
      const client = await pool.connect();
      try {
        await client.query("begin");
        const { rows } = await client.query<{ id: string }>(`insert into ${orders} (email, total_cents) values ($1, $2) returning id`, [order.email, order.totalCents]);
        const id = Number(rows[0]!.id);
        await sendReceipt.applyAsync([id], { db: client });
        await client.query("commit");
        return id;
      } catch (err) {
        await client.query("rollback").catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },

    /** Customer service: send the receipt again (outside any transaction). */
    async resendReceipt(orderId: number) {
      return sendReceipt.delay(orderId);
    },

    async order(id: number) {
      const { rows } = await pool.query<{ id: string; email: string; total_cents: number; receipt_sent_at: Date | null }>(`select * from ${orders} where id = $1`, [id]);
      return rows[0];
    },

    async close(): Promise<void> {
      await jobs.close();
      await pool.end();
    },
  };
}
