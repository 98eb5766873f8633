// graphile-worker, the baseline of Handoff's PostgreSQL benchmark (bench/postgres/run.sh):
// enqueue one job per order and complete it, on the same database Handoff runs on.
// Usage: node bench.mjs DATABASE_URL JOBS MODE [PAYLOAD_BYTES] [ENQUEUERS]
//   MODE single:  each job enqueued in its own transaction (add_job), as a webhook handler would;
//   MODE batched: jobs enqueued 100 per transaction (add_jobs).
// Enqueuers run concurrently with one worker configured as graphile-worker's own performance
// page recommends (local queue of 500, batched completions); the job itself does nothing, so
// the figure is the queue's own cost. Prints jobs/s from the first enqueue to the last
// completion.
import pg from "pg";

// Its performance tests run without a log line per job; so does this baseline.
process.env.NO_LOG_SUCCESS = "1";
const { run, makeWorkerUtils } = await import("graphile-worker");

const [url, jobsArg, mode, bytesArg, enqueuersArg] = process.argv.slice(2);
const jobs = Number(jobsArg);
const payloadBytes = Number(bytesArg ?? 300);
// Connections enqueueing at once, as webhooks arrive concurrently (PostgreSQL's own group
// commit shares their WAL flushes).
const ENQUEUERS = Number(enqueuersArg ?? 64);
if (!url || !(jobs > 0) || !["single", "batched"].includes(mode)) {
  console.error("usage: node bench.mjs DATABASE_URL JOBS single|batched [PAYLOAD_BYTES] [ENQUEUERS]");
  process.exit(2);
}
const SCHEMA = "graphile_worker";
const BATCH = 100;

// A fresh schema per run, as Handoff's own runs get.
const admin = new pg.Client({ connectionString: url });
await admin.connect();
await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
const { rows } = await admin.query("SHOW synchronous_commit");
await admin.end();

const preset = {
  worker: {
    connectionString: url,
    schema: SCHEMA,
    concurrentJobs: 24,
    maxPoolSize: 25,
    localQueue: { size: 500 },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
    pollInterval: 1000,
  },
};

let done = 0;
let finish;
const finished = new Promise((resolve) => (finish = resolve));
const taskList = {
  order: async () => {
    done += 1;
    if (done === jobs) finish();
  },
};

const utils = await makeWorkerUtils({ connectionString: url, schema: SCHEMA });
await utils.migrate();
const runner = await run({ preset, taskList, noHandleSignals: true });

const filler = "x".repeat(Math.max(0, payloadBytes - 60));
const payload = (i) => ({ order: `#${1000000 + i}`, body: filler });
const start = process.hrtime.bigint();
let next = 0;
const enqueuer = async () => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  for (;;) {
    if (mode === "single") {
      const i = next++;
      if (i >= jobs) break;
      await client.query(`SELECT ${SCHEMA}.add_job('order', $1::json)`, [JSON.stringify(payload(i))]);
    } else {
      const first = next;
      next += BATCH;
      if (first >= jobs) break;
      const specs = [];
      for (let i = first; i < Math.min(first + BATCH, jobs); i++) {
        specs.push({ identifier: "order", payload: payload(i) });
      }
      await client.query(
        `SELECT ${SCHEMA}.add_jobs(ARRAY(SELECT json_populate_recordset(null::${SCHEMA}.job_spec, $1::json)))`,
        [JSON.stringify(specs)],
      );
    }
  }
  await client.end();
};
await Promise.all(Array.from({ length: ENQUEUERS }, enqueuer));
const enqueued = Number(process.hrtime.bigint() - start) / 1e9;
await finished;
const secs = Number(process.hrtime.bigint() - start) / 1e9;
await runner.stop();
await utils.release();
console.log(
  `graphile-worker ${mode}: ${jobs} jobs enqueued in ${enqueued.toFixed(1)} s, all completed in ${secs.toFixed(1)} s: ` +
    `${Math.round(jobs / secs)} jobs/s (synchronous_commit = ${rows[0].synchronous_commit})`,
);
