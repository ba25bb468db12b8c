/**
 * The shop's tests, written with pgjobs/testing: each test gets a fresh pgjobs schema (and the
 * shop's tables in it) on your own database, and a fake mailer; nothing else runs.
 *
 *   DATABASE_URL=postgres://localhost/shop_test node --test dist/examples/user-app/shop.test.js
 */
import { test } from "node:test";
import { createTestSchema } from "pgjobs/testing";
import { checks, OutboxMailer } from "./shop.checks.js";
import { createShop, type Shop } from "./shop.js";

const url = process.env.DATABASE_URL ?? "postgres://localhost/shop_test";

/** A shop on a fresh schema, with an outbox mailer; dropped afterwards. */
async function withShop(fn: (shop: Shop, mailer: OutboxMailer) => Promise<void>): Promise<void> {
  const ts = await createTestSchema({ connectionString: url });
  const mailer = new OutboxMailer();
  const shop = createShop({ connectionString: url, jobsSchema: ts.schema, shopSchema: ts.schema, mailer });
  try {
    await shop.setup();
    await fn(shop, mailer);
  } finally {
    await shop.close();
    await ts.drop();
  }
}

test("placing an order enqueues its receipt in the order's transaction", () => withShop(checks.receiptIsEnqueued));
test("the receipt task emails the customer and schedules a review request", () => withShop(checks.receiptIsSent));
test("an invalid order enqueues nothing", () => withShop(checks.invalidOrderEnqueuesNothing));
test("eager mode runs a resent receipt before resendReceipt() returns", () => withShop(checks.resendRunsEagerly));
