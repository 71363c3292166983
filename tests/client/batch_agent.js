#!/usr/bin/env node
/*
 * Drives crmblob's Batch agent (POST /api/v1/Agents/Batch/{Name}) and the
 * BLOB agent's batch methods with the official client `@superoffice/webapi`
 * (BatchAgent, BLOBAgent), unchanged (it hands back carriers with camelCase
 * members, as it does for every agent): StartBatchJob, GetBatchTaskInfo,
 * StopBatchJob, GetOutputFromBatch, CleanupBatchTask.
 *
 * Needs a server started with CRMBLOB_TEST_JOBS=1 (the job crmblob.test.sleep).
 * Input: CRMBLOB_URL, CRMBLOB_USER, CRMBLOB_PASSWORD (environment).
 * Output: one line per check, `ok <name>` or `FAIL <name>: <detail>`, then
 * {"passed":n,"failed":m}; exit code 0 when nothing failed.
 */
'use strict';

const { BatchAgent, BLOBAgent } = require('@superoffice/webapi');

const cfg = {
    baseUrl: process.env.CRMBLOB_URL,
    axiosConfig: {
        auth: { username: process.env.CRMBLOB_USER, password: process.env.CRMBLOB_PASSWORD },
        proxy: false,
        timeout: 30000,
    },
};
let passed = 0, failed = 0;

function ok(cond, detail) {
    if (!cond) throw new Error(detail);
}

async function check(name, fn) {
    try {
        await fn();
        console.log(`ok ${name}`);
        passed++;
        return true;
    } catch (e) {
        console.log(`FAIL ${name}: ${e && e.message ? e.message : e}`);
        failed++;
        return false;
    }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Polls GetBatchTaskInfo until pred(info) holds (or 20 s passed). */
async function until(batch, id, pred, what) {
    let info = null;
    for (let i = 0; i < 200; i++) {
        info = await batch.getBatchTaskInfoAsync(id);
        if (info && pred(info)) return info;
        await sleep(100);
    }
    throw new Error(`task ${id} never ${what}: ${JSON.stringify(info)}`);
}

async function main() {
    const batch = new BatchAgent(cfg);
    const blob = new BLOBAgent(cfg);
    let long = 0, short = 0;
    await check('startBatchJob', async () => {
        long = await batch.startBatchJobAsync({ Name: 'crmblob.test.sleep', ParameterObject: { Seconds: '30' } });
        ok(Number.isInteger(long) && long > 0, `id ${JSON.stringify(long)}`);
    });
    await check('getBatchTaskInfo.started', async () => {
        const info = await until(batch, long, (i) => i.state === 'Started', 'Started');
        ok(info.name === 'crmblob.test.sleep' && info.startCount === 1, JSON.stringify(info));
    });
    await check('stopBatchJob', async () => {
        const r = await batch.stopBatchJobAsync(long);
        ok(r === true, `answer ${JSON.stringify(r)}`);
        const info = await until(batch, long, (i) => i.state === 'Failed', 'Failed');
        ok(/^Stopped/.test(info.result), `Result ${JSON.stringify(info.result)}`);
    });
    await check('stopBatchJob.ended', async () => {
        const r = await batch.stopBatchJobAsync(long);
        ok(r === false, `answer ${JSON.stringify(r)}`);
    });
    await check('getBatchTaskInfo.succeeded', async () => {
        short = await batch.startBatchJobAsync({ Name: 'crmblob.test.sleep', ParameterObject: { Seconds: '0' } });
        const info = await until(batch, short, (i) => i.state === 'Succeeded', 'Succeeded');
        ok(info.progressPercent === 100 && info.fileName === 'sleep.txt', JSON.stringify(info));
    });
    await check('getOutputFromBatch', async () => {
        const bytes = Buffer.from(await blob.getOutputFromBatchAsync(short));
        ok(bytes.toString() === 'slept 0 s\n', `bytes ${JSON.stringify(bytes.toString())}`);
    });
    await check('cleanupBatchTask', async () => {
        await blob.cleanupBatchTaskAsync(short);
        const info = await batch.getBatchTaskInfoAsync(short);
        ok(info === null || info === undefined || !info.id, `still there: ${JSON.stringify(info)}`);
    });
    console.log(JSON.stringify({ passed, failed }));
    return failed === 0 ? 0 : 1;
}

main().then((rc) => process.exit(rc), (e) => {
    console.log(`FAIL run: ${e && e.stack ? e.stack : e}`);
    console.log(JSON.stringify({ passed, failed: failed + 1 }));
    process.exit(1);
});
