/**
 * The shop's example tests, as functions of a shop: shop.test.ts runs each on a fresh schema.
 * They are written with pgjobs/testing and show its four tools: what was enqueued (and in which
 * transaction), drain(), eager mode, and a fresh schema per test.
 */
import assert from "node:assert/strict";
import { assertEnqueued, drain, eager, refuteEnqueued } from "pgjobs/testing";
import type { Mailer, Shop } from "./shop.js";

/** A mailer that keeps what it was asked to send. */
export class OutboxMailer implements Mailer {
  readonly sent: Array<{ to: string; subject: string; text: string }> = [];
  async send(message: { to: string; subject: string; text: string }): Promise<void> {
    this.sent.push(message);
  }
}

/** Placing an order enqueues its receipt, committed with the order. */
export async function receiptIsEnqueued(shop: Shop): Promise<void> {
  const id = await shop.placeOrder({ email: "ada@example.com", totalCents: 4200 });
  await assertEnqueued(shop.jobs, { task: shop.tasks.sendReceipt, args: [id], queue: "email", count: 1 });
}

/** Running the queue emails the receipt, marks the order, and schedules a review request. */
export async function receiptIsSent(shop: Shop, mailer: OutboxMailer): Promise<void> {
  const id = await shop.placeOrder({ email: "ada@example.com", totalCents: 4200 });
  const { ran, failed } = await drain(shop.jobs);
  assert.equal(failed, 0, `no task failed; ran: ${JSON.stringify(ran.map((r) => [r.name, r.outcome, r.error?.message]))}`);
  assert.deepEqual(ran.map((r) => [r.name, r.args, r.outcome]), [["send_receipt", [id], "succeeded"]]);
  assert.deepEqual(mailer.sent.map((m) => [m.to, m.subject]), [["ada@example.com", `Your order #${id}`]]);
  assert.ok((await shop.order(id))?.receipt_sent_at, "the order is marked as receipted");
  // Scheduled three days out: enqueued, not run by drain() (pass { scheduled: true } to run it).
  await assertEnqueued(shop.jobs, { task: shop.tasks.askForReview, args: [id], state: "pending" });
}

/** An order that fails validation in the database rolls back, and with it its receipt. */
export async function invalidOrderEnqueuesNothing(shop: Shop): Promise<void> {
  await assert.rejects(shop.placeOrder({ email: "bob@example.com", totalCents: 0 }), /total_cents/);
  await refuteEnqueued(shop.jobs, { task: shop.tasks.sendReceipt });
}

/** In eager mode an enqueue outside a transaction runs its task before it returns. */
export async function resendRunsEagerly(shop: Shop, mailer: OutboxMailer): Promise<void> {
  const id = await shop.placeOrder({ email: "cy@example.com", totalCents: 990 });
  const eagerly = eager(shop.jobs);
  try {
    const r = await shop.resendReceipt(id);
    // Already sent: the enqueue ran the task, with what it led to (the review request, whose
    // countdown eager mode does not wait for).
    assert.deepEqual(mailer.sent.map((m) => m.subject), [`Your order #${id}`, `How was order #${id}?`]);
    assert.deepEqual(await r.get({ timeout: 1_000 }), { sentTo: "cy@example.com" });
    // The receipt enqueued inside placeOrder's transaction did not run at enqueue (it was not
    // committed yet): it waits for a drain, as in production it waits for a worker.
    await assertEnqueued(shop.jobs, { task: shop.tasks.sendReceipt, args: [id], state: "ready", count: 1 });
  } finally {
    eagerly.stop();
  }
}

export const checks = { receiptIsEnqueued, receiptIsSent, invalidOrderEnqueuesNothing, resendRunsEagerly };
