// What `pgjobs worker --app dist/examples/user-app/worker.js --queues email` loads: the shop's
// tasks on DATABASE_URL, with a mailer that logs instead of sending.
import { createShop } from "./shop.js";

const shop = createShop({
  connectionString: process.env.DATABASE_URL ?? "postgres://localhost/shop",
  mailer: { send: async (m) => console.log(`mail to ${m.to}: ${m.subject}`) },
});
await shop.setup();

export const jobs = shop.jobs;
export default jobs;
